"""Single-rollout peers of BASIS, for comparison: REINFORCE++'s batch baseline and SPO's per-prompt value tracker.

Neither is part of the BASIS/MaxPO specification; both are here so the benchmarks compare BASIS with the strongest
published one-completion-per-prompt baselines using the same tested code (`docs/ALGORITHMS.md`, "Peers").
Everything is float64 and pure torch.
"""

from __future__ import annotations

import torch

from ._utils import as_float64, check_basis_rewards

__all__ = ["reinforce_pp_advantages", "spo_advantages", "spo_tracker_init", "spo_tracker_update"]


def _normalise(advantages: torch.Tensor) -> torch.Tensor:
    """`(A − mean) / std` over the non-NaN rows (Bessel std; a std of 0 leaves the centred values, all 0)."""
    valid = ~torch.isnan(advantages)
    if int(valid.sum()) < 2:
        return torch.where(valid, torch.zeros_like(advantages), advantages)
    centred = advantages - advantages[valid].mean()
    std = centred[valid].std()
    return centred / std if std > 0 else centred


def reinforce_pp_advantages(rewards) -> torch.Tensor:
    """REINFORCE++ with a batch baseline (OpenRLHF's ``reinforce_baseline``), one completion per prompt:

        A_i = (r_i − mean_j r_j) / std_j r_j

    over the rows with a reward (NaN rows stay NaN). The baseline includes ``r_i`` itself (an O(1/B) bias).
    """
    r = as_float64(rewards, "rewards")
    if r.ndim != 1:
        raise ValueError(f"`rewards` must be 1-D; got shape {tuple(r.shape)}")
    return _normalise(r)


def spo_tracker_init(reference_rewards, prior_weight: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """SPO's Beta-distribution tracker started from offline samples: ``(successes, failures)`` of shape ``(P,)``
    (the Beta distribution's two parameters, named by what they count).

    With ``N`` reference rewards ``ρ_{x,1..N}`` and ``v_0 = mean_k ρ_{x,k}``: ``successes = n0 · v_0`` and
    ``failures = n0 · (1 − v_0)``, where ``n0 = prior_weight`` (default ``N``: the samples count as ``N`` observations).
    """
    ref = as_float64(reference_rewards, "reference_rewards")
    if ref.ndim != 2 or ref.shape[1] < 1:
        raise ValueError(f"`reference_rewards` must be (P, N) with N >= 1; got shape {tuple(ref.shape)}")
    n0 = float(ref.shape[1] if prior_weight is None else prior_weight)
    if not n0 > 0:
        raise ValueError(f"`prior_weight` must be > 0; got {prior_weight!r}")
    v0 = ref.mean(dim=1)
    return n0 * v0, n0 * (1.0 - v0)


def spo_advantages(rewards, successes, failures) -> tuple[torch.Tensor, torch.Tensor]:
    """SPO's advantage (arXiv 2509.13232) for one completion per prompt, given each row's tracker
    ``(successes, failures)`` read BEFORE this batch's update:

        v̂_i = s_i / (s_i + f_i),     A_i = r_i − v̂_i,     Ã = (A − mean_B A) / std_B A

    Returns ``(Ã, v̂)``; rows with a NaN reward stay NaN. The baseline never sees ``r_i``, so the unnormalised
    ``A`` is unbiased; the global normalisation is SPO's.
    """
    r = check_basis_rewards(rewards)
    a, b = as_float64(successes, "successes", r.device), as_float64(failures, "failures", r.device)
    if a.shape != r.shape or b.shape != r.shape:
        raise ValueError(f"`successes` and `failures` must have the shape of `rewards` {tuple(r.shape)}")
    value = a / (a + b)
    return _normalise(r - value), value


def spo_tracker_update(successes: float, failures: float, reward: float, discount: float) -> tuple[float, float]:
    """One observation of a prompt: ``s ← ρ·s + r``, ``f ← ρ·f + (1 − r)`` with ``ρ = discount``.

    SPO makes ρ adaptive to the policy's KL divergence since the prompt was last seen; a constant ρ in (0, 1] is
    the simplification used here (``ρ = 1`` never forgets). A NaN reward leaves the tracker unchanged.
    """
    if not 0.0 < discount <= 1.0:
        raise ValueError(f"`discount` must be in (0, 1]; got {discount!r}")
    if reward != reward:  # NaN: nothing observed
        return successes, failures
    return discount * successes + reward, discount * failures + (1.0 - reward)
