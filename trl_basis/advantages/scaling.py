"""Scaling of advantages and schedules shared by the trainers (pure torch, float64-agnostic, no TRL import)."""

from __future__ import annotations

import torch

__all__ = ["SCALE_REWARDS", "linear_schedule", "normalize_then_sum", "scale_advantages"]

#: The modes of `scale_advantages`: TRL's `scale_rewards` values (BASIS uses "batch" and "none": it has no groups).
SCALE_REWARDS = ("none", "group", "batch")


def scale_advantages(advantages: torch.Tensor, mode: str, group_size: int | None = None) -> torch.Tensor:
    """TRL's `scale_rewards`, applied to the ADVANTAGES: divide them by their standard deviation over the batch (`"batch"`) or each group (`"group"`).

    `"none"` returns them unchanged (the only choice that keeps the policy gradient exactly unbiased). Rows with a
    NaN advantage are ignored in the std; a std of 0 leaves the advantages as they are (they are all 0 then).
    """
    if mode == "none":
        return advantages
    if mode == "batch":
        std = _nanstd(advantages.unsqueeze(0)).expand_as(advantages.unsqueeze(0)).squeeze(0)
    elif mode == "group":
        if group_size is None:
            raise ValueError("scale_rewards='group' needs a group size.")
        grouped = advantages.view(-1, group_size)
        std = _nanstd(grouped).unsqueeze(1).expand_as(grouped).reshape(-1)
    else:
        raise ValueError(f"Unknown scale_rewards {mode!r}; use one of {SCALE_REWARDS}.")
    return advantages / (std + 1e-4)


def _nanstd(x: torch.Tensor) -> torch.Tensor:
    """Row-wise std (Bessel-corrected) of the non-NaN entries of a 2-D tensor; 0 where fewer than 2 are valid."""
    valid = ~torch.isnan(x)
    count = valid.sum(dim=1)
    mean = torch.where(valid, x, 0).sum(dim=1) / count.clamp(min=1)
    sq = torch.where(valid, (x - mean.unsqueeze(1)) ** 2, 0).sum(dim=1)
    return torch.where(count > 1, (sq / (count - 1).clamp(min=1)).sqrt(), torch.zeros_like(mean))


def linear_schedule(start: float, end: float, progress: float) -> float:
    """Linear interpolation from `start` to `end` as `progress` goes from 0 to 1 (clamped)."""
    progress = min(max(progress, 0.0), 1.0)
    return start + (end - start) * progress


def normalize_then_sum(rewards_per_func: torch.Tensor, weights: torch.Tensor, group_size: int) -> torch.Tensor:
    """TRL's `multi_objective_aggregation="normalize_then_sum"` reward, before its advantage step:

        r̃_i = Σ_f w_f · (r_{f,i} − mean_group(r_f)) / (std_group(r_f) + 1e-4)

    over the B = `group_size` completions of i's group (NaN entries are left out of the mean and std, and of the
    sum). Rows where every function returned NaN stay NaN. `rewards_per_func` is `(num_groups · B, F)`.
    """
    num_funcs = rewards_per_func.shape[1]
    grouped = rewards_per_func.double().view(-1, group_size, num_funcs)
    mean = torch.nanmean(grouped, dim=1, keepdim=True)
    # One row per (group, function): `_nanstd` takes the std over the group's B completions.
    std = _nanstd(grouped.transpose(1, 2).reshape(-1, group_size)).view(-1, 1, num_funcs)
    normalised = ((grouped - mean) / (std + 1e-4)).view(-1, num_funcs)
    out = (normalised * weights.to(normalised).unsqueeze(0)).nansum(dim=1)
    out[torch.isnan(rewards_per_func).all(dim=1)] = torch.nan
    return out
