"""BASIS estimators (reference values, leave-one-out baseline, beta calibration) against direct loops."""

import math

import pytest
import torch

from trl_basis.advantages import BetaCalibration, basis_baseline, beta_grid, calibrate_beta, reference_values
from trl_basis.advantages.reference import basis_baseline_reference

NAN = float("nan")

# ---------------------------------------------------------------------------------------------------------
# Independent brute force: plain Python loops over rows i, j and over the grid.
# ---------------------------------------------------------------------------------------------------------


def bf_fallback(v, fallback):
    if fallback == "zero" or math.isnan(v):
        return 0.0
    return min(max(v, 0.0), 1.0)


def bf_baseline(rewards, values, eps=1e-3, fallback="zero"):
    size = len(rewards)
    active = [
        j
        for j in range(size)
        if not math.isnan(rewards[j]) and not math.isnan(values[j]) and eps <= values[j] <= 1 - eps
    ]
    out = []
    for i in range(size):
        others = [j for j in active if j != i]
        if i not in active or not others:
            out.append(bf_fallback(values[i], fallback))
            continue
        num = math.fsum(rewards[j] / (1 - values[j]) for j in others)
        den = math.fsum(values[j] / (1 - values[j]) for j in others)
        out.append(min(max(values[i] * num / den, 0.0), 1.0))
    return out


def bf_criteria(rewards, table, eps=1e-3, fallback="zero"):
    """criterion and initial_criterion of every grid column; table[i][g]."""
    valid = [i for i in range(len(rewards)) if not math.isnan(rewards[i])]
    criterion, initial = [], []
    for g in range(len(table[0]) if table else 0):
        column = [row[g] for row in table]
        b = bf_baseline(rewards, column, eps, fallback)
        if not valid:
            criterion.append(0.0)
            initial.append(0.0)
            continue
        criterion.append(math.fsum((rewards[i] - b[i]) ** 2 for i in valid) / len(valid))
        initial.append(math.fsum((rewards[i] - bf_fallback(column[i], "initial")) ** 2 for i in valid) / len(valid))
    return criterion, initial


def bf_argmin_last(values):
    best = min(values)
    return max(g for g, x in enumerate(values) if x == best)


def bf_calibrate(rewards, table, eps=1e-3, fallback="zero", exact=False):
    """(index or per-row indices, baseline) by loops; exact mode literally deletes row i and recalibrates."""
    criterion, _ = bf_criteria(rewards, table, eps, fallback)
    index = bf_argmin_last(criterion)
    if not exact:
        return index, bf_baseline(rewards, [row[index] for row in table], eps, fallback)
    indices, baseline = [], []
    for i in range(len(rewards)):
        if math.isnan(rewards[i]):
            row_index = index  # a missing reward enters nothing: leaving it out changes nothing
        else:
            reduced, _ = bf_criteria(rewards[:i] + rewards[i + 1 :], table[:i] + table[i + 1 :], eps, fallback)
            row_index = bf_argmin_last(reduced)
        indices.append(row_index)
        baseline.append(bf_baseline(rewards, [row[row_index] for row in table], eps, fallback)[i])
    return indices, baseline


def t64(x):
    return torch.tensor(x, dtype=torch.float64)


def random_case(seed, size=9, grid=7, nan_rewards=True, binary=False):
    """Rewards with missing entries, a value table with inactive entries (0, 1, below eps, NaN), a lonely column."""
    gen = torch.Generator().manual_seed(seed)
    if binary:
        rewards = (torch.rand(size, generator=gen) < 0.5).to(torch.float64)
    else:
        rewards = torch.rand(size, generator=gen, dtype=torch.float64)
    if nan_rewards:
        rewards[torch.rand(size, generator=gen) < 0.2] = NAN
    table = torch.rand(size, grid, generator=gen, dtype=torch.float64)
    table[0, :3] = 0.0
    table[1, 2] = 1.0
    table[2, 4] = NAN
    table[3, :] = 5e-4
    table[4:, grid - 1] = 0.0  # at most 4 active rows there; with NaN rewards maybe fewer
    table[:, 1] = table[:, 1].clamp(0.0, 1.0)
    return rewards, table


GRID7 = torch.linspace(0.1, 1.0, 7, dtype=torch.float64)


