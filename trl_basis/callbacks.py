"""Importable callbacks of `trl-basis train`, for scripts of your own (added with `trainer.add_callback`, as TRL's
`LogCompletionsCallback` is):

* `HeldOutAccuracyCallback`: pass@1 and pass@k of held-out prompts before training, at evenly spaced steps and at the
  end, sampled with the training sampler through TRL's generation unwrapping (ZeRO-3 included);
* `CompactProgressCallback`: TRL's progress bar with one short line per logging step.
"""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

from ._quiet import quiet_map

__all__ = ["CompactProgressCallback", "HeldOutAccuracyCallback", "held_out_accuracy", "training_sampler"]


def held_out_accuracy(trainer, dataset, reward_funcs, num_samples: int, batch_size: int, seed: int) -> dict:
    """pass@1 (mean reward) and pass@k of `dataset` for the trainer's current model, on every process in lockstep.

    Generation goes through TRL's `unwrap_model_for_generation` (gathers ZeRO-3 shards when
    `ds3_gather_for_generation`), and the global RNG state is restored afterwards so training sampling is unchanged.
    """
    import torch
    from trl.models import unwrap_model_for_generation

    from .evaluation import evaluate_pass_at_k

    args = trainer.args
    if args.chat_template_kwargs and dataset is not None and isinstance(dataset[0]["prompt"], list):
        dataset = _render_prompts(dataset, trainer.processing_class, args.chat_template_kwargs)
    model = getattr(trainer, "model_wrapped", None) or trainer.model
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with (
        torch.random.fork_rng(devices=devices),
        unwrap_model_for_generation(
            model, trainer.accelerator, gather_deepspeed3_params=args.ds3_gather_for_generation
        ) as unwrapped,
    ):
        result = evaluate_pass_at_k(
            unwrapped,
            trainer.processing_class,
            dataset,
            reward_funcs,
            num_samples=num_samples,
            reward_weights=trainer.reward_weights.tolist(),
            max_new_tokens=args.max_completion_length,
            temperature=args.temperature,
            top_p=args.top_p,
            generation_kwargs=training_sampler(args),
            batch_size=batch_size,
            seed=seed,
            progress=False,
        )
    curve = result["pass_at_k"]
    return {"accuracy": curve[1], "pass_at_k": {str(k): v for k, v in curve.items()}}


def training_sampler(args) -> dict[str, Any]:
    """The sampling settings GRPOTrainer generates with (besides temperature and top_p), for the evaluation: without
    them a model's own generation_config (e.g. Qwen's top_k=20, repetition_penalty=1.05) would silently change the
    sampler between training and evaluation."""
    sampler = {"top_k": args.top_k, "min_p": args.min_p, "repetition_penalty": args.repetition_penalty}
    sampler.update(args.generation_kwargs or {})
    return sampler


def _render_prompts(dataset, tokenizer, chat_template_kwargs: dict[str, Any]):
    """Conversational prompts rendered to text with `chat_template_kwargs` (e.g. Qwen3's `enable_thinking`), so the
    evaluation samples with the same template as training."""

    def render(example):
        text = tokenizer.apply_chat_template(
            example["prompt"], tokenize=False, add_generation_prompt=True, **chat_template_kwargs
        )
        return {"prompt": text}

    return quiet_map(dataset, render)


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
            self.trainer, self.dataset, self.reward_funcs, self.num_samples, self.batch_size, self.seed
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
