"""The single-rollout peers of BASIS as trainers, for the benchmarks: REINFORCE++@1 and SPO@1.

Both are small subclasses of the package's trainers; their math is `trl_basis.advantages.peers` (tested there).
"""

from __future__ import annotations

import torch

#: SPO's forgetting factor. The paper adapts it to the KL divergence since a prompt was last seen; we keep it
#: constant (per-prompt KL tracking would need the old policy's log-probabilities of every revisited prompt).
SPO_DISCOUNT = 0.9


def reinforce_pp_trainer_class():
    """REINFORCE++@1: one completion per prompt, advantage (r − batch mean) / batch std over the global batch."""
    from trl_basis import AdvantageEstimatorTrainer
    from trl_basis.advantages.peers import reinforce_pp_advantages

    class ReinforcePPTrainer(AdvantageEstimatorTrainer):
        def _compute_advantages(self, rewards, batch):
            return reinforce_pp_advantages(rewards), {"rpp/baseline": torch.nanmean(rewards).item()}

    return ReinforcePPTrainer


def spo_trainer_class(discount: float = SPO_DISCOUNT):
    """SPO@1: a persistent Beta tracker per prompt, started from the SAME offline samples BASIS uses (its offline
    stage, cache and constant-prompt filter are BASISTrainer's), global advantage normalisation."""
    from trl_basis import BASISTrainer
    from trl_basis.advantages import prompt_key
    from trl_basis.advantages.peers import spo_advantages, spo_tracker_init, spo_tracker_update

    class SPOTrainer(BASISTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._estimator_columns = (self.args.reference_rewards_column, "prompt")
            self._tracker: dict[str, tuple[float, float]] = {}

        def _compute_advantages(self, rewards, batch):
            keys = [prompt_key(p) for p in batch.columns["prompt"]]
            refs = batch.columns[self.args.reference_rewards_column]
            alpha0, beta0 = spo_tracker_init(refs)
            state = [self._tracker.get(k, (a.item(), b.item())) for k, a, b in zip(keys, alpha0, beta0, strict=True)]
            alpha = torch.tensor([s[0] for s in state], dtype=torch.float64)
            beta = torch.tensor([s[1] for s in state], dtype=torch.float64)
            advantages, value = spo_advantages(rewards.double().cpu(), alpha, beta)
            # Update after the whole batch was read (a prompt drawn twice is observed twice).
            for key, initial, reward in zip(keys, state, rewards.tolist(), strict=True):
                self._tracker[key] = spo_tracker_update(*self._tracker.get(key, initial), reward, discount)
            return advantages.to(rewards.device), {"spo/value_mean": value.mean().item()}

    return SPOTrainer


def rloo_config_kwargs() -> dict:
    """RLOO@G as a MaxPOTrainer setting: K = 1 with the Leave-Two-Out estimator is RLOO exactly (ALGORITHMS.md §2)."""
    return dict(max_k=1, advantage_estimator="l2o", advantage_scaling="none")