# ---------------------------------------------------------------------------------------------------------
# beta_grid and reference_values
# ---------------------------------------------------------------------------------------------------------


def test_beta_grid_is_log_spaced():
    grid = beta_grid()
    assert grid.dtype == torch.float64 and grid.shape == (230,)
    assert grid[0].item() == 0.01 and grid[-1].item() == 5.0
    ratios = grid[1:] / grid[:-1]
    torch.testing.assert_close(ratios, ratios[:1].expand_as(ratios), rtol=1e-12, atol=0)
    assert ratios[0].item() == pytest.approx((5.0 / 0.01) ** (1 / 229), rel=1e-12)
    assert beta_grid(1, 0.5, 2.0).tolist() == [0.5]
    assert beta_grid(3, 1.0, 100.0).tolist() == pytest.approx([1.0, 10.0, 100.0], rel=1e-14)


def test_reference_values_match_direct_formula():
    gen = torch.Generator().manual_seed(0)
    rho = torch.rand(6, 8, generator=gen, dtype=torch.float64)
    rho[1] = (rho[1] < 0.5).to(torch.float64)
    rho[2, 3] = NAN
    rho[3, :5] = NAN
    rho[4] = 0.25  # constant
    rho[5] = NAN  # no valid sample
    betas = beta_grid(11, 0.01, 5.0)
    got = reference_values(rho, betas)
    assert got.shape == (6, 11) and got.dtype == torch.float64
    for p in range(5):
        samples = [x for x in rho[p].tolist() if not math.isnan(x)]
        for g, beta in enumerate(betas.tolist()):
            want = beta * (math.log(math.fsum(math.exp(x / beta) for x in samples)) - math.log(len(samples)))
            assert got[p, g].item() == pytest.approx(want, rel=1e-12, abs=1e-14)
    assert torch.isnan(got[5]).all()
    assert torch.equal(got[4], torch.full((11,), 0.25, dtype=torch.float64))


def test_reference_values_bounds_and_limits():
    gen = torch.Generator().manual_seed(1)
    rho = torch.rand(32, 8, generator=gen, dtype=torch.float64)
    rho[:8] = (rho[:8] < 0.4).to(torch.float64)
    betas = torch.cat([t64([1e-4]), beta_grid(), t64([1e4])])
    values = reference_values(rho, betas)
    lo, hi = rho.mean(dim=1, keepdim=True), rho.amax(dim=1, keepdim=True)
    assert (values >= lo - 1e-12).all() and (values <= hi + 1e-12).all()
    assert (values[:, 1:] <= values[:, :-1] + 1e-12).all()  # decreasing in beta
    # beta -> 0: the best of N; beta -> inf: the mean (the reference pass rate).
    torch.testing.assert_close(values[:, 0], hi[:, 0], rtol=0, atol=1e-4 * math.log(8) + 1e-12)
    torch.testing.assert_close(values[:, -1], lo[:, 0], rtol=0, atol=1e-4)
    assert (values[:, -1] - lo[:, 0]).abs().max() < (values[:, 1] - lo[:, 0]).abs().min()


# ---------------------------------------------------------------------------------------------------------
# basis_baseline
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fallback", ["zero", "initial"])
@pytest.mark.parametrize("seed", range(6))
def test_basis_baseline_matches_brute_force(seed, fallback):
    rewards, table = random_case(seed, binary=seed % 2 == 1)
    for g in range(table.shape[1]):
        got = basis_baseline(rewards, table[:, g], fallback=fallback)
        want = bf_baseline(rewards.tolist(), table[:, g].tolist(), fallback=fallback)
        torch.testing.assert_close(got, t64(want), rtol=0, atol=1e-13)
        assert not torch.isnan(got).any() and (got >= 0).all() and (got <= 1).all()
        # The readable reference shipped beside the fast path says the same.
        shipped = basis_baseline_reference(rewards.tolist(), table[:, g].tolist(), fallback=fallback)
        torch.testing.assert_close(t64(shipped), t64(want), rtol=0, atol=1e-13)


