"""Importable callbacks of `trl-basis train`, for scripts of your own (added with `trainer.add_callback`, as TRL's
`LogCompletionsCallback` is):

* `HeldOutAccuracyCallback`: pass@1 and pass@k of held-out prompts before training, at evenly spaced steps and at the
  end, sampled through the trainer's own generate-and-score path (`trl_basis.evaluation.held_out_accuracy`: the
  training sampler, chat template, vLLM, tools and ZeRO-3 unwrapping included);
* `CompactProgressCallback`: TRL's progress bar with one short line per logging step.
"""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

from .evaluation import held_out_accuracy

__all__ = ["CompactProgressCallback", "HeldOutAccuracyCallback"]


class HeldOutAccuracyCallback(TrainerCallback):
    """Scores the held-out prompts before training, at `eval_points` evenly spaced steps, and at the end.

    Built like TRL's `LogCompletionsCallback`, from the trainer whose model, tokenizer, reward weights and sampler it
    uses, and added with `trainer.add_callback(callback)`. `points` holds every evaluation: `{"step", "accuracy",
    "pass_at_k"}` (pass@k for k up to `num_samples`); `seconds` the time spent evaluating.
    """

    def __init__(
        self,
        trainer,
        dataset,
        reward_funcs,
        num_samples: int = 8,
        eval_points: int = 4,
        batch_size: int = 256,
        seed: int = 0,
        printer=print,
    ):
        self.trainer, self.dataset, self.reward_funcs = trainer, dataset, reward_funcs
        self.num_samples, self.eval_points, self.batch_size, self.seed = num_samples, eval_points, batch_size, seed
        self.printer = printer
        self.points: list[dict[str, Any]] = []
        self.seconds = 0.0
        self._steps: set[int] = set()

    def _evaluate(self, step: int, label: str) -> None:
        if any(p["step"] == step for p in self.points):
            return
        start = time.perf_counter()
        result = held_out_accuracy(
            self.trainer,
            self.dataset,
            self.reward_funcs,
            num_samples=self.num_samples,
            seed=self.seed,
            prompts_per_call=max(1, self.batch_size // self.num_samples),
        )
        self.seconds += time.perf_counter() - start
        self.points.append({"step": step, **result})
        k = self.num_samples
        # MaxPO optimises pass@K at its own K: shown first, beside pass@1.
        target = getattr(self.trainer, "current_k", None)
        shown = sorted({j for j in (target, k) if isinstance(j, int) and 1 < j <= k})
        self.printer(
            f"[held-out] {label} step {step}: accuracy {result['accuracy']:.3f}"
            + "".join(f", pass@{j} {result['pass_at_k'][str(j)]:.3f}" for j in shown)
            + f" ({len(self.dataset)} prompts x {k} samples)"
        )

    def on_train_begin(self, args, state, control, **kwargs):
        total = state.max_steps
        self._steps = {round(total * (i + 1) / (self.eval_points + 1)) for i in range(self.eval_points)}
        self._steps -= {0, total}
        self._evaluate(state.global_step, "before training," if state.global_step == 0 else "at resume,")

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step in self._steps:
            self._evaluate(state.global_step, "during training,")

    def on_train_end(self, args, state, control, **kwargs):
        self._evaluate(state.global_step, "after training,")


class CompactProgressCallback(ProgressCallback):
    """TRL's progress bar, with one short line per logging step instead of the full metrics dict."""

    KEYS = (
        ("reward", "reward"),
        ("basis/temperature", "temp"),
        ("maxpo/k", "K"),
        ("maxpo/max_at_k", "max@K"),
        ("loss", "loss"),
        ("completions/mean_length", "len"),
    )

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or self.training_bar is None or not logs:
            return
        if "train_runtime" in logs:
            self.training_bar.write(f"[train] done in {float(logs['train_runtime']):.1f}s")
            return
        parts = [f"{short} {float(logs[key]):.4g}" for key, short in self.KEYS if key in logs]
        if parts:
            self.training_bar.write(f"[train] step {state.global_step}/{state.max_steps}: " + ", ".join(parts))
