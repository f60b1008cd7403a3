"""The single-rollout peers (`trl_basis.advantages.peers`): REINFORCE++'s batch baseline and SPO's tracker, against
direct formulas written out element by element."""

from __future__ import annotations

import math

import pytest
import torch

from trl_basis.advantages.peers import (
    reinforce_pp_advantages,
    spo_advantages,
    spo_tracker_init,
    spo_tracker_update,
)


def _normalised(values: list[float]) -> list[float]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return [(v - mean) / std for v in values]


def test_reinforce_pp_is_the_normalised_batch_baseline():
    r = [0.0, 1.0, 1.0, 0.0, 0.0, 0.5]
    got = reinforce_pp_advantages(torch.tensor(r))
    assert torch.allclose(got, torch.tensor(_normalised(r), dtype=torch.float64), atol=1e-12)
    # NaN rows (no reward) stay NaN and do not enter the mean or std.
    got = reinforce_pp_advantages(torch.tensor([0.0, float("nan"), 1.0, 1.0]))
    assert math.isnan(got[1].item())
    assert torch.allclose(got[[0, 2, 3]], torch.tensor(_normalised([0.0, 1.0, 1.0]), dtype=torch.float64))
    # A constant batch has no signal: zeros, never NaN.
    assert torch.equal(reinforce_pp_advantages(torch.ones(5)), torch.zeros(5, dtype=torch.float64))


def test_spo_tracker_init_counts_the_reference_samples():
    refs = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0]])
    alpha, beta = spo_tracker_init(refs)
    assert alpha.tolist() == [2.0, 3.0] and beta.tolist() == [2.0, 1.0]
    alpha, beta = spo_tracker_init(refs, prior_weight=2.0)
    assert alpha.tolist() == [1.0, 1.5] and beta.tolist() == [1.0, 0.5]
    with pytest.raises(ValueError, match="prior_weight"):
        spo_tracker_init(refs, prior_weight=0.0)
    with pytest.raises(ValueError, match="reference_rewards"):
        spo_tracker_init(torch.ones(3))


def test_spo_tracker_update_is_the_discounted_count():
    """After rewards r_1..r_T from (a0, b0): alpha = ρ^T a0 + Σ_t ρ^(T−t) r_t, beta likewise with 1 − r_t."""
    rho, a0, b0 = 0.9, 3.0, 5.0
    rewards = [1.0, 0.0, 1.0, 1.0, float("nan"), 0.0, 1.0]
    a, b = a0, b0
    for r in rewards:
        a, b = spo_tracker_update(a, b, r, rho)
    seen = [r for r in rewards if r == r]
    T = len(seen)
    expect_a = rho**T * a0 + sum(rho ** (T - 1 - t) * r for t, r in enumerate(seen))
    expect_b = rho**T * b0 + sum(rho ** (T - 1 - t) * (1 - r) for t, r in enumerate(seen))
    assert a == pytest.approx(expect_a, abs=1e-12) and b == pytest.approx(expect_b, abs=1e-12)
    with pytest.raises(ValueError, match="discount"):
        spo_tracker_update(1.0, 1.0, 1.0, 1.5)


def test_spo_advantages_use_the_tracker_value_not_the_own_reward():
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0])
    alpha = torch.tensor([1.0, 2.0, 6.0, 3.0, 0.5])
    beta = torch.tensor([3.0, 2.0, 2.0, 1.0, 4.5])
    got, value = spo_advantages(rewards, alpha, beta)
    expect_value = [a / (a + b) for a, b in zip(alpha.tolist(), beta.tolist())]
    assert value.tolist() == pytest.approx(expect_value, abs=1e-15)
    raw = [r - v for r, v in zip(rewards.tolist(), expect_value)]
    assert got.tolist() == pytest.approx(_normalised(raw), abs=1e-12)
    # The baseline of row 0 does not change with its own reward.
    _, value_flipped = spo_advantages(torch.tensor([0.0, 0.0, 1.0, 0.0, 1.0]), alpha, beta)
    assert value_flipped[0] == value[0]
    with pytest.raises(ValueError, match="shape"):
        spo_advantages(rewards, alpha[:3], beta)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        spo_advantages(torch.tensor([2.0, 0.0, 1.0, 0.0, 1.0]), alpha, beta)


# ------------------------------------------------------------------------------------------------ BASIS + history
def test_blend_with_history_is_the_beta_posterior_mean_with_the_batch_baseline_as_prior():
    from trl_basis.advantages import blend_with_history

    baseline = torch.tensor([0.3, 0.5, 0.0, 0.8])
    alpha = torch.tensor([0.0, 2.0, 1.5, 0.0])
    beta = torch.tensor([0.0, 1.0, 0.5, 3.0])
    got = blend_with_history(baseline, alpha, beta, 8.0)
    expect = [(8 * b + a) / (8 + a + f) for b, a, f in zip(baseline.tolist(), alpha.tolist(), beta.tolist())]
    assert got.tolist() == pytest.approx(expect, abs=1e-15)
    assert got[0] == pytest.approx(0.3)  # never seen: the batch baseline unchanged
    # Per-row weights, and the limit w -> 0: the prompt's own discounted mean (SPO's tracker).
    per_row = blend_with_history(baseline, alpha, beta, torch.tensor([8.0, 4.0, 2.0, 1.0]))
    assert per_row[1].item() == pytest.approx((4 * 0.5 + 2) / (4 + 3))
    tiny = blend_with_history(baseline[1:], alpha[1:], beta[1:], 1e-12)
    assert tiny.tolist() == pytest.approx([2 / 3, 0.75, 0.0], abs=1e-9)
    with pytest.raises(ValueError, match="prior_weight"):
        blend_with_history(baseline, alpha, beta, 0.0)
    with pytest.raises(ValueError, match=">= 0"):
        blend_with_history(baseline, -alpha - 1, beta, 1.0)