def test_basis_baseline_by_hand():
    rewards = t64([1.0, 0.0, 1.0, 0.5])
    values = t64([0.5, 0.25, 0.75, 0.5])
    # weights 1/(1-v): 2, 4/3, 4, 2 ; v/(1-v): 1, 1/3, 3, 1
    b0 = 0.5 * (0.0 * 4 / 3 + 1.0 * 4 + 0.5 * 2) / (1 / 3 + 3 + 1)
    b1 = 0.25 * (1.0 * 2 + 1.0 * 4 + 0.5 * 2) / (1 + 3 + 1)
    got = basis_baseline(rewards, values)
    assert got[0].item() == pytest.approx(b0, abs=1e-15)
    assert got[1].item() == pytest.approx(b1, abs=1e-15)


def test_own_reward_never_enters_the_baseline():
    gen = torch.Generator().manual_seed(2)
    rewards = torch.rand(50, generator=gen, dtype=torch.float64)
    values = torch.rand(50, generator=gen, dtype=torch.float64) * 0.9 + 0.05
    before = basis_baseline(rewards, values)
    for i in (0, 17, 49):
        changed = rewards.clone()
        changed[i] = 1.0 - changed[i]
        after = basis_baseline(changed, values)
        assert abs(after[i].item() - before[i].item()) < 1e-13
        others = torch.arange(50) != i
        assert (after[others] - before[others]).abs().max() > 1e-6  # the other rows do see r_i


@pytest.mark.parametrize("fallback", ["zero", "initial"])
def test_fallback_rows(fallback):
    rewards = t64([0.3, 1.0, 0.0, NAN, 1.0, 0.0, 0.6, 0.2])
    values = t64([0.0, 1.0, 0.5, 0.4, 5e-4, 0.7, NAN, 0.999])
    got = basis_baseline(rewards, values, fallback=fallback)
    # Rows 0 (v = 0), 1 (v = 1), 3 (missing reward), 4 (v < eps), 6 (NaN value) are outside S.
    expected_fallback = {0: 0.0, 1: 1.0, 3: 0.4, 4: 5e-4, 6: 0.0}
    for i, v in expected_fallback.items():
        assert got[i].item() == (v if fallback == "initial" else 0.0)
    # Rows 2, 5, 7 are in S and use the formula with the two other active rows.
    want = bf_baseline(rewards.tolist(), values.tolist(), fallback=fallback)
    torch.testing.assert_close(got, t64(want), rtol=0, atol=1e-14)
    assert got[2].item() > 0
    # A single active row has no other row to learn from: fallback.
    single = basis_baseline(t64([1.0, 0.0, 1.0]), t64([0.3, 0.0, 1.0]), fallback=fallback)
    assert single.tolist() == ([0.3, 0.0, 1.0] if fallback == "initial" else [0.0, 0.0, 0.0])
    # Two active rows: each one learns from the other.
    pair = basis_baseline(t64([1.0, 0.5]), t64([0.4, 0.25]), fallback=fallback)
    assert pair[0].item() == pytest.approx(0.4 * (0.5 / 0.75) / (0.25 / 0.75), abs=1e-15)
    assert pair[1].item() == pytest.approx(0.25 * (1.0 / 0.6) / (0.4 / 0.6), abs=1e-15)
    # The clamp to [0, 1]: 0.9 * (1 / 0.8) / (0.2 / 0.8) = 4.5.
    assert basis_baseline(t64([1.0, 1.0]), t64([0.9, 0.2]), fallback=fallback)[0].item() == 1.0


# ---------------------------------------------------------------------------------------------------------
# calibrate_beta
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fallback", ["zero", "initial"])
@pytest.mark.parametrize("seed", range(8))
def test_calibrate_matches_brute_force(seed, fallback):
    rewards, table = random_case(100 + seed, binary=seed % 3 == 2)
    cal = calibrate_beta(rewards, table, GRID7, fallback=fallback)
    assert isinstance(cal, BetaCalibration)
    criterion, initial = bf_criteria(rewards.tolist(), table.tolist(), fallback=fallback)
    torch.testing.assert_close(cal.criterion, t64(criterion), rtol=0, atol=1e-13)
    torch.testing.assert_close(cal.initial_criterion, t64(initial), rtol=0, atol=1e-13)
    index, baseline = bf_calibrate(rewards.tolist(), table.tolist(), fallback=fallback)
    assert cal.index.shape == () and cal.index.item() == index
    assert cal.beta.item() == GRID7[index].item()
    torch.testing.assert_close(cal.baseline, t64(baseline), rtol=0, atol=1e-13)
    # Counts at the chosen beta.
    column = table[:, index]
    valid = ~torch.isnan(rewards)
    active = valid & (column >= 1e-3) & (column <= 1 - 1e-3)
    assert cal.num_active == int(active.sum())
    assert cal.num_fallback == int(valid.sum()) - (int(active.sum()) if active.sum() >= 2 else 0)


