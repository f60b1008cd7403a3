"""Max@K advantage estimators for group sampling: MaxPO's Leave-Two-Out (L2O) and the PKPO family.

Specification: `docs/ALGORITHMS.md` §2. Each prompt has a group of `B` completions with rewards
`r_1..r_B`; the objective is `J_K = E[max(r(y_1), ..., r(y_K))]` (pass@K for binary rewards).

Conventions shared by every function here:

* `rewards` is `(num_groups, B)`, finite, any real dtype and device; the computation runs in float64 on
  the input's device and the result is float64 (cast it back yourself if you need the input dtype).
* The group is sorted ascending with a STABLE sort, `r_(1) <= ... <= r_(B)`; binomial coefficients are
  formed in log space with `lgamma` and exponentiated as ratios, so nothing overflows up to large B.
* Everything is O(B log B) per group (the sort) plus O(B) prefix/suffix sums, batched over groups:
  no enumeration of K-subsets and no Python loop over samples.
* Tied rewards get bitwise-equal outputs: the per-position formulas are equal on a tie block in exact
  arithmetic (Pascal's rule), and we evaluate every member at the block's last position so that rounding
  cannot split them.

The library scale is the one of the specification: `sum_i A_i grad log pi(y_i)` has expectation
`grad J_K` for every estimator below. A trainer that averages over the `B` samples of a group multiplies
by `B` (then `K = 1` L2O is exactly RLOO).
"""

from __future__ import annotations

import torch

from ._utils import (
    check_choice,
    check_group_rewards,
    check_int,
    log_binom,
    log_binom_scalar,
    prefix_excl,
    suffix_excl,
    tie_block_last,
)

__all__ = ["max_at_k", "maxpo_advantages", "pkpo_advantages", "PKPO_BASELINES"]

PKPO_BASELINES = ("none", "loo", "loo_minus_one")


def _check_k(k, size: int, upper: int, upper_text: str, why: str = "") -> int:
    k = check_int(k, "k")
    if k < 1 or k > upper:
        raise ValueError(
            f"`k` must satisfy 1 <= k <= {upper_text} (= {upper}) for a group of size B = {size}{why}; got k = {k}. "
            "Lower k or raise the group size (num_generations)."
        )
    return k


