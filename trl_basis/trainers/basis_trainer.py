"""BASISTrainer: one completion per prompt with the batchwise β-calibrated baseline (ALGORITHMS.md §1)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Any

from accelerate.utils import broadcast_object_list
from datasets import Dataset

from ..advantages.registry import get_estimator
from ..evaluation import sample_rewards
from ..reference_cache import (
    cache_is_writable,
    check_reference_rewards,
    clear_partial_rewards,
    load_cached_rewards,
    load_partial_rewards,
    model_fingerprint,
    reference_cache_key,
    save_cached_rewards,
    save_partial_rewards,
)
from ._trl_bridge import AdvantageEstimatorTrainer
from .basis_config import BASISConfig


class BASISTrainer(AdvantageEstimatorTrainer):
    """Trainer for BASIS ([arXiv 2605.27293](https://arxiv.org/abs/2605.27293)), a drop-in `GRPOTrainer`.

    Each step samples ONE completion per prompt. The advantage of prompt i is `A_i = r_i − b_i(β_t)`, where `b_i` is
    the leave-one-out best linear unbiased estimate of its value from the OTHER prompts' rewards in the global batch,
    weighted by offline reference values `v_x(β)`, and `β_t` minimises the leave-one-out error on the batch
    (`trl_basis.advantages.calibrate_beta`). The reference rewards come from a dataset column or, when it is missing,
    from an offline stage run at the start of `train()` (`prepare_reference_rewards`, cached on disk; see
    `trl_basis.estimate_reference_rewards`).

    Arguments are those of `GRPOTrainer`; `args` is a [`BASISConfig`].
    """

    _tag_names = ["trl", "basis", "trl_basis"]
    _group = False  # one completion per prompt: the estimators registered with group=False
    # TRL computes it over groups of ONE completion, where the std is always 0: it would read 1.0 at every step.
    _dropped_metrics = ("frac_reward_zero_std",)
    _estimator_fields = (
        "advantage_estimator",
        "basis_temperature_num",
        "basis_temperature_min",
        "basis_temperature_max",
        "basis_history",
        "basis_history_discount",
        "basis_values",
        "basis_window",
        "basis_min_samples",
        "reference_rewards_column",
        "spo_discount",
    )
    _name = "BASIS"
    _paper_estimator = "basis"  # the model card cites the paper only for this estimator
    _paper = {
        "title": "BASIS: Batchwise Advantage Estimation from Single-Rollout Information Sharing for LLM Reasoning",
        "id": "2605.27293",
        # docstyle-ignore
        "citation": textwrap.dedent("""\
            @article{gong2026basis,
                title        = {{BASIS: Batchwise Advantage Estimation from Single-Rollout Information Sharing for LLM Reasoning}},
                author       = {Shijin Gong and Erhan Xu and Kai Ye and Francesco Quinzan and Giulia Livieri and Chengchun Shi},
                year         = 2026,
                eprint       = {arXiv:2605.27293},
            }"""),
    }

    def __init__(self, model, reward_funcs=None, args: BASISConfig | None = None, train_dataset=None, **kwargs):
        if args is None:
            model_name = model if isinstance(model, str) else model.config._name_or_path
            args = BASISConfig(f"{str(model_name).split('/')[-1]}-BASIS")
        if not isinstance(args, BASISConfig):
            raise TypeError(f"BASISTrainer needs a BASISConfig; got {type(args).__name__}.")
        column = args.reference_rewards_column
        if (
            needs_reference_rewards(args)
            and isinstance(train_dataset, Dataset)
            and column in train_dataset.column_names
        ):
            check_reference_rewards(train_dataset[column], column)  # cheap, and before the model loads
        # TRL's own argument and dataset checks run first, with their own messages.
        super().__init__(model, reward_funcs, args=args, train_dataset=train_dataset, **kwargs)
        if train_dataset is None:  # TRL built a placeholder of empty prompts: the environment owns the data
            raise ValueError(ENVIRONMENT_OWNED_DATA_ERROR)
        environment = getattr(self, "environment_factories", None) is not None
        self.train_dataset = _check_dataset(self.train_dataset, args, environment=environment)

    def train(self, *args, **kwargs):
        """`GRPOTrainer.train`, after the offline stage (`prepare_reference_rewards`) when the column is missing."""
        self.prepare_reference_rewards()
        return super().train(*args, **kwargs)

    def prepare_reference_rewards(self) -> Dataset:
        """The offline stage: give `self.train_dataset` its reference-reward column, then filter constant prompts.

        Runs once, lazily at the start of `train()` (as TRL's `A2POTrainer` runs its own pre-training stage), so that
        constructing the trainer stays cheap. Without the column, `num_reference_samples` completions per row are
        sampled from the current (reference) policy through TRL's full per-batch generation path and scored with the
        reward functions, using the cache under `reference_cache_dir`. Every process must call it. Returns the
        training dataset.
        """
        column = self.args.reference_rewards_column
        if not needs_reference_rewards(self.args):  # e.g. online values, REINFORCE++: no offline stage
            return self.train_dataset
        if column not in (self.train_dataset.column_names or []):
            dataset = self._attach_reference_rewards(self.train_dataset)
            if self.args.filter_constant_prompts:
                dataset = _filter_constant_prompts(dataset, column)
            _check_size(dataset, self.args, after="filtering prompts with constant reference rewards")
            self.train_dataset = dataset
        return self.train_dataset

    # ------------------------------------------------------------------ offline: the reference rewards
    def _attach_reference_rewards(self, dataset: Dataset) -> Dataset:
        """Add the reference-reward column, from the cache when possible, else by sampling (sharded, gathered).

        Every decision that changes which collectives run (cache hit or miss, entry valid or not, cache writable or
        not, which chunks of an interrupted stage are done) is taken on the main process and broadcast: on several
        nodes each node may have its own cache folder, and ranks that decided differently would deadlock or crash
        in mismatched collectives. Only the main process's cache is read and written.
        """
        args = self.args
        revision = (args.model_init_kwargs or {}).get("revision")
        fields = {
            "model": model_fingerprint(self.accelerator.unwrap_model(self.model), revision=revision),
            "reward_funcs": self.reward_func_names,
            "reward_weights": self.reward_weights.tolist(),
            "num_samples": args.num_reference_samples,
            "generation": [args.max_completion_length, args.temperature, args.top_p, args.top_k, args.min_p],
            "generation_kwargs": args.generation_kwargs,
            "repetition_penalty": args.repetition_penalty,
            "chat_template_kwargs": args.chat_template_kwargs,
        }
        key = reference_cache_key(fields, dataset)  # every column: the rewards read them (e.g. `answer`)
        cache, main = args.reference_cache_dir, self.accelerator.is_main_process
        decision: list[Any] = [None, False, {}]
        if main:
            cached = load_cached_rewards(cache, key, len(dataset), args.num_reference_samples)
            # Checked before sampling: an unusable cache costs a warning, never the sampled work.
            writable = cached is None and cache_is_writable(cache)
            done = load_partial_rewards(cache, key, len(dataset), args.num_reference_samples) if writable else {}
            decision = [cached, writable, done]
        rewards, writable, done = broadcast_object_list(decision)
        if rewards is None:

            def save_chunk(indices: list[int], rows: list[list[float]]) -> None:
                if writable and main:
                    save_partial_rewards(cache, key, indices, rows)

            rewards = self._sample_reference_rewards(dataset, done=done, save_chunk=save_chunk)
            if writable and main and save_cached_rewards(cache, key, rewards, fields) is not None:
                clear_partial_rewards(cache, key)  # the entry holds them all now
            self.accelerator.wait_for_everyone()
        self.clear_pending_metrics()  # the offline stage must not leak into the first logged training metrics
        return dataset.add_column(args.reference_rewards_column, rewards)

    def _sample_reference_rewards(
        self,
        dataset: Dataset,
        done: dict[int, list[float]] | None = None,
        save_chunk: Callable[[list[int], list[list[float]]], None] | None = None,
    ) -> list[list[float]]:
        """`(P, N)` rewards of N completions per prompt, through the library's one sampling path
        (`trl_basis.evaluation.sample_rewards`: process r samples a contiguous block of each chunk).

        Prompts in `done` (the saved chunks of an interrupted stage) are not sampled again, and `save_chunk(indices,
        rows)` receives each completed chunk, so a stage stopped at 90% restarts at 90%. Each process's generation
        in a chunk is seeded by (`seed`, its first prompt, its rank): a resumed stage samples what an uninterrupted
        one would have. Every random stream training uses is restored afterwards, so whether this ran (a cold
        cache) or not (a warm one) does not change the training that follows.
        """
        rewards = sample_rewards(
            self,
            dataset,
            self.args.num_reference_samples,
            prompts_per_call=self.args.reference_batch_size,
            seed=self.args.seed,
            seed_key="reference",
            done=done,
            save_chunk=save_chunk,
            check=self._check_unit_rewards,
            desc=f"BASIS reference rewards ({self.args.num_reference_samples} samples/prompt)",
        )
        # Every process computed the same gathered rows; make the main process's copy authoritative.
        return broadcast_object_list([rewards.tolist()])[0]


ENVIRONMENT_OWNED_DATA_ERROR = (
    "BASISTrainer needs a train_dataset: its baseline weights each row by reference rewards sampled offline for that "
    "row, and environment-owned data (no train_dataset; every prompt comes from the environment's reset()) has no "
    "row to sample them for. Pass a train_dataset with one row per task (its columns go to reset(), and the offline "
    "stage samples num_reference_samples rollouts of each row), or use MaxPOTrainer/GRPOTrainer."
)


def _check_dataset(train_dataset: Any, args: BASISConfig, environment: bool = False) -> Any:
    """BASIS's own dataset checks, after TRL's: a prompt (or an environment that makes one), and reference rewards
    that exist or can be sampled."""
    column = args.reference_rewards_column
    columns = train_dataset.column_names or []
    if "prompt" not in columns and not environment:
        raise ValueError(f"train_dataset has no 'prompt' column (columns: {columns}); add one in TRL's format.")
    needed = [c for c in get_estimator(args.advantage_estimator).columns(args) if c != column]
    missing = [c for c in needed if c not in columns]
    if missing:
        raise ValueError(
            f"advantage_estimator={args.advantage_estimator!r} (basis_values={args.basis_values!r}) reads the column(s) "
            f"{missing}, which train_dataset lacks (columns: {columns}); add them, or set basis_values='reference'."
        )
    if not needs_reference_rewards(args):  # no reference rewards needed (online rows, REINFORCE++)
        _check_size(train_dataset, args, after="loading")
        return train_dataset
    if column in columns:
        if args.filter_constant_prompts:
            train_dataset = _filter_constant_prompts(train_dataset, column)
        _check_size(train_dataset, args, after="filtering prompts with constant reference rewards")
        return train_dataset
    if args.num_reference_samples == 0:
        raise ValueError(
            f"train_dataset has no {column!r} column and num_reference_samples=0. Either add the column (a list "
            "of reference rewards in [0, 1] per prompt, e.g. from `trl_basis.estimate_reference_rewards`) or set "
            "num_reference_samples >= 1 to sample them before training."
        )
    if not isinstance(train_dataset, Dataset):
        raise ValueError(
            f"The offline stage needs a map-style Dataset; got {type(train_dataset).__name__} without a {column!r} "
            "column. Precompute the column with `trl_basis.estimate_reference_rewards` on a map-style dataset."
        )
    _check_size(train_dataset, args, after="loading")
    return train_dataset


def needs_reference_rewards(args: BASISConfig) -> bool:
    """Whether the chosen estimator reads the reference-reward column (then the offline stage may run)."""
    return args.reference_rewards_column in get_estimator(args.advantage_estimator).columns(args)


def _check_size(dataset: Any, args: BASISConfig, after: str) -> None:
    if isinstance(dataset, Dataset) and len(dataset) < args.generation_batch_size:
        raise ValueError(
            f"Only {len(dataset)} training prompts remain after {after}, fewer than one generation batch "
            f"(generation_batch_size={args.generation_batch_size}). Use more prompts, a smaller "
            "per_device_train_batch_size/steps_per_generation"
            + (", or filter_constant_prompts=False." if args.filter_constant_prompts else ".")
        )


def _filter_constant_prompts(dataset: Any, column: str) -> Any:
    """Keep prompts whose valid reference rewards are not all equal (constant ones carry no value information)."""

    def informative(example: dict[str, Any]) -> bool:
        values = [v for v in example[column] if v is not None and v == v]  # v == v drops NaN
        return len(values) > 1 and max(values) > min(values)

    filtered = dataset.filter(informative)
    if isinstance(dataset, Dataset) and len(filtered) == 0:
        raise ValueError(
            f"No prompt is left after filtering prompts whose {column!r} are all equal: the reference policy solves "
            "every prompt always or never. Use harder/easier prompts, more reference samples "
            "(num_reference_samples), or filter_constant_prompts=False."
        )
    return filtered