@pytest.mark.parametrize("fallback", ["zero", "initial"])
@pytest.mark.parametrize("seed", range(6))
def test_exact_mode_matches_brute_force(seed, fallback):
    rewards, table = random_case(200 + seed, size=8, grid=6, binary=seed % 3 == 2)
    grid = GRID7[:6]
    indices, baseline = bf_calibrate(rewards.tolist(), table.tolist(), fallback=fallback, exact=True)
    for chunk_size in (None, 1, 3):
        cal = calibrate_beta(rewards, table, grid, fallback=fallback, exact=True, chunk_size=chunk_size)
        assert cal.index.tolist() == indices
        torch.testing.assert_close(cal.beta, grid[cal.index])
        torch.testing.assert_close(cal.baseline, t64(baseline), rtol=0, atol=1e-13)
        normal = calibrate_beta(rewards, table, grid, fallback=fallback)
        torch.testing.assert_close(cal.criterion, normal.criterion, rtol=0, atol=0)
        assert (cal.num_active, cal.num_fallback) == (normal.num_active, normal.num_fallback)


@pytest.mark.parametrize("seed", range(4))
def test_degenerate_batches_match_brute_force(seed):
    """Tiny batches full of edge cases (0, 1, NaN, inf values; missing rewards): indices, ties included."""
    gen = torch.Generator().manual_seed(1000 + seed)
    for trial in range(12):
        size = int(torch.randint(1, 8, (), generator=gen))
        grid = int(torch.randint(1, 5, (), generator=gen))
        rewards = torch.rand(size, generator=gen, dtype=torch.float64)
        if trial % 2:
            rewards = (rewards < 0.5).to(torch.float64)
        rewards[torch.rand(size, generator=gen) < 0.2] = NAN
        table = torch.rand(size, grid, generator=gen, dtype=torch.float64)
        for value, share in ((0.0, 0.15), (1.0, 0.1), (NAN, 0.1), (math.inf, 0.05)):
            table[torch.rand(size, grid, generator=gen) < share] = value
        table_list = [[1.0 if x == math.inf else x for x in row] for row in table.tolist()]
        betas = torch.linspace(0.1, 1.0, grid, dtype=torch.float64)
        for fallback in ("zero", "initial"):
            for exact in (False, True):
                cal = calibrate_beta(rewards, table, betas, fallback=fallback, exact=exact)
                if exact and size == 1 and not math.isnan(rewards[0].item()):
                    want_index, want = (
                        [grid - 1],
                        bf_baseline(rewards.tolist(), [table_list[0][-1]], fallback=fallback),
                    )
                else:
                    want_index, want = bf_calibrate(rewards.tolist(), table_list, fallback=fallback, exact=exact)
                assert cal.index.tolist() == want_index, (trial, fallback, exact)
                torch.testing.assert_close(cal.baseline, t64(want), rtol=0, atol=1e-13)


def test_calibrated_beta_is_the_argmin_of_the_criterion():
    gen = torch.Generator().manual_seed(4)
    refs = (torch.rand(600, 8, generator=gen) < torch.rand(600, 1, generator=gen)).to(torch.float64)
    refs = refs[(refs.amin(dim=1) < refs.amax(dim=1))][:512]  # constant prompts are filtered out (§1a)
    betas = beta_grid()
    table = reference_values(refs, betas)
    # The policy has improved: its pass rate is the reference one pushed up.
    rewards = (torch.rand(len(refs), generator=gen) < refs.mean(dim=1) ** 0.5).to(torch.float64)
    cal = calibrate_beta(rewards, table, betas)
    assert cal.criterion[cal.index] == cal.criterion.min()
    assert (cal.criterion[cal.index + 1 :] > cal.criterion[cal.index]).all()  # ties would go to the larger beta
    assert 0 < cal.index.item() < len(betas) - 1  # an interior minimum: the checks above are not vacuous
    assert cal.num_active == len(refs) and cal.num_fallback == 0
    torch.testing.assert_close(cal.baseline, basis_baseline(rewards, table[:, cal.index]), rtol=0, atol=1e-14)


