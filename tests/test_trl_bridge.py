"""The public base class `AdvantageEstimatorTrainer`: the README's own-estimator example, run for real."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _trainer_utils import CPU, arithmetic_train, changed, prompt_reward, recording, snapshot, tiny_model_path

from trl_basis import AdvantageEstimatorTrainer, BASISConfig, MaxPOConfig, MaxPOTrainer
from trl_basis.tasks import arithmetic_reward, make_arithmetic_dataset

pytestmark = pytest.mark.slow


class ReinforcePPTrainer(AdvantageEstimatorTrainer):  # as in README.md, "Your own estimator"
    def _compute_advantages(self, rewards, batch):  # rewards: (B_global,) weighted, NaN = unscorable
        centred = rewards - torch.nanmean(rewards)
        return centred / (centred[~centred.isnan()].std() + 1e-4), {"rpp/baseline": torch.nanmean(rewards).item()}


def test_readme_estimator_trains_and_the_loss_gets_its_advantages(tmp_path):
    args = BASISConfig(
        **CPU, output_dir=str(tmp_path), per_device_train_batch_size=16, max_steps=2, num_reference_samples=0
    )
    trainer = recording(ReinforcePPTrainer)(
        tiny_model_path(), [prompt_reward], args=args, train_dataset=arithmetic_train(64, with_references=False)
    )
    before = snapshot(trainer.model)
    trainer.train()
    assert changed(before, trainer.model)
    logged = [h for h in trainer.state.log_history if "rpp/baseline" in h]
    for record, log in zip(trainer.records, logged, strict=True):
        rewards = record["rewards_per_func"].double().sum(dim=1)
        expected = (rewards - rewards.mean()) / ((rewards - rewards.mean()).std() + 1e-4)
        torch.testing.assert_close(record["local_advantages"].double(), expected, rtol=1e-5, atol=1e-5)
        assert log["rpp/baseline"] == pytest.approx(rewards.mean().item())


@pytest.mark.slow
@pytest.mark.parametrize("content", ["{truncated", None])
def test_resume_with_a_corrupt_or_missing_state_file_warns_and_restores_the_rest(tmp_path, content):
    from _trainer_utils import arithmetic_train, prompt_reward

    from trl_basis import BASISTrainer
    from trl_basis.trainers._trl_bridge import ESTIMATOR_STATE_FILE

    def build():
        args = BASISConfig(
            **dict(CPU, save_strategy="steps"),
            output_dir=str(tmp_path / "out"),
            per_device_train_batch_size=16,
            max_steps=2,
            save_steps=1,
        )
        return BASISTrainer(tiny_model_path(), [prompt_reward], args=args, train_dataset=arithmetic_train(64))

    build().train()
    checkpoint = tmp_path / "out" / "checkpoint-1"
    state = checkpoint / ESTIMATOR_STATE_FILE
    assert json.loads(state.read_text())["temperature"]  # written, and valid JSON
    if content is None:
        state.unlink()
    else:
        state.write_text(content)
    resumed = build()
    with pytest.warns(UserWarning, match=f"{ESTIMATOR_STATE_FILE} could not be read.*restarts empty"):
        resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.state.global_step == 2 and len(resumed._estimator_state["temperature"]) == 1


def test_the_trl_hook_points_exist_and_a_renamed_one_names_the_supported_range():
    from trl import GRPOTrainer

    from trl_basis.trainers._trl_bridge import SUPPORTED_TRL, check_trl_hooks

    check_trl_hooks(GRPOTrainer)  # the installed release has every hook, with the expected parameters

    class Renamed(GRPOTrainer):
        def _calculate_rewards(self, inputs, prompts, completions):  # a release that dropped a parameter
            return None

    with pytest.raises(ImportError, match=r"needs trl>=1\.16,<1\.17: GRPOTrainer\._calculate_rewards takes"):
        check_trl_hooks(Renamed)
    setup_cfg = (Path(__file__).resolve().parents[1] / "setup.cfg").read_text()
    assert f"trl{SUPPORTED_TRL.replace('1.16', '1.16.0')}" in setup_cfg.replace(" ", "")


@pytest.mark.slow
def test_an_infinite_reward_names_its_function(tmp_path):
    def broken_reward(prompts, completions, **kwargs):
        return [float("inf")] * len(prompts)

    data = make_arithmetic_dataset(num_train=16, num_test=2)["train"]
    args = MaxPOConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=16, num_generations=4, max_k=2)
    trainer = MaxPOTrainer(tiny_model_path(), [arithmetic_reward, broken_reward], args=args, train_dataset=data)
    with pytest.raises(ValueError, match=r"reward function\(s\) \['broken_reward'\] returned an infinite reward"):
        trainer.train()


@pytest.mark.slow
def test_resume_with_another_estimator_setting_is_refused(tmp_path):
    data = make_arithmetic_dataset(num_train=32, num_test=2)["train"]

    def build(k):
        args = MaxPOConfig(
            **dict(CPU, save_strategy="steps"),
            output_dir=str(tmp_path / "out"),
            per_device_train_batch_size=16,
            num_generations=4,
            max_k=k,
            max_steps=2,
            save_steps=1,
        )
        return MaxPOTrainer(tiny_model_path(), arithmetic_reward, args=args, train_dataset=data)

    build(2).train()
    with pytest.raises(ValueError, match="max_k=2 in the checkpoint but 3 now"):
        build(3).train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-1"))
    build(2).train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-1"))  # the same settings resume
