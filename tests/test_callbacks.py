"""`trl_basis/callbacks.py`: the held-out evaluation samples like training."""

from __future__ import annotations

from _trainer_utils import CPU

from trl_basis import BASISConfig
from trl_basis.callbacks import training_sampler


def test_the_main_job_evaluates_with_the_training_sampler(tmp_path):
    args = BASISConfig(
        **CPU,
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        top_k=20,
        min_p=0.05,
        repetition_penalty=1.1,
        generation_kwargs={"typical_p": 0.9},
    )
    assert training_sampler(args) == {"top_k": 20, "min_p": 0.05, "repetition_penalty": 1.1, "typical_p": 0.9}