def test_ties_pick_the_largest_beta():
    gen = torch.Generator().manual_seed(5)
    rewards = torch.rand(20, generator=gen, dtype=torch.float64)
    good = rewards.clamp(0.05, 0.95)  # fits the rewards well
    bad = torch.rand(20, generator=gen, dtype=torch.float64) * 0.9 + 0.05
    betas = beta_grid(5, 0.1, 1.0)
    cal = calibrate_beta(rewards, torch.stack([good, bad, good, bad, bad], dim=1), betas)
    assert cal.criterion[0] == cal.criterion[2] < cal.criterion[1]
    assert cal.index.item() == 2 and cal.beta.item() == betas[2].item()
    flat = calibrate_beta(rewards, good[:, None].expand(20, 5), betas)  # every beta ties
    assert flat.index.item() == 4
    exact = calibrate_beta(rewards, good[:, None].expand(20, 5), betas, exact=True)
    assert exact.index.tolist() == [4] * 20


def test_exact_mode_baseline_ignores_own_reward():
    """Exact mode: b_i does not move when r_i changes, even where the normal-mode beta does."""
    betas = beta_grid(12, 0.05, 5.0)
    found = False
    for seed in range(200):
        gen = torch.Generator().manual_seed(seed)
        refs = (torch.rand(10, 8, generator=gen) < torch.rand(10, 1, generator=gen) * 0.8 + 0.1).to(torch.float64)
        table = reference_values(refs, betas)
        rewards = (torch.rand(10, generator=gen) < 0.5).to(torch.float64)
        flipped = rewards.clone()
        flipped[0] = 1.0 - flipped[0]
        if calibrate_beta(rewards, table, betas).index == calibrate_beta(flipped, table, betas).index:
            continue
        found = True
        before = calibrate_beta(rewards, table, betas, exact=True)
        after = calibrate_beta(flipped, table, betas, exact=True)
        assert after.index[0] == before.index[0]
        assert abs(after.baseline[0].item() - before.baseline[0].item()) < 1e-13
        break
    assert found, "no case where the normal-mode beta depends on r_0"
    # And in general, over random continuous rewards.
    gen = torch.Generator().manual_seed(9)
    rewards = torch.rand(16, generator=gen, dtype=torch.float64)
    table = torch.rand(16, 12, generator=gen, dtype=torch.float64) * 0.9 + 0.05
    before = calibrate_beta(rewards, table, betas, exact=True)
    for i in range(16):
        changed = rewards.clone()
        changed[i] = torch.rand((), generator=gen, dtype=torch.float64)
        after = calibrate_beta(changed, table, betas, exact=True)
        assert after.index[i] == before.index[i]
        assert abs(after.baseline[i].item() - before.baseline[i].item()) < 1e-13


def test_exact_equals_normal_when_no_row_moves_the_argmin():
    """Rewards proportional to v(beta*): the criterion is 0 at beta* with or without any one row."""
    gen = torch.Generator().manual_seed(6)
    refs = torch.rand(64, 8, generator=gen, dtype=torch.float64)
    betas = beta_grid(20, 0.05, 5.0)
    table = reference_values(refs, betas)
    star = 7
    rewards = 0.8 * table[:, star]
    normal = calibrate_beta(rewards, table, betas)
    exact = calibrate_beta(rewards, table, betas, exact=True)
    assert normal.index.item() == star and normal.criterion[star] < 1e-28
    assert exact.index.tolist() == [star] * 64
    torch.testing.assert_close(exact.baseline, normal.baseline, rtol=0, atol=1e-15)
    torch.testing.assert_close(normal.baseline, rewards, rtol=0, atol=1e-14)


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("fallback", ["zero", "initial"])
def test_missing_rewards(exact, fallback):
    betas = beta_grid(9)
    table = torch.rand(6, 9, dtype=torch.float64) * 0.9 + 0.05
    cal = calibrate_beta(torch.full((6,), NAN), table, betas, fallback=fallback, exact=exact)
    assert torch.equal(cal.criterion, torch.zeros(9, dtype=torch.float64))
    assert torch.equal(cal.initial_criterion, torch.zeros(9, dtype=torch.float64))
    assert (cal.index == 8).all() and cal.index.shape == ((6,) if exact else ())
    want = torch.zeros(6, dtype=torch.float64) if fallback == "zero" else table[:, 8]
    torch.testing.assert_close(cal.baseline, want, rtol=0, atol=0)
    assert (cal.num_active, cal.num_fallback) == (0, 0)
    # Missing rewards are simply left out: the other rows see the batch without them.
    gen = torch.Generator().manual_seed(8)
    rewards = torch.rand(6, generator=gen, dtype=torch.float64)
    rewards[[1, 4]] = NAN
    part = calibrate_beta(rewards, table, betas, fallback=fallback, exact=exact)
    keep = torch.tensor([0, 2, 3, 5])
    alone = calibrate_beta(rewards[keep], table[keep], betas, fallback=fallback, exact=exact)
    torch.testing.assert_close(part.criterion, alone.criterion, rtol=0, atol=1e-15)
    torch.testing.assert_close(part.baseline[keep], alone.baseline, rtol=0, atol=1e-15)
    assert not torch.isnan(part.baseline).any()


