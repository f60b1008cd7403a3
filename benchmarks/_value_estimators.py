"""The value estimators that `value_mse.py` compares, each on the same batches, and the replays of a training run's
observed rewards that the estimators riding along the run (SPO's tracker, BASIS's history, rolling and online
windows) need. What each estimator is: `value_mse.py`'s docstring.
"""

from __future__ import annotations

import math

import torch

GROUP_SIZES = (2, 4, 8)
FALLBACKS = ("zero", "initial")
#: (key, label, plot style) of every estimator, in table order.
ESTIMATORS = [
    ("loo", "REINFORCE++ (leave-one-out batch mean)", "k-o"),
    *[(f"group{g}", f"group mean, G = {g}", style) for g, style in zip(GROUP_SIZES, ("C0:s", "C0--s", "C0-s"))],
    ("initial", "BASIS initial v(beta_t)", "C2-.^"),
    ("refined_zero", "BASIS refined, fallback zero", "C3-D"),
    ("refined_initial", "BASIS refined, fallback initial", "C1--v"),
    ("refined_zero_exact", "BASIS refined, fallback zero, exact", "C4:x"),
    ("refined_initial_exact", "BASIS refined, fallback initial, exact", "C5-.+"),
    ("spo", "SPO tracker (same offline samples, updated along the run)", "C6-*"),
    ("refined_history", "BASIS refined + own history (basis_history, §1e)", "C9-P"),
    ("rolling", "BASIS rolling values (basis_values='rolling', §1f)", "C8-h"),
    ("online", "BASIS online values (basis_values='online', §1f)", "C7--d"),
]
LABELS = {key: label for key, label, _ in ESTIMATORS}


# ----------------------------------------------------------------------------------------------- replays
def replay(keys: list[str], observed: list[tuple[int, str, float]], step: int, start: list, update) -> list:
    """Each prompt's state after replaying, from `start`, the rewards the run observed before `step` with
    `update(state, reward)`: what a tracker or a window riding along the run would hold at that checkpoint."""
    state = dict(zip(keys, start, strict=True))
    for seen_at, key, reward in observed:
        if seen_at < step and key in state:
            state[key] = update(state[key], reward)
    return [state[k] for k in keys]


def replay_counts(
    keys: list[str], observed: list[tuple[int, str, float]], step: int, start: torch.Tensor, discount: float
) -> torch.Tensor:
    """(P, 2) SPO tracker counts of each prompt at `step` (`replay`), from the counts `start`."""
    from trl_basis.advantages.peers import spo_tracker_update

    counts = replay(keys, observed, step, start.tolist(), lambda c, r: spo_tracker_update(*c, r, discount))
    return torch.tensor(counts, dtype=torch.float64)


def spo_values(refs: torch.Tensor, keys: list[str], observed: list[tuple[int, str, float]], step: int) -> torch.Tensor:
    """SPO's tracker mean for each prompt: started from the reference rewards, updated along the run."""
    from _methods import SPO_DISCOUNT

    from trl_basis.advantages.peers import spo_tracker_init

    counts = replay_counts(keys, observed, step, torch.stack(spo_tracker_init(refs), dim=1), SPO_DISCOUNT)
    return counts[:, 0] / counts.sum(dim=1)


def history_counts(keys: list[str], observed: list[tuple[int, str, float]], step: int) -> torch.Tensor:
    """basis_history's counts (from zero, the trainer's default discount)."""
    from trl_basis import BASISConfig

    discount = BASISConfig.__dataclass_fields__["basis_history_discount"].default
    return replay_counts(keys, observed, step, torch.zeros(len(keys), 2, dtype=torch.float64), discount)


def window_rows(
    keys: list[str], observed: list[tuple[int, str, float]], step: int, start: list[list[float]], window: int
) -> list[list[float]]:
    """Each prompt's rolling window at `step` (§1f): `start` plus the rewards the run observed before `step`."""
    from trl_basis.advantages import rolling_row

    return replay(keys, observed, step, start, lambda row, r: rolling_row(row, r, window))