def _sort_groups(rewards: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stable ascending sort of each group, its permutation, the tie-block representatives and ranks m = 1..B."""
    s, perm = torch.sort(rewards, dim=1, stable=True)
    rep = tie_block_last(s)
    m = torch.arange(1, rewards.shape[1] + 1, device=rewards.device, dtype=torch.float64)
    return s, perm, rep, m


def _unsort(sorted_values: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Put values computed in sorted order back at the samples' original positions."""
    return torch.empty_like(sorted_values).scatter_(1, perm, sorted_values)


def _row_sum(x: torch.Tensor) -> torch.Tensor:
    """sum over dim 1, kept as a (n, 1) column, as the last entry of a running sum.

    A scan runs each row serially, whereas torch hands a row reduction of 32768 entries or more to its
    thread pool; at these sizes the hand-off costs more than it saves, and it stalls for milliseconds when
    another process holds a core (measured: 24 ms instead of 0.02 ms for 512 x 64 on a busy 2-core CPU).
    """
    return torch.cumsum(x, dim=1)[:, -1:]


def _q_sorted(s: torch.Tensor, m: torch.Tensor, k: int) -> torch.Tensor:
    """q_(t) = [r_(t) C(t-1,K-1) + sum_{m>t} r_(m) C(m-2,K-2)] / C(B-1,K-1), in sorted order (needs K <= B).

    Mean of max over the C(B-1,K-1) K-subsets that contain sample t: sample t is the max of the
    C(t-1,K-1) subsets drawn below it, and r_(m) is the max of the C(m-2,K-2) subsets {t, m, K-2 below m}.
    """
    size = s.shape[1]
    log_norm = log_binom_scalar(size - 1, k - 1)
    alpha = torch.exp(log_binom(m - 1, k - 1) - log_norm)
    gamma = torch.exp(log_binom(m - 2, k - 2) - log_norm)  # all zeros for K = 1: q_i = r_i
    return alpha * s + suffix_excl(gamma * s)


def _loo_max_at_j_sorted(s: torch.Tensor, m: torch.Tensor, j: int) -> torch.Tensor:
    """rho_J(group without sorted sample t) for every t, in sorted order (needs 0 <= J <= B-1; rho_0 := 0).

    Removing the sample at sorted position t keeps the ranks below it and shifts the ranks above it down
    by one, so  rho_J(-t) = [sum_{m<t} r_(m) C(m-1,J-1) + sum_{m>t} r_(m) C(m-2,J-1)] / C(B-1,J).
    """
    if j == 0:
        # max@0 of an empty draw: defined as 0 so that PKPO's "loo_minus_one" at K = 1 is plain REINFORCE.
        return torch.zeros_like(s)
    size = s.shape[1]
    log_norm = log_binom_scalar(size - 1, j)
    below = torch.exp(log_binom(m - 1, j - 1) - log_norm)
    above = torch.exp(log_binom(m - 2, j - 1) - log_norm)
    return prefix_excl(below * s) + suffix_excl(above * s)


def max_at_k(rewards: torch.Tensor, k: int) -> torch.Tensor:
    """Unbiased max@K estimate of every group, from its B samples.

        rho_K = sum_m r_(m) C(m-1, K-1) / C(B, K)

    (r_(m) is the m-th smallest reward; it is the max of exactly C(m-1, K-1) of the C(B, K) K-subsets.)

    Args:
        rewards: `(num_groups, B)` finite rewards.
        k: K, with 1 <= K <= B.

    Returns:
        `(num_groups,)` float64 tensor.
    """
    r = check_group_rewards(rewards)
    size = r.shape[1]
    k = _check_k(k, size, size, "B")
    s, _, _, m = _sort_groups(r)
    weights = torch.exp(log_binom(m - 1, k - 1) - log_binom_scalar(size, k))
    # Not a BLAS matrix-vector product nor a row reduction: both go multi-threaded (see `_row_sum`).
    return _row_sum(s * weights).squeeze(1)


def maxpo_advantages(rewards: torch.Tensor, k: int) -> torch.Tensor:
    """MaxPO Leave-Two-Out (L2O) advantages for the max@K objective.

        q_i = mean of max over the K-subsets containing sample i
        A_i = K / (B - K) * (q_i - rho_K)  =  (K / B) * (q_i - rho_K(group without i))

    Unbiased (the baseline rho_K(group without i) does not involve y_i) and exactly centred:
    sum_i q_i = B * rho_K, so sum_i A_i = 0. We use rho_K = mean_i q_i (the same number) and re-centre
    once more so that the centring holds to rounding. Tied rewards get equal advantages. K = 1 gives
    A_i = (r_i - mean of the others) / B, i.e. RLOO up to the factor 1/B that a per-group mean undoes.

    Args:
        rewards: `(num_groups, B)` finite rewards.
        k: K, with 1 <= K <= B - 1 (at K = B no sample can be left out).

    Returns:
        `(num_groups, B)` float64 advantages, aligned with `rewards`.
    """
    r = check_group_rewards(rewards)
    size = r.shape[1]
    k = _check_k(k, size, size - 1, "B - 1", " (L2O leaves sample i out, so K = B is impossible)")
    s, perm, rep, m = _sort_groups(r)
    q = torch.gather(_q_sorted(s, m, k), 1, rep)
    adv = (k / (size - k)) * (q - _row_sum(q) / size)
    # A no-op in exact arithmetic; in float64 it cancels the rounding of the first mean, which the factor
    # K / (B - K) (up to B - 1) would otherwise amplify: the group sums stay below 1e-15 up to B = 256.
    adv -= _row_sum(adv) / size
    return _unsort(adv, perm)


def pkpo_plain_advantages(rewards: torch.Tensor, k: int) -> torch.Tensor:
    """PKPO without a baseline (arXiv 2505.15201): ``s_i = (K / B) · q_i``, 1 <= K <= B. Unbiased, not centred."""
    return pkpo_advantages(rewards, k, baseline="none")


def pkpo_loo_advantages(rewards: torch.Tensor, k: int) -> torch.Tensor:
    """PKPO's leave-one-out: ``s_i − K / (B − 1) · ρ̂_K(group without i)``, 1 <= K <= B − 1. Unbiased, not centred."""
    return pkpo_advantages(rewards, k, baseline="loo")


def pkpo_loo_minus_one_advantages(rewards: torch.Tensor, k: int) -> torch.Tensor:
    """PKPO's "loo minus one": ``s_i − (K / B) · ρ̂_{K−1}(group without i)`` (ρ̂_0 := 0), 1 <= K <= B: the expected
    improvement of r_i over the best of K − 1 others. Unbiased, not centred."""
    return pkpo_advantages(rewards, k, baseline="loo_minus_one")


def group_mean_advantages(rewards: torch.Tensor, k: int | None = None) -> torch.Tensor:
    """GRPO's group-mean baseline at library scale: ``(r_i − mean_j r_j) / B`` (``k`` is ignored: it targets the
    mean reward, not max@K). Exactly centred; its baseline contains r_i (biased by a factor (B − 1)/B)."""
    r = check_group_rewards(rewards)
    return (r - r.mean(dim=1, keepdim=True)) / r.shape[1]


def pkpo_advantages(rewards: torch.Tensor, k: int, baseline: str = "none") -> torch.Tensor:
    """PKPO's unbiased (but not centred) max@K advantages (arXiv 2505.15201), for comparison with L2O: the three
    formulas of `pkpo_plain_advantages`, `pkpo_loo_advantages` and `pkpo_loo_minus_one_advantages` in one pass.

        s_i = (K / B) * q_i                                    baseline="none"           (1 <= K <= B)
        s_i - K / (B - 1) * rho_K(group without i)             baseline="loo"            (1 <= K <= B - 1)
        s_i - (K / B) * rho_{K-1}(group without i)             baseline="loo_minus_one"  (1 <= K <= B)

    with q_i as in `maxpo_advantages`. For K = 1, "loo_minus_one" uses rho_0 := 0 (the best of zero
    other samples), so it reduces to s_i = r_i / B. Every leave-one-out rho is computed for all i at
    once from the sorted order with prefix/suffix sums, O(B log B) per group.

    Args:
        rewards: `(num_groups, B)` finite rewards.
        k: K (bounds above).
        baseline: "none", "loo" or "loo_minus_one".

    Returns:
        `(num_groups, B)` float64 advantages, aligned with `rewards`.
    """
    baseline = check_choice(baseline, "baseline", PKPO_BASELINES)
    r = check_group_rewards(rewards)
    size = r.shape[1]
    if baseline == "loo":
        k = _check_k(k, size, size - 1, "B - 1", " (baseline='loo' estimates max@K from the other B - 1 samples)")
    else:
        k = _check_k(k, size, size, "B")
    s, perm, rep, m = _sort_groups(r)
    adv = (k / size) * _q_sorted(s, m, k)
    if baseline == "loo":
        adv = adv - (k / (size - 1)) * _loo_max_at_j_sorted(s, m, k)
    elif baseline == "loo_minus_one":
        adv = adv - (k / size) * _loo_max_at_j_sorted(s, m, k - 1)
    return _unsort(torch.gather(adv, 1, rep), perm)