def test_nan_values_and_one_row():
    betas = beta_grid(4)
    cal = calibrate_beta(t64([1.0, 0.0, 0.5]), torch.full((3, 4), NAN, dtype=torch.float64), betas)
    assert torch.equal(cal.baseline, torch.zeros(3, dtype=torch.float64))
    assert torch.isfinite(cal.criterion).all() and cal.index.item() == 3
    torch.testing.assert_close(cal.criterion, torch.full((4,), (1.0 + 0.25) / 3, dtype=torch.float64))
    one = calibrate_beta(t64([0.7]), t64([[0.2, 0.5, 0.9, 0.95]]), betas, fallback="initial", exact=True)
    assert one.index.tolist() == [3] and one.baseline.tolist() == [0.95] and one.num_fallback == 1


def test_dtypes_and_large_batch_agree_with_small_blocks():
    """float32 inputs give float64 results; B = 3000 (several grid blocks) agrees with basis_baseline."""
    gen = torch.Generator().manual_seed(10)
    refs = (torch.rand(3000, 8, generator=gen) < torch.rand(3000, 1, generator=gen)).to(torch.float32)
    betas = beta_grid(40)
    table = reference_values(refs, betas)
    rewards = (torch.rand(3000, generator=gen) < 0.5).to(torch.float32)
    cal = calibrate_beta(rewards, table.to(torch.float32), betas)
    assert cal.baseline.dtype == cal.criterion.dtype == cal.beta.dtype == torch.float64
    table32 = table.to(torch.float32).to(torch.float64)
    for g in (0, 17, 39):
        b = basis_baseline(rewards, table32[:, g])
        crit = (rewards.double() - b).square().mean()
        assert cal.criterion[g].item() == pytest.approx(crit.item(), rel=1e-12)


# ---------------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------------