def window_table(rows: list[list[float]], min_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(P, G) values of the rows (NaN for rows with fewer than `min_samples` rewards) and the (P,) usable mask."""
    from trl_basis.advantages import beta_grid, reference_values, usable_rows

    usable = usable_rows(rows, min_samples)
    width = max([len(r) for r in rows] + [1])
    padded = [r + [math.nan] * (width - len(r)) if ok else [math.nan] * width for r, ok in zip(rows, usable)]
    return reference_values(torch.tensor(padded, dtype=torch.float64), beta_grid()), torch.tensor(usable)


# ----------------------------------------------------------------------------------------------- estimation
def evaluate_batches(
    rewards: torch.Tensor,
    refs: torch.Tensor,
    batch_indices: list[torch.Tensor],
    seed: int,
    spo: torch.Tensor,
    history: torch.Tensor,
    windows: dict[str, tuple[torch.Tensor, torch.Tensor]],
) -> dict[str, object]:
    """Squared errors of every estimator on the same batches; `rewards` (P, M), `refs` (P, N), `spo` (P,), the
    history counts `history` (P, 2), and `windows`: the (P, G) value table and (P,) usable mask of the rolling and
    online rows."""
    from trl_basis.advantages import (
        beta_grid,
        blend_with_history,
        calibrate_beta,
        reference_values,
        with_batch_fallback,
    )

    betas = beta_grid()
    table = reference_values(refs, betas)  # (P, G)
    gen = torch.Generator().manual_seed(seed)
    num_draws = 1 + max(GROUP_SIZES)
    per_batch: dict[str, list[float]] = {key: [] for key, _, _ in ESTIMATORS}
    beta_normal, beta_exact, active = [], [], []
    for idx in batch_indices:
        size = idx.numel()
        order = torch.rand(size, rewards.shape[1], generator=gen).argsort(dim=1)
        draws = rewards[idx].gather(1, order)  # each prompt's samples in a random order
        r, groups, rest = draws[:, 0], draws[:, 1:num_draws], draws[:, num_draws:]
        truth = rest.mean(dim=1)
        noise = rest.var(dim=1) / rest.shape[1]  # unbiased estimate of Var(truth)
        values = table[idx]
        estimates = {"loo": (r.sum() - r) / (size - 1), "spo": spo[idx]}
        for g in GROUP_SIZES:
            estimates[f"group{g}"] = groups[:, :g].mean(dim=1)
        for exact in (False, True):
            for fallback in FALLBACKS:
                cal = calibrate_beta(r, values, betas, fallback=fallback, exact=exact)
                estimates[f"refined_{fallback}" + ("_exact" if exact else "")] = cal.baseline
                if fallback == "zero" and not exact:
                    estimates["initial"] = values[torch.arange(size), cal.index].clamp(0.0, 1.0)
                    counts = history[idx]
                    estimates["refined_history"] = blend_with_history(
                        cal.baseline, counts[:, 0], counts[:, 1], float(refs.shape[1])
                    )
                    beta_normal.append(cal.beta.item())
                    active.append(cal.num_active / size)
                if fallback == "zero" and exact:
                    beta_exact.append(cal.beta.mean().item())
        for key, (window_values, usable) in windows.items():  # §1f, with their default fallback "initial"
            cal = calibrate_beta(r, window_values[idx], betas, fallback="initial")
            estimates[key] = with_batch_fallback(cal.baseline, r, usable[idx])
        for key, est in estimates.items():
            per_batch[key].append(((est - truth).square() - noise).mean().item())
    mse = {key: sum(v) / len(v) for key, v in per_batch.items()}
    diff = torch.tensor(per_batch["refined_zero"]) - torch.tensor(per_batch["group8"])
    diff_se = (diff.std() / math.sqrt(len(diff))).item() if len(diff) > 1 else float("nan")
    return {
        "mse": mse,
        "delta_g8": diff.mean().item(),
        "delta_g8_se": diff_se,
        "beta": sum(beta_normal) / len(beta_normal),
        "beta_exact": sum(beta_exact) / len(beta_exact),
        "active": sum(active) / len(active),
    }
