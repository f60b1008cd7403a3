"""Shared helpers of the estimator library: input checks, log-binomials, tie handling, argmin with ties.

Everything here is pure torch and float64; nothing is imported from TRL or transformers.
"""

from __future__ import annotations

import math
import numbers

import torch

__all__ = [
    "as_float64",
    "check_int",
    "check_basis_rewards",
    "check_betas",
    "check_epsilon",
    "check_choice",
    "check_group_rewards",
    "log_binom",
    "log_binom_scalar",
    "prefix_excl",
    "suffix_excl",
    "sum_without_self",
    "argmin_last",
    "tie_block_last",
]


def as_float64(x, name: str, device: torch.device | None = None) -> torch.Tensor:
    """`x` as a float64 tensor (on `device` if given, else on its own device); lists and numbers are accepted."""
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(
                f"`{name}` must be a tensor (or a nested list of numbers); got {type(x).__name__}"
            ) from exc
    if x.is_complex():
        raise ValueError(f"`{name}` must be real-valued; got dtype {x.dtype}")
    return x.to(device=device if device is not None else x.device, dtype=torch.float64)


def check_int(value, name: str) -> int:
    """`value` as a Python int; bools and non-integral numbers are rejected."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"`{name}` must be an integer; got {value!r}")
    return int(value)


def check_basis_rewards(rewards, name: str = "rewards") -> torch.Tensor:
    """1-D float64 rewards in [0, 1] with NaN meaning missing (BASIS models them as Bernoulli probabilities).

    Rewards are data, not a function of parameters: a tensor that requires grad is detached (the estimator's
    in-place, preallocated arithmetic cannot be differentiated, and no caller needs gradients through a baseline).
    """
    r = as_float64(rewards, name).detach()
    if r.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D (one reward per prompt in the batch); got shape {tuple(r.shape)}")
    # NaN compares False, so it passes this check: it is the documented "missing" marker.
    bad = (r < 0) | (r > 1)
    if bool(bad.any()):
        worst = r[bad][0].item()
        raise ValueError(
            f"`{name}` must lie in [0, 1] (NaN is allowed and means a missing reward); found {worst!r}. "
            "Rescale your reward functions or reward_weights so that the weighted reward is in [0, 1]."
        )
    return r


def check_betas(betas, device: torch.device, name: str = "betas") -> torch.Tensor:
    """A non-empty, ascending, positive, finite 1-D β grid as float64 on `device`."""
    b = as_float64(betas, name, device)
    if b.ndim != 1:
        raise ValueError(f"`{name}` must be a 1-D β grid of shape (G,); got shape {tuple(b.shape)}")
    if b.numel() == 0:
        raise ValueError(f"`{name}` is an empty grid; pass at least one β (e.g. `beta_grid()`)")
    if not bool(torch.isfinite(b).all()) or bool((b <= 0).any()):
        raise ValueError(f"`{name}` must hold positive finite temperatures; got min {b.min().item()!r}")
    if b.numel() > 1 and bool((b[1:] < b[:-1]).any()):
        raise ValueError(f"`{name}` must be sorted ascending (β_1 <= ... <= β_G), e.g. `beta_grid()`; sort it first")
    return b


def check_epsilon(epsilon, name: str = "epsilon") -> float:
    """ε in (0, 0.5): ε > 0 keeps 1/(1 − v) finite on the active set, ε < 0.5 keeps the set non-empty."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) or not (0.0 < float(epsilon) < 0.5):
        raise ValueError(f"`{name}` must be a number in (0, 0.5) (default 1e-3); got {epsilon!r}")
    if 1.0 - float(epsilon) == 1.0:
        # Below float64's resolution a value-1 row stays "active" and its weight 1 / (1 − v) divides by zero.
        raise ValueError(
            f"`{name}` = {epsilon!r} is below float64's resolution (1 − ε rounds to 1, which makes the baseline NaN); "
            "use ε >= 1e-15 (default 1e-3)"
        )
    return float(epsilon)


def check_choice(value, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"unknown `{name}` {value!r}; choose one of {', '.join(repr(c) for c in choices)}")
    return value


def check_group_rewards(rewards, name: str = "rewards") -> torch.Tensor:
    """2-D (num_groups, B) finite float64 rewards for the max@K estimators."""
    r = as_float64(rewards, name)
    if r.ndim != 2:
        raise ValueError(
            f"`{name}` must be 2-D (num_groups, group_size); got shape {tuple(r.shape)}. "
            "Reshape a flat batch with `.view(-1, num_generations)`."
        )
    if not bool(torch.isfinite(r).all()):
        raise ValueError(f"`{name}` must be finite (no NaN or inf); fill or drop missing rewards before max@K")
    return r


def log_binom_scalar(n: int, k: int) -> float:
    """log C(n, k) of two Python ints with 0 <= k <= n (the normalisers of the max@K formulas)."""
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def prefix_excl(x: torch.Tensor) -> torch.Tensor:
    """sum_{m < t} x_m along dim 1 (a shifted cumsum: no cancellation from subtracting x_t)."""
    out = torch.zeros_like(x)
    out[:, 1:] = torch.cumsum(x[:, :-1], dim=1)
    return out


def suffix_excl(x: torch.Tensor) -> torch.Tensor:
    """sum_{m > t} x_m along dim 1."""
    out = torch.zeros_like(x)
    out[:, :-1] = torch.flip(torch.cumsum(torch.flip(x[:, 1:], dims=(1,)), dim=1), dims=(1,))
    return out


def sum_without_self(x: torch.Tensor) -> torch.Tensor:
    """out[g, i] = sum_{j != i} x[g, j]: the exclusive prefix plus the exclusive suffix sum (no subtraction)."""
    return prefix_excl(x) + suffix_excl(x)


def log_binom(n: torch.Tensor, k: float) -> torch.Tensor:
    """log C(n, k) elementwise via lgamma in float64; -inf where the binomial is 0 (k < 0, k > n or n < 0)."""
    ok = (n >= 0) & (k >= 0) & (n >= k)
    # Clamp the arguments so lgamma never sees a pole; the masked entries are replaced by -inf below.
    n_safe = torch.where(ok, n, torch.zeros_like(n))
    k_safe = torch.where(ok, torch.full_like(n, float(k)), torch.zeros_like(n))
    val = torch.lgamma(n_safe + 1) - torch.lgamma(k_safe + 1) - torch.lgamma(n_safe - k_safe + 1)
    return torch.where(ok, val, torch.full_like(n, -math.inf))


def argmin_last(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """argmin along `dim`; among exact ties the LAST index wins (the largest β on an ascending grid)."""
    size = x.shape[dim]
    # torch.argmin returns the first minimal index, so search the flipped tensor and map back.
    return (size - 1) - torch.argmin(torch.flip(x, dims=(dim,)), dim=dim)


def tie_block_last(sorted_rows: torch.Tensor) -> torch.Tensor:
    """For each position of ascending-sorted rows, the index of the last position of its tie block.

    Gathering a per-position quantity at this index makes every member of a tie block carry exactly
    (bitwise) the same value, as the subset definitions require.
    """
    n, size = sorted_rows.shape
    pos = torch.arange(size, device=sorted_rows.device).expand(n, size)
    is_last = torch.ones_like(sorted_rows, dtype=torch.bool)
    is_last[:, :-1] = sorted_rows[:, 1:] != sorted_rows[:, :-1]
    cand = torch.where(is_last, pos, torch.full_like(pos, size))
    # The nearest block end at or after each position: a reversed running minimum.
    return torch.flip(torch.cummin(torch.flip(cand, dims=(1,)), dim=1).values, dims=(1,))
