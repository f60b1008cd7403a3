"""`trl_basis/callbacks.py`: the held-out evaluation callback (its sampling path: `tests/test_evaluation.py`)."""

from __future__ import annotations

import pytest
from _trainer_utils import CPU, arithmetic_train, prompt_reward, tiny_model_path

from trl_basis import BASISConfig, BASISTrainer
from trl_basis.callbacks import HeldOutAccuracyCallback
from trl_basis.tasks import arithmetic_reward, make_arithmetic_dataset


@pytest.mark.slow
def test_held_out_accuracy_callback_in_a_script_of_your_own(tmp_path):
    """Built from the trainer and added with `add_callback`, like TRL's LogCompletionsCallback: it scores the
    held-out prompts before training, at the evenly spaced steps and after, with pass@k up to num_samples."""
    args = BASISConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=8, max_steps=4)
    trainer = BASISTrainer(tiny_model_path(), prompt_reward, args=args, train_dataset=arithmetic_train(32))
    held_out = make_arithmetic_dataset(num_train=1, num_test=6, seed=3)["test"]
    lines = []
    callback = HeldOutAccuracyCallback(
        trainer, held_out, arithmetic_reward, num_samples=2, eval_points=1, batch_size=12, printer=lines.append
    )
    trainer.add_callback(callback)
    trainer.train()
    assert [p["step"] for p in callback.points] == [0, 2, 4]
    assert all(0.0 <= p["accuracy"] <= p["pass_at_k"]["2"] + 1e-9 <= 1.0 + 1e-9 for p in callback.points)
    assert len(lines) == 3 and lines[0].startswith("[held-out] before training, step 0: accuracy")
