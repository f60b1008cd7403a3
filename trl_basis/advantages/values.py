"""Where BASIS's per-prompt values come from: frozen, rolling or online rows (`docs/ALGORITHMS.md` §1f).

The paper's BASIS (§1a) computes each prompt's value curve `v_x(β)` from N reference rewards sampled ONCE from the
initial policy. As the policy learns, those rows go stale prompt by prompt, which no single drift factor `c` of
§1b can absorb. The rows here stay current:

* ``rolling``: each prompt's row is a window of its last `W` rewards; it starts as the offline reference row, and
  each online reward of the prompt joins it after the whole batch's baselines are computed.
* ``online``: the same window, but it starts EMPTY (no offline stage at all). A row with fewer than `m` rewards has
  no usable value: its prompt gets the leave-one-out batch mean as baseline (`leave_one_out_mean`).

In both, the row of prompt i never holds the reward r_i of the current step when b_i is computed, and β_t is
calibrated as in §1c on the value table of the current rows, so the estimator keeps the paper's leave-one-out form.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ._utils import as_float64

__all__ = ["BASIS_VALUES", "leave_one_out_mean", "rolling_row", "usable_rows", "with_batch_fallback"]

#: `basis_values` choices: the paper's frozen reference rows, §1e's history blend, §1f's rolling and online rows.
BASIS_VALUES = ("reference", "history", "rolling", "online")


def rolling_row(row: Sequence[float], reward: float, window: int) -> list[float]:
    """The row after one more reward of its prompt: the last `window` rewards of `row + [reward]`.

        row' = (row_1, …, row_n, r)[−W:]

    A missing reward (NaN) leaves the row unchanged: it says nothing about the policy.
    """
    if window < 1:
        raise ValueError(f"`window` must be >= 1 rewards per prompt; got {window}")
    if reward != reward:  # NaN
        return list(row)[-window:]
    return [*row, float(reward)][-window:]


def usable_rows(rows: Sequence[Sequence[float]], min_samples: int) -> list[bool]:
    """Whether each row holds at least `min_samples` valid (non-NaN, non-None) rewards, i.e. a usable value."""
    return [sum(v is not None and v == v for v in row) >= min_samples for row in rows]


def leave_one_out_mean(rewards: torch.Tensor) -> torch.Tensor:
    """`(B,)` mean of the OTHER rows' valid rewards:

        m_i = Σ_{j ≠ i, r_j valid} r_j / #{j ≠ i : r_j valid}

    (REINFORCE's leave-one-out batch baseline; r_i never enters m_i). NaN where no other reward is valid.
    """
    r = as_float64(rewards, "rewards")
    valid = ~torch.isnan(r)
    values = torch.where(valid, r, 0.0)
    total, count = values.sum(), valid.double().sum()
    others = count - valid.double()
    return torch.where(others > 0, (total - values) / others.clamp(min=1.0), math.nan)


def with_batch_fallback(baseline: torch.Tensor, rewards: torch.Tensor, usable: torch.Tensor) -> torch.Tensor:
    """The baseline where the row has a usable value, else the leave-one-out batch mean (0 if there is none):

        b_i' = b_i          if row i is usable
             = m_i          otherwise (`leave_one_out_mean`)

    Rows without a usable value are outside BASIS's active set (their values are NaN), so they enter no other row's
    baseline, and their own fallback in `calibrate_beta` does not depend on β: replacing it afterwards leaves β_t
    unchanged. Neither term contains r_i.
    """
    b = as_float64(baseline, "baseline")
    usable = torch.as_tensor(usable, dtype=torch.bool, device=b.device)
    fallback = torch.nan_to_num(leave_one_out_mean(as_float64(rewards, "rewards", b.device)), nan=0.0)
    return torch.where(usable, b, fallback)
