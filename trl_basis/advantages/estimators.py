"""The built-in advantage estimators, registered under one signature (`registry.py`):

    advantages, metrics = estimator(rewards, batch, state, args)

One completion per prompt (`BASISTrainer`): `basis` (the paper's, with its value variants), `reinforce_pp`, `spo`.
Groups of completions (`MaxPOTrainer`): `l2o` (MaxPO's), `pkpo`, `pkpo_loo`, `pkpo_loo_minus_one`, `grpo`, `rloo`.
Each function states its formula and its section of `docs/ALGORITHMS.md`; the math is in the pure modules beside
this one (`basis.py`, `maxk.py`, `peers.py`, `values.py`, `history.py`), tested there against exact references.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import torch

from .basis import beta_grid, calibrate_beta, reference_values
from .history import blend_with_history, prompt_key
from .maxk import (
    group_mean_advantages,
    max_at_k,
    maxpo_advantages,
    pkpo_loo_advantages,
    pkpo_loo_minus_one_advantages,
    pkpo_plain_advantages,
)
from .peers import reinforce_pp_advantages, spo_advantages, spo_tracker_init, spo_tracker_update
from .registry import EstimatorBatch, register_estimator
from .scaling import linear_schedule, scale_advantages
from .values import rolling_row, usable_rows, with_batch_fallback

__all__ = [
    "basis",
    "current_k",
    "grpo",
    "l2o",
    "pkpo",
    "pkpo_loo",
    "pkpo_loo_minus_one",
    "reinforce_pp",
    "rloo",
    "spo",
]

Output = tuple[torch.Tensor, dict[str, float]]


# ---------------------------------------------------------------------------------------- one completion per prompt
def _basis_columns(args: Any) -> tuple[str, ...]:
    # Per-prompt state (history counts, rolling/online rows) is keyed by the prompt; online rows need no offline row.
    column = args.reference_rewards_column
    return {"reference": (column,), "history": (column, "prompt"), "rolling": (column, "prompt")}.get(
        args.basis_values, ("prompt",)
    )


@register_estimator("basis", group=False, columns=_basis_columns, unit_rewards=True)
def basis(rewards: torch.Tensor, batch: EstimatorBatch, state: dict, args: Any) -> Output:
    """BASIS (ALGORITHMS.md §1): A_i = r_i − b_i(β_t), scaled by `scale_rewards`.

    b_i(β) = v_i(β) · Σ_{j∈S, j≠i} r_j/(1 − v_j(β)) / Σ_{j∈S, j≠i} v_j(β)/(1 − v_j(β)) is the leave-one-out
    estimate of prompt i's value from the OTHER prompts' rewards, weighted by their values v_x(β) (§1a), and
    β_t = argmin_β mean_i (r_i − b_i(β))² over the grid `basis_temperature_*` (§1c). The rows the values come from
    are `basis_values` (§1f): the frozen reference rewards (the paper's), or rolling/online windows of the prompt's
    own rewards; `history` blends b_i with the prompt's past rewards afterwards (§1e). Vectorised over the batch and
    the grid in `basis.calibrate_beta`; the same baseline by plain loops: `reference.basis_baseline_reference`.
    """
    rows, keys = _value_rows(batch, state, args)
    usable = usable_rows(rows, args.basis_min_samples)
    # A row with too few rewards has no value: empty, it is outside S (NaN values).
    table = _value_table([row if ok else [] for row, ok in zip(rows, usable, strict=True)], args)
    result = calibrate_beta(
        rewards,
        table.to(rewards.device),
        _temperatures(args).to(rewards.device),
        epsilon=args.basis_epsilon,
        fallback=args.basis_fallback,
        exact=args.basis_exact,
    )
    valid = ~torch.isnan(rewards)
    if bool(torch.isnan(result.baseline[valid]).any()):
        # A NaN here would become a zero advantage downstream, i.e. silently no learning.
        raise ValueError(
            f"BASIS computed a NaN baseline (basis_epsilon={args.basis_epsilon}): values within basis_epsilon of 0 "
            "or 1 overflow the refined estimator's weights. Raise basis_epsilon (default 1e-3)."
        )
    baseline, metrics = result.baseline, {}
    num_fallback = int(result.num_fallback)
    if keys is not None:  # rolling/online: scored rows without a usable value take the leave-one-out batch mean
        baseline = with_batch_fallback(baseline, rewards, torch.tensor(usable))
        num_fallback -= sum(v and not ok for ok, v in zip(usable, valid.tolist(), strict=True))
        _record_rows(keys, rows, rewards, state, args.basis_window)
        metrics["basis/usable_fraction"] = sum(usable) / max(len(usable), 1)
    if args.basis_values == "history":
        baseline, history_metrics = _with_history(rewards, baseline, batch, state, args)
        metrics.update(history_metrics)
    advantages = scale_advantages(rewards.double() - baseline, args.scale_rewards)

    index = int(torch.as_tensor(result.index).double().mean().round().item())  # per-row in exact mode
    temperature = float(torch.as_tensor(result.beta).double().mean().item())
    state.setdefault("temperature", []).append(temperature)
    num_valid = int(valid.sum().item())
    return advantages, {
        "basis/temperature": temperature,
        "basis/criterion": result.criterion[index].item(),
        "basis/initial_criterion": result.initial_criterion[index].item(),
        "basis/active_fraction": int(result.num_active) / max(num_valid, 1),
        "basis/baseline_mean": baseline[valid].double().mean().item() if num_valid else 0.0,
        "basis/fallback_count": num_fallback,
        **metrics,
    }


@functools.lru_cache(maxsize=8)
def _grid(num: int, low: float, high: float) -> torch.Tensor:
    """The temperature grid of a config, built once."""
    return beta_grid(num, low, high)


def _temperatures(args: Any) -> torch.Tensor:
    return _grid(args.basis_temperature_num, args.basis_temperature_min, args.basis_temperature_max)


#: grid -> {sorted row of rewards -> its (G,) values}: v_x(β) depends on nothing else, so the memo is shared by every
#: trainer in the process (and is not estimator state: nothing of it is checkpointed).
_VALUES: dict[tuple[int, float, float], dict[tuple[float, ...], torch.Tensor]] = {}


def _value_rows(batch: EstimatorBatch, state: dict, args: Any) -> tuple[list[list[float]], list[str] | None]:
    """The rows of rewards whose values v_x(β) the batch uses, and the prompt keys of rolling/online state.

    `reference`/`history`: the frozen reference column. `rolling`: the prompt's window, started from its reference
    row; `online`: the window, started empty (ALGORITHMS.md §1f). Every row reads the state before this batch's
    rewards are recorded (`_record_rows`), so no row holds its own current reward.
    """
    if args.basis_values not in ("rolling", "online"):
        return batch.columns[args.reference_rewards_column], None
    rows = state.setdefault("rows", {})
    keys = [prompt_key(p) for p in batch.columns["prompt"]]
    if args.basis_values == "online":
        return [list(rows.get(k, [])) for k in keys], keys
    refs = batch.columns[args.reference_rewards_column]
    window = args.basis_window
    start = [[math.nan if v is None else float(v) for v in row][-window:] for row in refs]
    return [list(rows[k]) if k in rows else row for k, row in zip(keys, start, strict=True)], keys


def _record_rows(keys: list[str], rows: list[list[float]], rewards: torch.Tensor, state: dict, window: int) -> None:
    """After the whole batch's baselines: each reward joins its prompt's window (`rolling_row`)."""
    saved = state["rows"]
    for key, row, reward in zip(keys, rows, rewards.tolist(), strict=True):
        # A prompt twice in one batch: the second reward joins the row the first one left.
        saved[key] = rolling_row(saved.get(key, row), reward, window)


def _with_history(rewards, baseline, batch, state, args) -> tuple[torch.Tensor, dict[str, float]]:
    """ALGORITHMS.md §1e: b_i^h = (w·b_i + s_i) / (w + s_i + f_i) with the prompt's discounted past successes s_i
    and failures f_i; this batch's rewards are recorded after the whole batch was read."""
    history = state.setdefault("history", {})  # prompt key -> [successes, failures]
    keys = [prompt_key(p) for p in batch.columns["prompt"]]
    counts = torch.tensor([history.get(k, (0.0, 0.0)) for k in keys], dtype=torch.float64).reshape(-1, 2)
    if args.basis_history_weight is not None:
        weight = torch.full((len(keys),), float(args.basis_history_weight), dtype=torch.float64)
    else:
        refs = batch.columns[args.reference_rewards_column]
        weight = torch.tensor([float(len(row)) for row in refs], dtype=torch.float64)
    device = baseline.device
    blended = blend_with_history(baseline, counts[:, 0].to(device), counts[:, 1].to(device), weight.to(device))
    for key, reward in zip(keys, rewards.tolist(), strict=True):
        successes, failures = history.get(key, (0.0, 0.0))
        history[key] = list(spo_tracker_update(successes, failures, reward, args.basis_history_discount))
    seen = counts.sum(dim=1) > 0
    share = (counts.sum(dim=1) / (weight + counts.sum(dim=1)))[seen]
    return blended, {
        "basis/history_fraction": seen.double().mean().item(),
        "basis/history_share": share.mean().item() if share.numel() else 0.0,
    }


def _value_table(rows: list[list[float]], args: Any) -> torch.Tensor:
    """`(B, G)` values v_x(β) of the batch's prompts, memoised per distinct row of rewards.

    v_x(β) depends on the prompt only through the multiset of its rewards, and binary rewards give at most N + 1
    distinct multisets, so after the first steps this is a lookup instead of a (B, N, G) logsumexp (the overhead
    benchmark measured that logsumexp at about half of BASIS's per-step cost).
    """
    grid = (args.basis_temperature_num, args.basis_temperature_min, args.basis_temperature_max)
    memo = _VALUES.setdefault(grid, {})
    # None is a missing sample, like NaN; rows of different lengths are padded with missing samples.
    width = max(1, max(len(row) for row in rows))  # an empty row has no value (NaN)
    keys = [
        tuple(sorted(math.nan if v is None else float(v) for v in row)) + (math.nan,) * (width - len(row))
        for row in rows
    ]
    missing = [k for k in dict.fromkeys(keys) if k not in memo]
    fresh: dict[tuple[float, ...], torch.Tensor] = {}
    if missing:
        fresh = dict(zip(missing, reference_values(torch.tensor(missing, dtype=torch.float64), _temperatures(args))))
        if len(memo) < 100_000:  # bounded: real-valued rewards can make every row distinct
            # NaN never compares equal, so rows holding NaN would never be found again: skip them.
            memo.update((k, row) for k, row in fresh.items() if all(v == v for v in k))
    return torch.stack([fresh[k] if k in fresh else memo[k] for k in keys])


@register_estimator("reinforce_pp", group=False)
def reinforce_pp(rewards: torch.Tensor, batch: EstimatorBatch, state: dict, args: Any) -> Output:
    """REINFORCE++ with a batch baseline (ALGORITHMS.md "Peers"): A_i = (r_i − mean_j r_j) / std_j r_j.

    The normalisation is the method's own (`scale_rewards="batch"`, BASISConfig's default); `"none"` keeps
    r_i − mean_j r_j. The baseline includes r_i.
    """
    baseline = torch.nanmean(rewards.double())
    centred = reinforce_pp_advantages(rewards) if args.scale_rewards == "batch" else rewards.double() - baseline
    return centred, {"rpp/baseline": baseline.item()}


@register_estimator(
    "spo", group=False, columns=lambda args: (args.reference_rewards_column, "prompt"), unit_rewards=True
)
def spo(rewards: torch.Tensor, batch: EstimatorBatch, state: dict, args: Any) -> Output:
    """SPO (arXiv 2509.13232; ALGORITHMS.md "Peers"): a Beta tracker per prompt, started from its reference rewards.

        v̂_i = s_i / (s_i + f_i),   A_i = r_i − v̂_i,   Ã = (A − mean A) / std A

    s_i, f_i: the prompt's discounted successes and failures (`spo_discount`), read before this batch's update.
    The normalisation is SPO's own (`scale_rewards="batch"`, BASISConfig's default); `"none"` keeps A_i = r_i − v̂_i.
    """
    trackers = state.setdefault("spo", {})  # prompt key -> [successes, failures]
    keys = [prompt_key(p) for p in batch.columns["prompt"]]
    start = zip(*spo_tracker_init(batch.columns[args.reference_rewards_column]), strict=True)
    counts = [trackers.get(k, (s.item(), f.item())) for k, (s, f) in zip(keys, start, strict=True)]
    successes = torch.tensor([c[0] for c in counts], dtype=torch.float64)
    failures = torch.tensor([c[1] for c in counts], dtype=torch.float64)
    advantages, value = spo_advantages(rewards.double().cpu(), successes, failures)
    if args.scale_rewards == "none":
        advantages = rewards.double().cpu() - value
    # Updated after the whole batch was read (a prompt drawn twice is observed twice).
    for key, initial, reward in zip(keys, counts, rewards.tolist(), strict=True):
        trackers[key] = list(spo_tracker_update(*trackers.get(key, initial), reward, args.spo_discount))
    return advantages.to(rewards.device), {"spo/value_mean": value.mean().item()}


# ---------------------------------------------------------------------------------------- groups of completions
def current_k(args: Any, step: int, max_steps: int) -> int:
    """K in use at `step`: `max_k`, or its linear anneal towards `max_k_final` over `max_steps`."""
    if args.max_k_final is None:
        return args.max_k
    return round(linear_schedule(args.max_k, args.max_k_final, step / max(max_steps, 1)))


def per_group(
    fn: Callable[[torch.Tensor, int], torch.Tensor],
    rewards: torch.Tensor,
    batch: EstimatorBatch,
    state: dict,
    args: Any,
    k: int | None = None,
) -> Output:
    """Apply a library-scale group estimator `fn(rewards (groups, B), K)` to every group, times B (so that K = 1
    with L2O is RLOO's `r_i − mean(others)`), then `scale_rewards`. A group with unscorable completions (NaN) is
    estimated on its scored ones, and gets zero advantages when K + 1 are not left."""
    size = batch.group_size
    k = current_k(args, batch.step, batch.max_steps) if k is None else k
    grouped = rewards.double().view(-1, size)
    complete = ~torch.isnan(grouped).any(dim=1)
    advantages = torch.zeros_like(grouped)
    if bool(complete.any()):
        advantages[complete] = fn(grouped[complete], k) * size
    for g in torch.nonzero(~complete).flatten().tolist():  # rare: groups with unscorable completions
        valid = ~torch.isnan(grouped[g])
        if int(valid.sum()) > k:  # the scored completions form the group: times their number, as RLOO's
            advantages[g, valid] = fn(grouped[g, valid].unsqueeze(0), k)[0] * int(valid.sum())
    advantages = advantages.view(-1)
    advantages[torch.isnan(rewards)] = torch.nan
    advantages = scale_advantages(advantages, args.scale_rewards, size)
    state.setdefault("k", []).append(k)
    full = grouped[complete]
    return advantages, {
        "maxpo/k": k,
        "maxpo/max_at_k": max_at_k(full, k).mean().item() if len(full) else 0.0,
        "maxpo/pass_at_1": torch.nanmean(rewards.double()).item(),
        # The centring residual: mean |Σ_i A_i| over groups (exactly 0 for L2O, not for PKPO).
        "maxpo/advantage_sum": advantages.view(-1, size).nansum(dim=1).abs().mean().item(),
    }


@register_estimator("l2o", group=True)
def l2o(rewards: torch.Tensor, batch: EstimatorBatch, state: dict, args: Any) -> Output:
    """MaxPO's Leave-Two-Out (ALGORITHMS.md §2): A_i = B · K/(B−K) · (q_i − ρ̂_K), unbiased for ∇max@K and exactly
    centred in every group (q_i: mean max over the K-subsets holding i; ρ̂_K: the group's unbiased max@K).
    Fast path: `maxk.maxpo_advantages` (sorting, O(B log B)); by enumeration: `reference.maxpo_advantages_reference`."""
    return per_group(maxpo_advantages, rewards, batch, state, args)


@register_estimator("pkpo", group=True)
def pkpo(rewards: torch.Tensor, batch: EstimatorBatch, state: dict, args: Any) -> Output:
    """PKPO without a baseline (ALGORITHMS.md §2, "PKPO"): A_i = B · (K/B) · q_i; unbiased, not centred."""
    return per_group(pkpo_plain_advantages, rewards, batch, state, args)


@register_estimator("pkpo_loo", group=True)
def pkpo_loo(rewards: torch.Tensor, batch: EstimatorBatch, state: dict, args: Any) -> Output:
    """PKPO's leave-one-out (ALGORITHMS.md §2): A_i = B · ((K/B) · q_i − K/(B−1) · ρ̂_K(group without i))."""
    return per_group(pkpo_loo_advantages, rewards, batch, state, args)


@register_estimator("pkpo_loo_minus_one", group=True)
def pkpo_loo_minus_one(rewards: torch.Tensor, batch: EstimatorBatch, state: dict, args: Any) -> Output:
    """PKPO's "loo minus one" (ALGORITHMS.md §2): A_i = B · (K/B) · (q_i − ρ̂_{K−1}(group without i))."""
    return per_group(pkpo_loo_minus_one_advantages, rewards, batch, state, args)


@register_estimator("grpo", group=True, uses_k=False)
def grpo(rewards: torch.Tensor, batch: EstimatorBatch, state: dict, args: Any) -> Output:
    """The group mean (GRPO without its std; ALGORITHMS.md §2): A_i = r_i − mean_j r_j. K is ignored."""
    return per_group(group_mean_advantages, rewards, batch, state, args)


@register_estimator("rloo", group=True, uses_k=False)
def rloo(rewards: torch.Tensor, batch: EstimatorBatch, state: dict, args: Any) -> Output:
    """RLOO (ALGORITHMS.md §2): A_i = r_i − mean_{j≠i} r_j, which is L2O at K = 1 (`max_k` is ignored)."""
    return per_group(maxpo_advantages, rewards, batch, state, args, k=1)
