"""BASIS's rolling and online values (ALGORITHMS.md §1f) against plain-Python references."""

from __future__ import annotations

import math
import random

import pytest
import torch

from trl_basis.advantages import (
    beta_grid,
    calibrate_beta,
    leave_one_out_mean,
    reference_values,
    rolling_row,
    usable_rows,
    with_batch_fallback,
)


def test_rolling_row_keeps_the_last_window_rewards_and_skips_missing_ones():
    rng = random.Random(0)
    for window in (1, 2, 5, 8):
        row: list[float] = [rng.random() for _ in range(window)]
        seen = list(row)
        for _ in range(20):
            reward = math.nan if rng.random() < 0.2 else float(rng.random() < 0.5)
            row = rolling_row(row, reward, window)
            if reward == reward:
                seen.append(reward)
            assert row == seen[-window:]
    assert rolling_row([], 1.0, 3) == [1.0]  # an online row starts empty
    with pytest.raises(ValueError, match="window"):
        rolling_row([0.0], 1.0, 0)


def test_usable_rows_counts_valid_rewards():
    rows = [[], [1.0], [1.0, math.nan], [0.0, 1.0], [None, 0.0, 1.0]]
    assert usable_rows(rows, 2) == [False, False, False, True, True]
    assert usable_rows(rows, 1) == [False, True, True, True, True]


def test_leave_one_out_mean_matches_a_loop_and_never_sees_its_own_reward():
    g = torch.Generator().manual_seed(1)
    for size in (1, 2, 3, 17):
        r = torch.rand(size, generator=g, dtype=torch.float64)
        r[torch.rand(size, generator=g) < 0.3] = math.nan
        got = leave_one_out_mean(r)
        for i in range(size):
            others = [r[j].item() for j in range(size) if j != i and r[j] == r[j]]
            expected = sum(others) / len(others) if others else math.nan
            if others:
                assert got[i].item() == pytest.approx(expected, abs=1e-12)
            else:
                assert math.isnan(got[i].item())
        # Changing r_i leaves m_i unchanged.
        if size > 1 and r[0] == r[0]:
            bumped = r.clone()
            bumped[0] = 1.0 - r[0]
            assert leave_one_out_mean(bumped)[0].item() == pytest.approx(got[0].item(), abs=1e-12)


def test_with_batch_fallback_replaces_only_unusable_rows_and_leaves_beta_unchanged():
    """Rows without a usable value are outside S (NaN values): the chosen β and the usable rows' baselines are those
    of the usable rows alone, and every unusable row gets the leave-one-out batch mean."""
    g = torch.Generator().manual_seed(2)
    betas = beta_grid(40)
    size, n = 24, 4
    refs = (torch.rand(size, n, generator=g) < torch.rand(size, 1, generator=g)).double()
    refs[:, 0], refs[:, 1] = 0.0, 1.0
    rewards = (torch.rand(size, generator=g) < 0.5).double()
    usable = torch.rand(size, generator=g) < 0.6
    table = reference_values(refs, betas)
    table[~usable] = math.nan
    result = calibrate_beta(rewards, table, betas, fallback="initial")
    baseline = with_batch_fallback(result.baseline, rewards, usable)
    # Reference: the usable rows calibrated alone.
    alone = calibrate_beta(rewards[usable], table[usable], betas, fallback="initial")
    assert alone.beta.item() == result.beta.item()
    torch.testing.assert_close(baseline[usable], alone.baseline, rtol=0, atol=1e-12)
    for i in torch.nonzero(~usable).flatten().tolist():
        others = [rewards[j].item() for j in range(size) if j != i]
        assert baseline[i].item() == pytest.approx(sum(others) / len(others), abs=1e-12)
