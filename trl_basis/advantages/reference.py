"""Plain readable references of the vectorised estimators (as verl keeps `grpo` beside `grpo_vectorized`).

Each function is the formula of `docs/ALGORITHMS.md` written as loops over Python lists, O(C(B, K)) or O(B²):
for reading, and for checking the fast paths (`maxk.py`, `basis.py`) on small inputs. The trainers never call them.
"""

from __future__ import annotations

import math
from itertools import combinations

__all__ = ["basis_baseline_reference", "max_at_k_reference", "maxpo_advantages_reference"]


def max_at_k_reference(rewards: list[float], k: int) -> float:
    """ρ̂_K: the mean, over every K-subset of the group's B rewards, of the subset's best reward (ALGORITHMS.md §2)."""
    subsets = list(combinations(rewards, k))
    return math.fsum(max(s) for s in subsets) / len(subsets)


def maxpo_advantages_reference(rewards: list[float], k: int) -> list[float]:
    """MaxPO's Leave-Two-Out advantages of one group at library scale (ALGORITHMS.md §2):

        q_i = mean over the K-subsets holding i of their best reward,   A_i = K / B · (q_i − ρ̂_K(group without i))

    The trainers multiply by B. Σ_i A_i = 0 exactly (every K-subset is counted K times in Σ_i q_i).
    """
    size = len(rewards)
    out = []
    for i in range(size):
        holding_i = [s for s in combinations(range(size), k) if i in s]
        q_i = math.fsum(max(rewards[j] for j in s) for s in holding_i) / len(holding_i)
        out.append(k / size * (q_i - max_at_k_reference(rewards[:i] + rewards[i + 1 :], k)))
    return out


def basis_baseline_reference(
    rewards: list[float], values: list[float], epsilon: float = 1e-3, fallback: str = "zero"
) -> list[float]:
    """BASIS's leave-one-out baseline at one temperature (ALGORITHMS.md §1b), by loops over the batch:

        S = {j : r_j scored, ε ≤ v_j ≤ 1 − ε},   b_i = clamp(v_i · Σ_{j∈S, j≠i} r_j/(1 − v_j) / Σ_{j∈S, j≠i} v_j/(1 − v_j), 0, 1)

    for i in S with another active row; otherwise the fallback: 0 (`"zero"`, the paper's) or clamp(v_i, 0, 1)
    (`"initial"`; 0 when v_i is NaN).
    """

    def fall_back(v: float) -> float:
        return 0.0 if fallback == "zero" or math.isnan(v) else min(max(v, 0.0), 1.0)

    active = [
        j
        for j, (r, v) in enumerate(zip(rewards, values, strict=True))
        if not math.isnan(r) and not math.isnan(v) and epsilon <= v <= 1 - epsilon
    ]
    out = []
    for i, v_i in enumerate(values):
        others = [j for j in active if j != i]
        if i not in active or not others:
            out.append(fall_back(v_i))
            continue
        num = math.fsum(rewards[j] / (1 - values[j]) for j in others)
        den = math.fsum(values[j] / (1 - values[j]) for j in others)
        out.append(min(max(v_i * num / den, 0.0), 1.0))
    return out
