"""BASISTrainer: one completion per prompt with the batchwise β-calibrated baseline (ALGORITHMS.md §1)."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from typing import Any

import torch
from accelerate.utils import broadcast_object_list
from datasets import Dataset
from tqdm.auto import tqdm
from transformers import set_seed

from .._rng import derived_seed, preserved_random_state
from ..advantages import (
    beta_grid,
    blend_with_history,
    calibrate_beta,
    prompt_key,
    reference_values,
    spo_tracker_update,
)
from ..advantages.scaling import scale_advantages
from ..advantages.values import rolling_row, usable_rows, with_batch_fallback
from ..reference_cache import (
    RANGE_TOLERANCE,
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
    # TRL computes it over groups of ONE completion, where the std is always 0: it would read 1.0 at every step.
    _dropped_metrics = ("frac_reward_zero_std",)
    _estimator_fields = (
        "basis_beta_num",
        "basis_beta_min",
        "basis_beta_max",
        "basis_history",
        "basis_history_discount",
        "basis_values",
        "basis_window",
        "basis_min_samples",
        "reference_rewards_column",
    )
    _name = "BASIS"
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
        # Per-prompt state (history counts, rolling/online rows) is keyed by the prompt itself; online values
        # need no reference column at all.
        self._estimator_columns = {
            "reference": (column,),
            "history": (column, "prompt"),
            "rolling": (column, "prompt"),
            "online": ("prompt",),
        }[args.basis_values]
        if (
            args.basis_values != "online"
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

        self._betas = beta_grid(args.basis_beta_num, args.basis_beta_min, args.basis_beta_max)
        self._values: dict[tuple[float, ...], torch.Tensor] = {}  # reference-reward row -> (G,) values
        self._estimator_state = {"beta": []}
        if args.basis_history:
            self._estimator_state["history"] = {}  # prompt key -> [α, β]: discounted past successes, failures
        if args.basis_values in ("rolling", "online"):
            self._estimator_state["rows"] = {}  # prompt key -> its last basis_window rewards (ALGORITHMS.md §1f)

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
        if self.args.basis_values == "online":  # online values start empty: there is no offline stage
            return self.train_dataset
        if column not in (self.train_dataset.column_names or []):
            dataset = self._attach_reference_rewards(self.train_dataset)
            if self.args.filter_constant_prompts:
                dataset = _filter_constant_prompts(dataset, column)
            _check_size(dataset, self.args, after="filtering prompts with constant reference rewards")
            self.train_dataset = dataset
        return self.train_dataset

    # ------------------------------------------------------------------ online: the advantage
    def _compute_advantages(self, rewards, batch):
        self._check_reward_range(rewards, batch.rewards_per_func)
        betas = self._betas.to(rewards.device)
        rows, keys = self._value_rows(batch)
        usable = usable_rows(rows, self.args.basis_min_samples)
        # A row with too few rewards has no value: empty, it is outside S (NaN values).
        table = self._value_table([row if ok else [] for row, ok in zip(rows, usable, strict=True)])
        table = table.to(rewards.device)
        result = calibrate_beta(
            rewards,
            table,
            betas,
            epsilon=self.args.basis_epsilon,
            fallback=self.args.basis_fallback,
            exact=self.args.basis_exact,
        )
        valid = ~torch.isnan(rewards)
        if bool(torch.isnan(result.baseline[valid]).any()):
            # A NaN here would become a zero advantage downstream, i.e. silently no learning.
            raise ValueError(
                f"BASIS computed a NaN baseline (basis_epsilon={self.args.basis_epsilon}): values within "
                "basis_epsilon of 0 or 1 overflow the refined estimator's weights. Raise basis_epsilon (default 1e-3)."
            )
        baseline, history_metrics = result.baseline, {}
        num_fallback = int(result.num_fallback)
        if keys is not None:  # rolling/online: scored rows without a usable value take the leave-one-out batch mean
            baseline = with_batch_fallback(baseline, rewards, torch.tensor(usable))
            num_fallback -= sum(v and not ok for ok, v in zip(usable, valid.tolist(), strict=True))
            self._record_rows(keys, rows, rewards)
            history_metrics["basis/usable_fraction"] = sum(usable) / max(len(usable), 1)
        if self.args.basis_history:
            baseline, history_metrics = self._with_history(rewards, baseline, batch)
        advantages = scale_advantages(rewards.double() - baseline, self.args.advantage_scaling)

        index = int(torch.as_tensor(result.index).double().mean().round().item())  # per-row in exact mode
        beta = float(torch.as_tensor(result.beta).double().mean().item())
        num_valid = int(valid.sum().item())
        self._estimator_state["beta"].append(beta)
        metrics = {
            "basis/beta": beta,
            "basis/criterion": result.criterion[index].item(),
            "basis/initial_criterion": result.initial_criterion[index].item(),
            "basis/active_fraction": int(result.num_active) / max(num_valid, 1),
            "basis/baseline_mean": baseline[valid].double().mean().item() if num_valid else 0.0,
            "basis/fallback_count": num_fallback,
            **history_metrics,
        }
        return advantages, metrics

    def _with_history(self, rewards, baseline, batch) -> tuple[torch.Tensor, dict[str, float]]:
        """ALGORITHMS.md §1e: blend each row's baseline with its prompt's past rewards, then record this batch's."""
        history = self._estimator_state["history"]
        keys = [prompt_key(p) for p in batch.columns["prompt"]]
        counts = torch.tensor([history.get(k, (0.0, 0.0)) for k in keys], dtype=torch.float64).reshape(-1, 2)
        if self.args.basis_history_weight is not None:
            weight = torch.full((len(keys),), float(self.args.basis_history_weight), dtype=torch.float64)
        else:
            refs = batch.columns[self.args.reference_rewards_column]
            weight = torch.tensor([float(len(row)) for row in refs], dtype=torch.float64)
        device = baseline.device
        blended = blend_with_history(baseline, counts[:, 0].to(device), counts[:, 1].to(device), weight.to(device))
        # Record after reading the whole batch, so no row's baseline sees this batch's rewards.
        for key, reward in zip(keys, rewards.tolist(), strict=True):
            alpha, beta = history.get(key, (0.0, 0.0))
            history[key] = list(spo_tracker_update(alpha, beta, reward, self.args.basis_history_discount))
        seen = counts.sum(dim=1) > 0
        share = (counts.sum(dim=1) / (weight + counts.sum(dim=1)))[seen]
        return blended, {
            "basis/history_fraction": seen.double().mean().item(),
            "basis/history_share": share.mean().item() if share.numel() else 0.0,
        }

    def _value_rows(self, batch) -> tuple[list[list[float]], list[str] | None]:
        """The rows of rewards whose values v_x(β) the batch uses, and the prompt keys of rolling/online state.

        `reference`/`history`: the frozen reference column. `rolling`: the prompt's window, started from its
        reference row; `online`: the window, started empty (ALGORITHMS.md §1f). Every row reads the state before
        this batch's rewards are recorded (`_record_rows`), so no row holds its own current reward.
        """
        if self.args.basis_values not in ("rolling", "online"):
            return batch.columns[self.args.reference_rewards_column], None
        state = self._estimator_state["rows"]
        keys = [prompt_key(p) for p in batch.columns["prompt"]]
        if self.args.basis_values == "online":
            return [list(state.get(k, [])) for k in keys], keys
        refs = batch.columns[self.args.reference_rewards_column]
        window = self.args.basis_window
        start = [[math.nan if v is None else float(v) for v in row][-window:] for row in refs]
        return [list(state[k]) if k in state else row for k, row in zip(keys, start, strict=True)], keys

    def _record_rows(self, keys: list[str], rows: list[list[float]], rewards: torch.Tensor) -> None:
        """After the whole batch's baselines: each reward joins its prompt's window (`rolling_row`)."""
        state = self._estimator_state["rows"]
        for key, row, reward in zip(keys, rows, rewards.tolist(), strict=True):
            # A prompt twice in one batch: the second reward joins the row the first one left.
            state[key] = rolling_row(state.get(key, row), reward, self.args.basis_window)

    def _value_table(self, reference_rewards: list[list[float]]) -> torch.Tensor:
        """`(B, G)` values v_x(β) of the batch's prompts, memoised per distinct reference-reward row.

        v_x(β) depends on the prompt only through the multiset of its N reference rewards, and binary rewards give
        at most N + 1 distinct multisets, so after the first steps this is a lookup instead of a (B, N, G)
        logsumexp (the overhead benchmark measured that logsumexp at about half of BASIS's per-step cost).
        """
        # None is a missing sample, like NaN; rows of different lengths are padded with missing samples.
        width = max(1, max(len(row) for row in reference_rewards))  # an empty row has no value (NaN)
        keys = [
            tuple(sorted(math.nan if v is None else float(v) for v in row)) + (math.nan,) * (width - len(row))
            for row in reference_rewards
        ]
        missing = [k for k in dict.fromkeys(keys) if k not in self._values]
        fresh: dict[tuple[float, ...], torch.Tensor] = {}
        if missing:
            rows = reference_values(torch.tensor(missing, dtype=torch.float64), self._betas)
            fresh = dict(zip(missing, rows))
            if len(self._values) < 100_000:  # bounded: real-valued rewards can make every row distinct
                # NaN never compares equal, so rows holding NaN would never be found again: skip them.
                self._values.update((k, row) for k, row in fresh.items() if all(v == v for v in k))
        return torch.stack([fresh[k] if k in fresh else self._values[k] for k in keys])

    def _check_reward_range(self, rewards: torch.Tensor, rewards_per_func: torch.Tensor) -> None:
        valid = rewards[~torch.isnan(rewards)]
        if valid.numel() and (valid.min() < -RANGE_TOLERANCE or valid.max() > 1 + RANGE_TOLERANCE):
            raise ValueError(
                f"BASIS needs the weighted reward in [0, 1], got values in [{valid.min().item():.4g}, "
                f"{valid.max().item():.4g}]: {self.describe_reward_ranges(rewards_per_func)}. Rescale the reward "
                "function(s) or set reward_weights so that the weighted sum stays in [0, 1] (for example weights "
                "that sum to 1 over rewards in [0, 1])."
            )
        rewards.clamp_(0.0, 1.0)  # only round-off remains outside

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
        """`(P, N)` rewards of N completions per prompt; process r samples a contiguous block of each chunk.

        Prompts in `done` (the saved chunks of an interrupted stage) are not sampled again, and `save_chunk(indices,
        rows)` receives each completed chunk, so a stage stopped at 90% restarts at 90%. Each process's generation
        in a chunk is seeded by (`seed`, its first prompt, its rank): a resumed stage samples what an uninterrupted
        one would have. Every random stream training uses is restored afterwards, so whether this ran (a cold
        cache) or not (a warm one) does not change the training that follows.
        """
        n, chunk = self.args.num_reference_samples, self.args.reference_batch_size
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        rows = dict(done or {})
        todo = [i for i in range(len(dataset)) if i not in rows]
        with (
            tqdm(  # a context manager: an interrupted stage closes its bar instead of redrawing it at exit
                total=len(dataset),
                initial=len(rows),
                desc=f"BASIS reference rewards ({n} samples/prompt)",
                disable=not self.accelerator.is_local_main_process,
            ) as progress,
            preserved_random_state(),
        ):
            for start in range(0, len(todo), world * chunk):
                block = todo[start : start + world * chunk]
                # Every process generates `chunk` prompts (padding with the block's last) so collectives stay in step.
                mine = [block[min(rank * chunk + j, len(block) - 1)] for j in range(chunk)]
                examples = [dataset[i] for i in mine for _ in range(n)]
                set_seed(derived_seed(self.args.seed, "reference", mine[0], rank))
                rewards_per_func = self.sample_and_score(examples)
                rewards = self.weighted_rewards(rewards_per_func)
                self._check_reward_range(rewards, rewards_per_func)
                per_prompt = rewards.view(world * chunk, n).tolist()
                # Row r * chunk + j of the gathered batch is process r's j-th prompt, block[r * chunk + j]; the rows
                # past the block's end are padding.
                fresh = {block[p]: per_prompt[p] for p in range(len(block))}
                rows.update(fresh)
                if save_chunk is not None:
                    save_chunk(block, [fresh[i] for i in block])
                progress.update(len(block))
        # Every process computed the same gathered rows; make the main process's copy authoritative.
        return broadcast_object_list([[rows[i] for i in range(len(dataset))]])[0]


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
    if args.basis_values != "reference" and "prompt" not in columns:
        raise ValueError(
            f"basis_values={args.basis_values!r} keys each prompt's own rewards by its 'prompt' column, which "
            f"train_dataset lacks (columns: {columns}). Add a 'prompt' column or set basis_values='reference'."
        )
    if args.basis_values == "online":  # no reference rewards needed: the rows fill with online rewards
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