R = t64([0.0, 0.5, 1.0])
V = torch.full((3, 4), 0.5, dtype=torch.float64)
G4 = beta_grid(4)


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda: beta_grid(0), r"`num` must be >= 1"),
        (lambda: beta_grid(10, 0.0, 1.0), r"`low` must be a positive"),
        (lambda: beta_grid(10, 1.0, 0.5), r"`high` must be .*>= low"),
        (lambda: reference_values(torch.zeros(3, 0), G4), r"`reference_rewards` has zero reference samples"),
        (lambda: reference_values(torch.zeros(3, 2), torch.zeros(0)), r"`betas` is an empty grid"),
        (lambda: reference_values(torch.zeros(3), G4), r"`reference_rewards` must be 2-D"),
        (lambda: reference_values(torch.zeros(3, 2), t64([1.0, 0.5])), r"`betas` must be sorted ascending"),
        (lambda: reference_values(torch.zeros(3, 2), t64([-1.0, 0.5])), r"`betas` must hold positive"),
        (lambda: basis_baseline(t64([0.5, 1.5]), t64([0.5, 0.5])), r"`rewards` must lie in \[0, 1\].*reward_weights"),
        (lambda: basis_baseline(t64([0.5, -0.1]), t64([0.5, 0.5])), r"`rewards` must lie in \[0, 1\].*NaN"),
        (lambda: basis_baseline(R, t64([0.5, 0.5])), r"`values` must have the shape of `rewards`"),
        (lambda: basis_baseline(R, R, fallback="mean"), r"unknown `fallback` 'mean'"),
        (lambda: basis_baseline(R, R, epsilon=0.0), r"`epsilon` must be a number in \(0, 0.5\)"),
        (lambda: calibrate_beta(t64([2.0, 0.5, 0.5]), V, G4), r"`rewards` must lie in \[0, 1\]"),
        (lambda: calibrate_beta(R, V[:2], G4), r"`value_table` must be \(B, G\) with B = 3"),
        (lambda: calibrate_beta(R, V[:, 0], G4), r"`value_table` must be \(B, G\)"),
        (lambda: calibrate_beta(R, V, beta_grid(5)), r"`value_table` has 4 columns but `betas` has 5"),
        (lambda: calibrate_beta(R, V[:, :0], torch.zeros(0)), r"`betas` is an empty grid"),
        (lambda: calibrate_beta(R, V, G4, fallback="v"), r"unknown `fallback` 'v'"),
        (lambda: calibrate_beta(R, V, G4, exact=True, chunk_size=0), r"`chunk_size` must be a positive"),
        (lambda: calibrate_beta(R[:, None], V, G4), r"`rewards` must be 1-D"),
    ],
)
def test_bad_input_raises(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(12)
    refs = (torch.rand(300, 8, generator=gen) < torch.rand(300, 1, generator=gen)).to(torch.float64)
    betas = beta_grid()
    table = reference_values(refs, betas)
    rewards = (torch.rand(300, generator=gen) < 0.5).to(torch.float64)
    rewards[3] = NAN
    torch.testing.assert_close(reference_values(refs.cuda(), betas).cpu(), table, rtol=0, atol=1e-14)
    for exact in (False, True):
        cpu = calibrate_beta(rewards, table, betas, exact=exact)
        gpu = calibrate_beta(rewards.cuda(), table.cuda(), betas, exact=exact)
        assert gpu.baseline.device.type == "cuda"
        assert torch.equal(gpu.index.cpu(), cpu.index)
        torch.testing.assert_close(gpu.baseline.cpu(), cpu.baseline, rtol=0, atol=1e-13)
        torch.testing.assert_close(gpu.criterion.cpu(), cpu.criterion, rtol=0, atol=1e-13)


def test_calibrate_beta_accepts_rewards_that_require_grad():
    from trl_basis.advantages import beta_grid, calibrate_beta, reference_values

    betas = beta_grid()
    g = torch.Generator().manual_seed(0)
    rewards = (torch.rand(16, generator=g) < 0.5).double()
    table = reference_values((torch.rand(16, 8, generator=g) < 0.4).double(), betas)
    expected = calibrate_beta(rewards, table, betas)
    got = calibrate_beta(rewards.clone().requires_grad_(True), table, betas)
    assert got.beta == expected.beta
    torch.testing.assert_close(got.baseline, expected.baseline)


@pytest.mark.parametrize(
    "call",
    [
        lambda r, v, b: calibrate_beta(r, v, b, epsilon=1e-17),
        lambda r, v, b: calibrate_beta(r, v, b, epsilon=1e-17, exact=True),
        lambda r, v, b: basis_baseline(r, v[:, 0], epsilon=1e-17),
    ],
    ids=["calibrate_beta", "calibrate_beta-exact", "basis_baseline"],
)
def test_an_epsilon_below_float64_resolution_is_refused_not_a_nan_baseline(call):
    """1 - 1e-17 == 1 in float64: a value-1 row would stay active and divide by 1 - v = 0 (a NaN baseline)."""
    rewards = t64([1.0, 0.0, 1.0, 0.0])
    table = t64([[1.0] * 4, [0.3] * 4, [0.6] * 4, [0.5] * 4])
    with pytest.raises(ValueError, match=r"`epsilon` .*float64") as info:
        call(rewards, table, beta_grid(4))
    assert "\n" not in str(info.value)
    assert not torch.isnan(calibrate_beta(rewards, table, beta_grid(4), epsilon=1e-15).baseline).any()
