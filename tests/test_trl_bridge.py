"""The public base class `AdvantageEstimatorTrainer`: the README's own-estimator example, run for real."""

from __future__ import annotations

import pytest
import torch
from _trainer_utils import CPU, arithmetic_train, changed, prompt_reward, recording, snapshot, tiny_model_path

from trl_basis import AdvantageEstimatorTrainer, BASISConfig

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
