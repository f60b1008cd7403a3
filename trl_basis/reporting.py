"""What a training run leaves behind and says at its end, as `trl-basis train` does: `run_metrics` gathers the
held-out accuracy (a `HeldOutAccuracyCallback`'s points), the logged series and the run's facts; `write_outputs`
writes `metrics.json` and `training_curves.png`; `report` prints the summary. A notebook that trains with its own
trainer reuses them as they are.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from ._io import write_json_atomically
from .plotting import collect_series, plot_curves

__all__ = ["METRICS_FILE", "PLOT_FILE", "report", "run_metrics", "write_outputs"]

METRICS_FILE = "metrics.json"
PLOT_FILE = "training_curves.png"


def run_metrics(trainer, callback, test, *, name: str, model: str, dataset: str, eval_samples: int) -> dict[str, Any]:
    """The facts of a finished (or interrupted) run of `trainer` (registered as `name`), evaluated by `callback` on
    `test` with `eval_samples` completions per prompt: what `metrics.json` holds besides the timings."""
    points = sorted(callback.points, key=lambda p: p["step"])
    k = getattr(trainer, "current_k", None)  # the K MaxPO optimises pass@K for, when the evaluation measures it
    deepspeed = trainer.accelerator.state.deepspeed_plugin if trainer.is_deepspeed_enabled else None
    return {
        "trainer": name,
        "model": model,
        "dataset": dataset,
        "num_train_prompts": len(trainer.train_dataset) if hasattr(trainer.train_dataset, "__len__") else None,
        "num_eval_prompts": len(test) if test is not None else 0,
        "eval_samples": eval_samples,
        "num_processes": trainer.accelerator.num_processes,
        "deepspeed_zero_stage": deepspeed.zero_stage if deepspeed else None,
        "max_steps": trainer.state.max_steps,
        "global_step": trainer.state.global_step,
        "before": points[0] if points else None,
        "after": points[-1] if points else None,
        "accuracy_points": points,
        "series": collect_series(trainer.state.log_history),
        "estimator_state": getattr(trainer, "_estimator_state", {}),
        "output_dir": os.path.abspath(trainer.args.output_dir),
        "target_k": k if isinstance(k, int) and 1 < k <= eval_samples else None,
        "eval_seconds": callback.seconds,
    }


def write_outputs(metrics: dict[str, Any], output_dir: str, plot: bool) -> None:
    """`metrics.json` first (a plotting failure after a full run must not lose it), then the picture."""
    files = {"model": os.path.abspath(output_dir), "metrics": os.path.abspath(os.path.join(output_dir, METRICS_FILE))}
    metrics["files"] = files
    write_json_atomically(files["metrics"], metrics, indent=2)
    if not plot:
        return
    try:
        files["plot"] = os.path.abspath(plot_curves(metrics, os.path.join(output_dir, PLOT_FILE)))
    except Exception as err:  # noqa: BLE001 - any plotting error is only a warning
        message = f"could not draw {PLOT_FILE} ({type(err).__name__}: {err}); the model and {METRICS_FILE} are saved."
        print(f"\n[trl-basis] warning: {message}", file=sys.stderr)
    else:
        write_json_atomically(files["metrics"], metrics, indent=2)  # now listing the plot too


def report(metrics: dict[str, Any], say=print) -> None:
    """The summary: held-out accuracy before -> after (and pass@K at MaxPO's K), the timings and the files."""
    before, after, k = metrics["before"], metrics["after"], metrics["target_k"]
    say("")
    if before is not None and not metrics["interrupted"]:
        target = ""
        if k:  # MaxPO's own objective, beside pass@1
            target = (
                f"; pass@{k} (the trainer's K) {before['pass_at_k'][str(k)]:.3f} -> {after['pass_at_k'][str(k)]:.3f}"
            )
        say(
            f"[trl-basis] held-out accuracy: {before['accuracy']:.3f} before -> {after['accuracy']:.3f} after"
            f"{target} ({metrics['num_eval_prompts']} prompts x {metrics['eval_samples']} samples)"
        )
    say(
        f"[trl-basis] wall time {metrics['wall_seconds']:.0f}s (setup incl. reference stage "
        f"{metrics['setup_seconds']:.0f}s, training {metrics['train_seconds']:.0f}s of which held-out evaluation "
        f"{metrics['eval_seconds']:.0f}s)"
    )
    files = metrics["files"]
    card = os.path.join(files["model"], "README.md")
    for name, path in (
        ("model", files["model"]),
        ("metrics", files["metrics"]),
        ("card", card),
        ("plot", files.get("plot")),
    ):
        if path:
            say(f"[trl-basis] {name + ':':<8} {path}")
