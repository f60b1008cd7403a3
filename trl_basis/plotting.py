"""The picture and the per-step series of `trl-basis train` (`training_curves.png`, `metrics.json`'s `series`)."""

from __future__ import annotations

import math
import os
from typing import Any

__all__ = ["SERIES", "collect_series", "plot_curves"]


SERIES = {  # metrics.json name -> logged key
    "reward": "reward",
    "reward_std": "reward_std",
    "frac_reward_zero_std": "frac_reward_zero_std",
    "temperature": "basis/temperature",
    "basis_criterion": "basis/criterion",
    "k": "maxpo/k",
    "max_at_k": "maxpo/max_at_k",
    "loss": "loss",
}


def collect_series(log_history: list[dict[str, Any]]) -> dict[str, list]:
    """Per-logging-step series (`steps` plus each of `SERIES` that was logged) from `trainer.state.log_history`."""
    rows = [h for h in log_history if "reward" in h and "train_runtime" not in h]
    series: dict[str, list] = {"steps": [int(h["step"]) for h in rows]}
    for name, key in SERIES.items():
        if any(key in h for h in rows):
            series[name] = [_finite(h.get(key)) for h in rows]
    return series


def _finite(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def plot_curves(metrics: dict[str, Any], path: str) -> str:
    """Draw training reward, held-out accuracy and β_t (BASIS) or K / max@K (MaxPO) against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series, points = metrics["series"], metrics["accuracy_points"]
    steps = series.get("steps", [])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    title = (
        f"trl-basis train: {metrics['trainer']} on {metrics['dataset']}, model {os.path.basename(metrics['model'])}"
    )
    if metrics.get("num_train_prompts") is not None:
        title += f", {metrics['num_train_prompts']} training prompts used"
    fig.suptitle(title, fontsize=11)

    ax = axes[0]
    reward = series.get("reward", [])
    if reward:
        ax.plot(steps, reward, color="tab:blue", alpha=0.35, lw=1, label="batch mean")
        smooth = _moving_average(reward, max(1, len(reward) // 15))
        ax.plot(steps, smooth, color="tab:blue", lw=2, label="moving average")
        ax.legend(loc="best", fontsize=8)
    ax.set(title="training reward", xlabel="step", ylabel="mean reward")
    ax.grid(alpha=0.3)

    ax = axes[1]
    if points:
        xs = [p["step"] for p in points]
        ax.plot(xs, [p["accuracy"] for p in points], "o-", color="tab:green", label="pass@1 (accuracy)")
        k, target = metrics.get("eval_samples", 1), metrics.get("target_k")
        if target:  # what the trainer optimises (MaxPO's pass@K), beside pass@1
            ys = [p["pass_at_k"][str(target)] for p in points]
            ax.plot(xs, ys, "D-", color="tab:red", label=f"pass@{target} (the trainer's K)")
        if k > 1 and k != target:
            ax.plot(xs, [p["pass_at_k"][str(k)] for p in points], "s--", color="tab:olive", label=f"pass@{k}")
        ax.legend(loc="best", fontsize=8)
        before, after = points[0]["accuracy"], points[-1]["accuracy"]
        title = f"held-out pass@1: {before:.3f} → {after:.3f}"
        if target:
            title += f"\npass@{target}: {ys[0]:.3f} → {ys[-1]:.3f}"
        ax.set_title(title)
    else:
        ax.set_title("held-out accuracy (not evaluated)")
    ax.set(xlabel="step", ylabel="accuracy")
    ax.grid(alpha=0.3)

    ax = axes[2]
    if metrics["trainer"] == "basis" and series.get("temperature"):
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        temperature = series["temperature"]
        ax.plot(steps, temperature, color="tab:red", alpha=0.35, lw=1, label="BASIS temperature")
        ax.plot(
            steps,
            _moving_average(temperature, max(1, len(temperature) // 15)),
            color="tab:red",
            lw=2,
            label="moving average",
        )
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.legend(loc="best", fontsize=8)
        ax.set(title="BASIS temperature (calibrated each step)", xlabel="step", ylabel="temperature (log scale)")
    elif metrics["trainer"] == "maxpo" and series.get("max_at_k"):
        ax.plot(steps, series["max_at_k"], color="tab:purple", lw=1.5, label="batch max@K")
        ax.set(title="MaxPO max@K and K", xlabel="step", ylabel="max@K")
        twin = ax.twinx()
        twin.step(steps, series.get("k", []), color="tab:gray", where="post", label="K")
        twin.set_ylabel("K")
        ax.legend(loc="upper left", fontsize=8)
        twin.legend(loc="lower right", fontsize=8)
    elif series.get("frac_reward_zero_std"):
        zero = series["frac_reward_zero_std"]
        ax.plot(steps, zero, color="tab:orange", alpha=0.35, lw=1)
        ax.plot(steps, _moving_average(zero, max(1, len(zero) // 15)), color="tab:orange", lw=2)
        ax.set_ylim(-0.02, 1.02)
        ax.set(title="GRPO: groups with identical rewards (no signal)", xlabel="step", ylabel="fraction of groups")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _moving_average(values: list, window: int) -> list:
    out, acc = [], []
    for v in values:
        acc.append(v if v is not None else math.nan)
        acc = acc[-window:]
        finite = [a for a in acc if not math.isnan(a)]
        out.append(sum(finite) / len(finite) if finite else math.nan)
    return out
