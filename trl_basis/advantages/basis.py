"""BASIS: one completion per prompt, a leave-one-out baseline shared across the batch.

Specification: `docs/ALGORITHMS.md` §1. Offline, every training prompt x gets N reference rewards
`rho_{x,1..N}` from the initial policy; on a temperature grid `beta_1 <= ... <= beta_G` they give the
initial value estimate `v_x(beta)` (§1a). Online, a batch of B prompts with one reward each gets the
best-linear-unbiased leave-one-out baseline `b_i(beta)` (§1b), and `beta` is calibrated on the batch by
minimising the leave-one-out error of the baseline (§1c).

Conventions shared by every function here:

* Everything is computed in float64 on the device of the rewards (the grid and the value table are moved
  there) and returned as float64; grid indices are int64.
* Rewards must lie in [0, 1] (they are modelled as Bernoulli probabilities); NaN marks a missing reward.
  A row with a missing reward never enters any sum, nor the criteria.
* The grid is vectorised as a `(G, B)` tensor: no Python loop over rows or over single betas. On a CPU the
  normal mode walks the grid in cache-sized blocks of betas (one block on an accelerator), and the exact
  mode walks tiles of left-out rows x betas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from ._utils import (
    argmin_last,
    as_float64,
    check_basis_rewards,
    check_betas,
    check_choice,
    check_epsilon,
    check_int,
    sum_without_self,
)

__all__ = [
    "BASIS_FALLBACKS",
    "BetaCalibration",
    "basis_baseline",
    "beta_grid",
    "calibrate_beta",
    "reference_values",
]

BASIS_FALLBACKS = ("zero", "initial")

# reference_values materialises (chunk, G, N) float64 temporaries of 16 MiB each, the exact mode two
# (rows, betas, B) tiles of 1 MiB each (measured fastest on CPU: the tiles stay in cache); the exact mode's
# other extra memory is about 14 (G, B) tables (~105 MB at B = 4096 and G = 230; its O(G B^2) work is what
# stops it being used at much larger B).
_REFERENCE_CHUNK_ELEMENTS = 1 << 21
_EXACT_CHUNK_ELEMENTS = 1 << 17
_EXACT_CHUNK_ELEMENTS_ACCELERATOR = 1 << 23  # 64 MiB tiles: few kernel launches, 128 MiB for the two
# The normal mode walks the grid in blocks of at most this many (beta, row) entries on a CPU, so that its
# five (block, B) work buffers stay in cache; an accelerator takes the whole grid at once. Below torch's
# intra-op grain size (32768) each op runs on one thread: at this size a thread hand-off costs more than it
# saves, and it stalls badly when the cores are shared.
_CPU_BLOCK_ELEMENTS = (1 << 15) - 1


@dataclass(frozen=True)
class BetaCalibration:
    """Result of `calibrate_beta` (all tensors float64 unless stated, on the rewards' device).

    Attributes:
        beta: chosen temperature, 0-d; in exact mode a `(B,)` tensor of per-row beta^(-i).
        index: grid index of `beta` (int64), same shape as `beta`.
        baseline: `(B,)` b_i at the chosen beta (at beta^(-i) in exact mode); rows that are not in the active
            set, have no other active row, or have a missing reward hold the fallback. Never NaN.
        criterion: `(G,)` mean over rows with a valid reward of (r_i - b_i(beta))^2, the refined estimator's
            leave-one-out error (§1c). Zeros when no reward is valid.
        initial_criterion: `(G,)` mean over rows with a valid reward of (r_i - clamp(v_i(beta), 0, 1))^2, the
            error of the initial estimator (a NaN value counts as 0). Zeros when no reward is valid.
        num_active: rows in the active set S at the chosen beta (the batch-level argmin in exact mode).
        num_fallback: rows with a valid reward that used the fallback at that beta.
    """

    beta: torch.Tensor
    index: torch.Tensor
    baseline: torch.Tensor
    criterion: torch.Tensor
    initial_criterion: torch.Tensor
    num_active: int
    num_fallback: int


def beta_grid(num: int = 230, low: float = 0.01, high: float = 5.0) -> torch.Tensor:
    """Log-spaced temperature grid beta_1 <= ... <= beta_G on [low, high] (float64, CPU).

        beta_g = exp(log(low) + (g - 1) / (G - 1) * (log(high) - log(low))),   g = 1..G

    The end points are exactly `low` and `high`; `num = 1` gives `[low]`.
    """
    num = check_int(num, "num")
    if num < 1:
        raise ValueError(f"`num` must be >= 1 grid points; got {num}")
    if not (isinstance(low, (int, float)) and math.isfinite(low) and low > 0):
        raise ValueError(f"`low` must be a positive finite temperature; got {low!r}")
    if not (isinstance(high, (int, float)) and math.isfinite(high) and high >= low):
        raise ValueError(f"`high` must be a finite temperature >= low = {low!r}; got {high!r}")
    grid = torch.exp(torch.linspace(math.log(low), math.log(high), num, dtype=torch.float64))
    grid[0] = float(low)
    if num > 1:
        grid[-1] = float(high)
    return grid


def reference_values(reference_rewards: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """Initial value estimate of every prompt on the beta grid (§1a).

        v_x(beta) = beta * (logsumexp_k(rho_{x,k} / beta) - log N)
                  = max_k rho_{x,k} + beta * log(mean_k exp((rho_{x,k} - max_k rho_{x,k}) / beta))

    (the second, shifted form is what we evaluate: it cannot overflow at small beta and keeps v <= max rho).
    v_x lies in [mean rho, max rho]: beta -> inf gives the mean (the reference pass rate), beta -> 0 the max.

    NaN reference rewards are missing: each row uses only its valid entries (N is then the row's count of
    valid entries); a row without any valid entry gets NaN values, which BASIS keeps out of its active set.

    Args:
        reference_rewards: `(P, N)` reference rewards, N >= 1 samples per prompt.
        betas: `(G,)` ascending positive grid.

    Returns:
        `(P, G)` float64 values on the device of `reference_rewards`.
    """
    rho = as_float64(reference_rewards, "reference_rewards")
    if rho.ndim != 2:
        raise ValueError(
            f"`reference_rewards` must be 2-D (num_prompts, num_reference_samples); got shape {tuple(rho.shape)}"
        )
    if rho.shape[1] == 0:
        raise ValueError(
            "`reference_rewards` has zero reference samples per prompt (shape (P, 0)); "
            "sample at least one reference completion per prompt (the default is N = 8)"
        )
    if bool(torch.isinf(rho).any()):
        raise ValueError("`reference_rewards` must be finite (NaN is allowed and means a missing sample)")
    beta = check_betas(betas, rho.device)
    valid = ~torch.isnan(rho)
    count = valid.sum(dim=1)
    top = torch.where(valid, rho, -math.inf).amax(dim=1)
    top = torch.where(count > 0, top, torch.zeros_like(top))
    # Shift by the row max so every exponent is <= 0; missing entries become exp(-inf) = 0.
    shifted = torch.where(valid, rho - top[:, None], -math.inf)
    log_count = torch.log(count.to(torch.float64))
    num_prompts, num_samples = rho.shape
    grid_size = beta.numel()
    out = torch.empty(num_prompts, grid_size, dtype=torch.float64, device=rho.device)
    step = max(1, _REFERENCE_CHUNK_ELEMENTS // (grid_size * num_samples))
    inv_beta = beta.reciprocal()
    for start in range(0, num_prompts, step):  # chunks of prompts bound the (chunk, G, N) temporary
        stop = min(start + step, num_prompts)
        lse = torch.logsumexp(shifted[start:stop, None, :] * inv_beta[None, :, None], dim=-1)
        out[start:stop] = top[start:stop, None] + beta * (lse - log_count[start:stop, None])
    return torch.where((count > 0)[:, None], out, math.nan)


def _fallback_values(values: torch.Tensor, fallback: str) -> torch.Tensor:
    """The fallback baseline: 0 ("zero") or the initial estimate clamp(v, 0, 1) with NaN -> 0 ("initial")."""
    if fallback == "zero":
        return torch.zeros_like(values)
    return torch.nan_to_num(values, nan=0.0).clamp_(0.0, 1.0)


def _finite_values(values: torch.Tensor) -> torch.Tensor:
    """Values with NaN -> 0 and +-inf -> 1 / 0 (all outside S, and the right "initial" fallback), no copy if finite."""
    # One reduction detects any NaN/inf; the copy only happens on the rare table with missing values.
    if bool(torch.isfinite(values.sum())):
        return values
    return torch.nan_to_num(values, nan=0.0, posinf=1.0, neginf=0.0)


class _Terms(NamedTuple):
    """Per-(beta, row) pieces of the refined estimator on a (g, B) block of the grid (valid rewards only)."""

    active: torch.Tensor  # 1.0 for j in S (eps <= v_j <= 1 - eps), else 0.0
    v_s: torch.Tensor  # v_j on S, 0 elsewhere
    # Each row's own terms r_j / (1 - v_j) and v_j / (1 - v_j) on S (0 elsewhere); None when computed in a workspace,
    # whose buffers then hold `num` and `den` instead (only the exact mode needs them, and it passes no workspace).
    row_num: torch.Tensor | None
    row_den: torch.Tensor | None
    num: torch.Tensor  # sum_{j in S, j != i} r_j / (1 - v_j)   (meaningful for i in S)
    den: torch.Tensor  # sum_{j in S, j != i} v_j / (1 - v_j)   (meaningful for i in S)
    num_active: torch.Tensor  # (g,) |S| as float64


def _loo_terms(
    r: torch.Tensor, values: torch.Tensor, epsilon: float, work: tuple[torch.Tensor, ...] | None = None
) -> _Terms:
    """The two sums over S once per beta, and every row's leave-one-out sums by one subtraction (O(1) per row).

    `values` is a finite, contiguous (g, B) block; `r` (B,) holds valid rewards. With `work` (four (g, B)
    buffers) nothing is allocated, `num` / `den` reuse the buffers of the per-row terms, and those come back as None.
    """
    if work is None:
        active, v_s, a, d = (torch.empty_like(values) for _ in range(4))
        num_out = den_out = None
    else:
        active, v_s, a, d = work
        num_out, den_out = a, d
    # A float 0/1 mask built by "v equals its clamp" (NaN was mapped outside S before): multiplying by it
    # is several times faster on CPU than torch.where, and inactive rows then drop out of every sum.
    torch.clamp(values, epsilon, 1.0 - epsilon, out=active)
    torch.eq(values, active, out=active)
    torch.mul(values, active, out=v_s)
    torch.sub(torch.ones((), dtype=values.dtype, device=values.device), v_s, out=a)
    torch.div(active, a, out=a)  # 1 / (1 - v_j) on S, 0 elsewhere
    torch.mul(v_s, a, out=d)
    a.mul_(r)
    # Plain sums rather than matrix-vector products: BLAS would spread these small products over threads.
    num_active = active.sum(dim=1)
    num = torch.sub(a.sum(dim=1, keepdim=True), a, out=num_out)
    den = torch.sub(d.sum(dim=1, keepdim=True), d, out=den_out)
    if work is not None:
        return _Terms(active, v_s, None, None, num, den, num_active)
    return _Terms(active, v_s, a, d, num, den, num_active)


def _loo_baseline(
    terms: _Terms, values: torch.Tensor, fallback: str, in_place: bool = False, check_lonely: bool = True
) -> torch.Tensor:
    """b_i = clamp(v_i num_i / den_i, 0, 1) on S when S has another row, else the fallback; (g, B).

    `in_place` reuses `num` and `active` as buffers (the workspace path). `check_lonely=False` skips the
    columns with |S| <= 1 (they come out NaN; the caller recomputes them) to save a sync per block.
    """
    b = torch.div(terms.num, terms.den, out=terms.num if in_place else None)
    # Off S, v_s = 0 zeroes the entry (the "zero" fallback). A column with |S| <= 1 has den = 0 (NaN/inf
    # entries): every row of it falls back.
    b.mul_(terms.v_s).clamp_(0.0, 1.0)
    lonely = terms.num_active < 2
    any_lonely = check_lonely and bool(lonely.any())
    if any_lonely:
        b[lonely] = 0.0
    if fallback == "initial":
        on_fallback = torch.rsub(terms.active, 1.0) if not in_place else terms.active.neg_().add_(1.0)
        if any_lonely:
            on_fallback[lonely] = 1.0
        # In place, `den` is free again after the division: it takes the clamped values.
        b.addcmul_(on_fallback, torch.clamp(values, 0.0, 1.0, out=terms.den if in_place else None))
    return b


def _criteria(
    r: torch.Tensor, table: torch.Tensor, epsilon: float, fallback: str, block_rows: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums over rows of (r_i - b_i(beta))^2 and (r_i - clamp(v_i(beta), 0, 1))^2 for every beta; (G,) each.

    `table` is the (B, G) value table of the valid rows. The grid is processed in blocks of `block_rows`
    betas: each block is transposed into a contiguous (block, B) buffer and all temporaries live in five
    buffers allocated once, so on a CPU the working set stays in cache (an accelerator takes one block).
    """
    size, grid_size = table.shape
    norm = torch.empty(grid_size, dtype=torch.float64, device=table.device)
    initial_norm = torch.empty_like(norm)
    num_active = torch.empty_like(norm)
    rows = min(block_rows, grid_size)
    work = tuple(torch.empty(rows, size, dtype=torch.float64, device=table.device) for _ in range(5))
    for start in range(0, grid_size, rows):  # blocks of the grid, not single betas
        stop = min(start + rows, grid_size)
        block, *buffers = (w[: stop - start] for w in work)
        block.copy_(table[:, start:stop].T)
        # NaN values are outside S (and 0 for the "initial" fallback); +-inf clamp to 1 / 0.
        torch.nan_to_num_(block, nan=0.0, posinf=1.0, neginf=0.0)
        terms = _loo_terms(r, block, epsilon, tuple(buffers))
        num_active[start:stop] = terms.num_active
        err = _loo_baseline(terms, block, fallback, in_place=True, check_lonely=False).sub_(r)
        # sum of squares as a squared 2-norm: one read pass, no temporary.
        torch.linalg.vector_norm(err, dim=1, out=norm[start:stop])
        err_initial = torch.clamp(block, 0.0, 1.0, out=buffers[3]).sub_(r)
        torch.linalg.vector_norm(err_initial, dim=1, out=initial_norm[start:stop])
    criterion, initial_criterion = norm.square_(), initial_norm.square_()
    lonely = num_active < 2
    if bool(lonely.any()):  # columns where at most one row is active: everything on the fallback
        columns = lonely.nonzero().squeeze(1)
        block = _finite_values(table[:, columns].T.contiguous())
        err = _loo_baseline(_loo_terms(r, block, epsilon), block, fallback).sub_(r)
        criterion[columns] = err.square_().sum(dim=1)
    return criterion, initial_criterion


def basis_baseline(
    rewards: torch.Tensor, values: torch.Tensor, epsilon: float = 1e-3, fallback: str = "zero"
) -> torch.Tensor:
    """Leave-one-out best-linear-unbiased baseline of BASIS at one beta (§1b).

        S   = { j : r_j valid, eps <= v_j <= 1 - eps }
        b_i = clamp( v_i * sum_{j in S, j != i} r_j / (1 - v_j)  /  sum_{j in S, j != i} v_j / (1 - v_j),  0, 1 )

    (model E[r_j] = c v_j with Bernoulli variance v_j (1 - v_j); each other prompt's unbiased guess
    (v_i / v_j) r_j of prompt i's value is weighted by its inverse variance). r_i never enters b_i.
    Rows outside S (missing reward, v outside [eps, 1 - eps], NaN value) or with no other row in S get the
    fallback: 0 for "zero" (the paper's choice), clamp(v_i, 0, 1) for "initial" (0 if v_i is NaN).

    Args:
        rewards: `(B,)` rewards in [0, 1], NaN = missing.
        values: `(B,)` initial values v_i at one beta.
        epsilon: eps in (0, 0.5).
        fallback: "zero" or "initial".

    Returns:
        `(B,)` float64 baseline in [0, 1], never NaN.
    """
    r = check_basis_rewards(rewards)
    v = as_float64(values, "values", r.device)
    if v.shape != r.shape:
        raise ValueError(f"`values` must have the shape of `rewards` {tuple(r.shape)}; got {tuple(v.shape)}")
    epsilon = check_epsilon(epsilon)
    fallback = check_choice(fallback, "fallback", BASIS_FALLBACKS)
    valid = ~torch.isnan(r)
    if bool(valid.all()):
        v_valid = _finite_values(v)[None]
        return _loo_baseline(_loo_terms(r, v_valid, epsilon), v_valid, fallback)[0]
    out = _fallback_values(v, fallback)
    if bool(valid.any()):
        v_valid = _finite_values(v[valid])[None]
        out[valid] = _loo_baseline(_loo_terms(r[valid], v_valid, epsilon), v_valid, fallback)[0]
    return out


def _exact_indices(
    r: torch.Tensor, values: torch.Tensor, epsilon: float, fallback: str, chunk_size: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row beta^(-i) = argmin of the criterion computed without row i (§1c exact mode), O(G B^2).

    Without row i, a row j in S with a third row of S besides i and j has
        b_j^(-i) = clamp(v_j (num_j - a_i) / (den_j - d_i), 0, 1),   a_i = r_i / (1 - v_i), d_i = v_i / (1 - v_i)
    (a_i = d_i = 0 for i outside S); otherwise j is on the fallback. The criterion without i is the mean of
    (r_j - b_j^(-i))^2 over the valid j != i. Returns the (B,) grid indices and the (G, B) baseline table.
    """
    grid_size, size = values.shape
    device = values.device
    terms = _loo_terms(r, values, epsilon)
    baseline = _loo_baseline(terms, values, fallback)
    fallback_err = (r - _fallback_values(values, fallback)).square_()  # (G, B): row j on the fallback
    # Sums over j != i by exclusive prefix + suffix sums, not "total - own term": a tie between two betas
    # whose other rows agree stays an exact tie (the subtraction would leave rounding noise that decides it).
    inactive_err = sum_without_self(fallback_err * (1.0 - terms.active))  # (G, B) rows outside S, j != i
    fallback_only_err = sum_without_self(fallback_err)  # (G, B) every row j != i on the fallback
    r_active = r * terms.active  # with v_s = 0 off S, the formula term of a row outside S is exactly 0
    denom = float(max(size - 1, 1))  # size = number of valid rewards; an empty criterion is all zeros

    # Tiles of (rows i, betas, all j): `chunk_size` rows (default: as many as fit the element budget), and
    # when a single row is over budget, blocks of betas, so the two work buffers stay in cache.
    budget = _EXACT_CHUNK_ELEMENTS if device.type == "cpu" else _EXACT_CHUNK_ELEMENTS_ACCELERATOR
    rows = min(chunk_size or max(1, budget // (grid_size * size)), size)
    betas_per_tile = grid_size if rows > 1 or chunk_size else max(1, budget // size)
    work_num = torch.empty(rows, min(betas_per_tile, grid_size), size, dtype=torch.float64, device=device)
    work_den = torch.empty_like(work_num)
    formula_err = torch.empty(size, grid_size, dtype=torch.float64, device=device)
    for start in range(0, size, rows):  # chunks of left-out rows i ...
        stop = min(start + rows, size)
        diag = torch.arange(stop - start, device=device)
        for g0 in range(0, grid_size, betas_per_tile):  # ... times blocks of the grid
            g1 = min(g0 + betas_per_tile, grid_size)
            a_i = terms.row_num[g0:g1, start:stop].T[:, :, None]
            d_i = terms.row_den[g0:g1, start:stop].T[:, :, None]
            # (num_j - a_i) v_j, not v_j num_j - v_j a_i: the subtraction is exact when the two are equal
            # (e.g. every other reward is 0), so exact ties of the criterion stay exact.
            num = torch.sub(terms.num[g0:g1], a_i, out=work_num[: stop - start, : g1 - g0])
            den = torch.sub(terms.den[g0:g1], d_i, out=work_den[: stop - start, : g1 - g0])
            err = num.mul_(terms.v_s[g0:g1]).div_(den).clamp_(0.0, 1.0).sub_(r_active[g0:g1])  # b_j^(-i) - r_j
            err[diag, :, diag + start] = 0.0  # j == i is not in the criterion without i
            torch.linalg.vector_norm(err, dim=2, out=formula_err[start:stop, g0:g1])
    formula_err.square_()

    # The formula needs a third active row besides i and j, i.e. |S \ {i}| >= 2; otherwise every row is on
    # the fallback (and the NaN/inf formula entries are discarded by the where).
    has_pair = (terms.num_active[None] - terms.active.T) >= 2
    total = torch.where(has_pair, formula_err + inactive_err.T, fallback_only_err.T)
    return argmin_last(total.div_(denom), dim=-1), baseline


def calibrate_beta(
    rewards: torch.Tensor,
    value_table: torch.Tensor,
    betas: torch.Tensor,
    epsilon: float = 1e-3,
    fallback: str = "zero",
    exact: bool = False,
    chunk_size: int | None = None,
) -> BetaCalibration:
    """Online calibration of beta on the batch (§1c, the paper's Eq. 6) and the baseline at that beta.

        criterion(beta)         = mean_{i: r_i valid} (r_i - b_i(beta))^2
        initial_criterion(beta) = mean_{i: r_i valid} (r_i - clamp(v_i(beta), 0, 1))^2
        beta_t                  = argmin_{beta in grid} criterion(beta)      (exact ties: the largest beta)

    b_i excludes r_i, so the criterion is a leave-one-out error; beta_t still sees r_i through the other
    rows' baselines (an O(1/B) leak). `exact=True` removes it: row i gets
        beta^(-i) = argmin_beta mean_{j valid, j != i} (r_j - b_j^(-i)(beta))^2,
    where b_j^(-i) also leaves row i out of its sums, and b_i = b_i(beta^(-i)); then b_i does not depend on
    r_i at all. Cost: normal O(G B), exact O(G B^2), walked in tiles of `chunk_size` left-out rows times the
    grid (default: tiles of about 2^17 entries on CPU, 1 MiB per float64 work buffer, 2^23 on an
    accelerator; peak extra memory is about 14 (G, B) float64 tables, ~105 MB at B = 4096).

    Rows with a missing (NaN) reward enter no sum and no criterion and get the fallback baseline (0 for
    "zero"); a batch without any valid reward gives zero criteria, the largest beta and the fallback.

    Args:
        rewards: `(B,)` rewards in [0, 1], NaN = missing.
        value_table: `(B, G)` values v_i(beta_g) of the batch's prompts (rows of `reference_values`).
        betas: `(G,)` ascending grid (e.g. `beta_grid()`).
        epsilon: eps of the active set, in (0, 0.5).
        fallback: "zero" or "initial" (see `basis_baseline`).
        exact: per-row leave-one-out calibration.
        chunk_size: rows per chunk in exact mode (None: automatic).

    Returns:
        A `BetaCalibration`.
    """
    r = check_basis_rewards(rewards)
    device = r.device
    size = r.shape[0]
    table_values = as_float64(value_table, "value_table", device)
    if table_values.ndim != 2 or table_values.shape[0] != size:
        raise ValueError(
            f"`value_table` must be (B, G) with B = {size} rows, one per reward; got shape {tuple(table_values.shape)}"
        )
    beta = check_betas(betas, device)
    grid_size = beta.numel()
    if table_values.shape[1] != grid_size:
        raise ValueError(
            f"`value_table` has {table_values.shape[1]} columns but `betas` has {grid_size} points; "
            "build the table with `reference_values(..., betas)` on the same grid"
        )
    epsilon = check_epsilon(epsilon)
    fallback = check_choice(fallback, "fallback", BASIS_FALLBACKS)
    if not isinstance(exact, bool):
        raise ValueError(f"`exact` must be a bool; got {exact!r}")
    if chunk_size is not None and check_int(chunk_size, "chunk_size") < 1:
        raise ValueError(f"`chunk_size` must be a positive number of rows or None; got {chunk_size!r}")

    valid = ~torch.isnan(r)
    num_valid = int(valid.sum())
    if num_valid == 0:
        index = torch.tensor(grid_size - 1, device=device)
        zeros = torch.zeros(grid_size, dtype=torch.float64, device=device)
        if exact:
            index = index.expand(size).clone()
        return BetaCalibration(
            beta=beta[index],
            index=index,
            baseline=_fallback_values(table_values[:, grid_size - 1], fallback),
            criterion=zeros,
            initial_criterion=zeros.clone(),
            num_active=0,
            num_fallback=0,
        )

    all_valid = num_valid == size
    r_valid = r if all_valid else r[valid]
    table_valid = table_values if all_valid else table_values[valid]
    block_rows = max(1, _CPU_BLOCK_ELEMENTS // num_valid) if device.type == "cpu" else grid_size
    criterion, initial_criterion = _criteria(r_valid, table_valid, epsilon, fallback, block_rows)
    criterion.div_(num_valid)
    initial_criterion.div_(num_valid)
    index = argmin_last(criterion)

    # The chosen column again, on its own: O(B), and it gives the active-set counts at that beta.
    column = _finite_values(table_valid[:, index])[None]
    terms = _loo_terms(r_valid, column, epsilon)
    num_active = int(terms.num_active[0])
    num_fallback = num_valid if num_active < 2 else num_valid - num_active
    if exact:
        # One (G, B) contiguous copy of the valid rows: the grid is the leading dimension below.
        values = _finite_values(table_valid.T.contiguous())
        row_index, table = _exact_indices(r_valid, values, epsilon, fallback, chunk_size)
        # b_i at its own beta^(-i): one gather in the (G, B) baseline table.
        row_baseline = table.gather(0, row_index[None]).squeeze(0)
        row_beta_index = row_index
    else:
        row_baseline = _loo_baseline(terms, column, fallback)[0]
        row_beta_index = None
    if all_valid:
        baseline = row_baseline
        if exact:
            index = row_beta_index
    else:
        # Rows with a missing reward hold the fallback; index_copy_ avoids a boolean-mask scatter.
        rows = valid.nonzero().squeeze(1)
        baseline = _fallback_values(table_values[:, index], fallback).index_copy_(0, rows, row_baseline)
        if exact:
            index = index.expand(size).clone().index_copy_(0, rows, row_beta_index)
    return BetaCalibration(
        beta=beta[index],
        index=index,
        baseline=baseline,
        criterion=criterion,
        initial_criterion=initial_criterion,
        num_active=num_active,
        num_fallback=num_fallback,
    )
