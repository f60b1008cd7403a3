"""The one place where trl_basis touches TRL's `GRPOTrainer` internals.

`GRPOTrainer._generate_and_score_completions` samples, scores and computes GRPO's group advantages in one long
method. Instead of copying it, both trainers of this package hook into it at two narrow points:

1. `_calculate_rewards` returns the rewards of the WHOLE generation batch (all processes, all `steps_per_generation`
   micro-batches), gathered by TRL. We keep that tensor, together with the dataset columns the estimator needs
   (gathered in the same row order), and the number of local rows.
2. After `_generate_and_score_completions` returns, we replace `output["advantages"]` (this process's slice) with
   our own estimator evaluated on the global batch, and fix the advantages TRL keeps for its completions table.

Everything else (generation, vLLM, DeepSpeed, PEFT, every loss type, KL, logging backends) is TRL's, unchanged.
The advantages come from the estimator named by `args.advantage_estimator` in the registry
(`trl_basis.advantages.registry`: `fn(rewards, batch, state, args) -> (advantages, metrics)`); a subclass may
also override `_compute_advantages(rewards, batch)`. If a TRL release renames these methods, this file is the only one
to update.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from collections import defaultdict
from typing import Any

import torch
from accelerate.utils import broadcast_object_list, gather_object
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from trl import GRPOTrainer

from .._io import write_json_atomically
from ..advantages.registry import Estimator, EstimatorBatch, get_estimator
from ..model_card import write_model_card
from ..reference_cache import RANGE_TOLERANCE

ESTIMATOR_STATE_FILE = "trl_basis_state.json"
#: Names in checkpoints written before the renames of issue 21 -> today's (BASIS's temperature history and grid).
_RENAMED_STATE = {
    "beta": "temperature",
    "basis_beta_num": "basis_temperature_num",
    "basis_beta_min": "basis_temperature_min",
    "basis_beta_max": "basis_temperature_max",
}

#: The TRL releases this bridge is tested with (setup.cfg pins the same range).
SUPPORTED_TRL = ">=1.16,<1.17"
#: The private GRPOTrainer methods the bridge overrides or calls, with the parameters it relies on.
_HOOKS = {
    "_calculate_rewards": ("inputs", "prompts", "completions", "completion_ids_list"),
    "_generate_and_score_completions": ("inputs",),
    "_save_checkpoint": ("model", "trial"),
    "_load_optimizer_and_scheduler": ("checkpoint",),
}


def check_trl_hooks(trainer_cls: type = GRPOTrainer) -> None:
    """Fail at import, with the TRL range that works, when a TRL release renamed or re-signed a hook point."""
    import inspect

    import trl

    for name, params in _HOOKS.items():
        method = getattr(trainer_cls, name, None)
        found = tuple(inspect.signature(method).parameters)[1:] if callable(method) else None
        if found != params:
            raise ImportError(
                f"trl_basis needs trl{SUPPORTED_TRL}: GRPOTrainer.{name} "
                + ("is missing" if found is None else f"takes {found}, not {params}")
                + f" in the installed trl {trl.__version__}. Install a supported release: pip install 'trl{SUPPORTED_TRL}'."
            )


check_trl_hooks()


class AdvantageEstimatorTrainer(GRPOTrainer):
    """`GRPOTrainer` whose advantages come from a registered estimator evaluated on the global generation batch.

    `args.advantage_estimator` names the estimator (`trl_basis.advantages.ESTIMATORS`); the columns it asks for are
    gathered alongside the rewards, and its state dict (`self._estimator_state`, JSON-serialisable) is written next to each checkpoint and restored on resume. Subclasses set `_group` (whether
    the estimator samples groups) and may override `_compute_advantages`.
    """

    #: Whether this trainer samples groups of completions per prompt (True) or one per prompt (False).
    _group: bool | None = None
    #: Dataset columns gathered with the rewards (set from the estimator; a subclass overriding
    #: `_compute_advantages` may set its own).
    _estimator_columns: tuple[str, ...] = ()
    #: The `multi_objective_aggregation` values the estimator supports (see `aggregate_rewards`).
    _aggregations: tuple[str, ...] = ("sum_then_normalize",)
    #: Config fields the estimator's checkpointed state depends on: a resume with other values is refused.
    _estimator_fields: tuple[str, ...] = ()
    #: TRL metrics that mean nothing for this estimator; dropped from the logs (e.g. per-group stats at one
    #: completion per prompt).
    _dropped_metrics: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        self._gathered: EstimatorBatch | None = None
        self._estimator_state: dict[str, Any] = {}
        config = kwargs.get("args")
        name = getattr(config, "advantage_estimator", None)
        self._estimator: Estimator | None = None if name is None else get_estimator(name, group=self._group)
        if self._estimator is not None:
            self._estimator_columns = self._estimator.columns(config)
        if config is not None and (config.use_cpu or not torch.cuda.is_available()):
            from .._threads import choose_num_threads

            choose_num_threads()  # torch's default (one thread per core) crawls when other processes share the cores
        super().__init__(*args, **kwargs)
        if self.multi_objective_aggregation not in self._aggregations:
            raise ValueError(
                f"{type(self).__name__} supports multi_objective_aggregation in {self._aggregations}; got "
                f"{self.multi_objective_aggregation!r}."
            )

    # ------------------------------------------------------------------ hooks into GRPOTrainer
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        # TRL gathers the rewards across processes; gather our columns the same way so rows line up.
        columns = {name: gather_object([example.get(name) for example in inputs]) for name in self._estimator_columns}
        self._gathered = EstimatorBatch(
            rewards_per_func,
            columns,
            group_size=self.num_generations,
            step=self.state.global_step,
            max_steps=self.state.max_steps,
            num_local=len(prompts),
        )
        return rewards_per_func

    def _generate_and_score_completions(self, inputs):
        # Read the mode BEFORE TRL generates: its paged (continuous batching) path calls `model.train()` after
        # generating, so a scoring pass in evaluation mode (the offline stage) would read as a training batch after.
        training = self.model.training
        output = super()._generate_and_score_completions(inputs)
        mode = "train" if training else "eval"
        for name in self._dropped_metrics:  # TRL just appended one value of each
            values = self._metrics[mode].get(name)
            if values:
                values.pop()
            if name in self._metrics[mode] and not self._metrics[mode][name]:
                del self._metrics[mode][name]
        if not training:  # evaluation keeps TRL's advantages: they only feed the eval loss
            return output
        batch, self._gathered = self._gathered, None
        self._check_finite(batch.rewards_per_func)
        rewards = self.aggregate_rewards(batch.rewards_per_func)
        advantages, metrics = self._compute_advantages(rewards, batch)
        # Rows whose reward functions all returned None carry no signal (as in TRL): advantage 0, never NaN.
        advantages = torch.nan_to_num(advantages.to(torch.float32), nan=0.0)

        start = self.accelerator.process_index * batch.num_local
        local = advantages[start : start + batch.num_local]
        output["advantages"] = local.to(device=output["advantages"].device, dtype=output["advantages"].dtype)

        # TRL appended its own advantages for the completions table; overwrite them with ours.
        logged = self._logs["advantages"]
        for _ in range(min(len(advantages), len(logged))):
            logged.pop()
        logged.extend(advantages.tolist())

        for name, value in metrics.items():
            self._metrics["train"][name].append(float(value))
        return output

    def _compute_advantages(
        self, rewards: torch.Tensor, batch: EstimatorBatch
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Advantages `(B_global,)` for the weighted rewards `(B_global,)` (NaN = unscorable) of the global batch:
        the registered estimator's, after checking that its rewards lie in [0, 1] when it needs that. Returns the
        advantages (NaN rows are zeroed by the caller) and the metrics to log under `self._metrics["train"]`."""
        if self._estimator is None:
            raise NotImplementedError(
                f"{type(self).__name__} has no estimator: give its config an `advantage_estimator` (a name of "
                "trl_basis.advantages.ESTIMATORS) or override `_compute_advantages`."
            )
        if self._estimator.unit_rewards:
            self._check_unit_rewards(rewards, batch.rewards_per_func)
        return self._estimator.fn(rewards, batch, self._estimator_state, self.args)

    def _check_unit_rewards(self, rewards: torch.Tensor, rewards_per_func: torch.Tensor) -> None:
        """The estimator reads rewards as success probabilities: name each function's range when one is outside."""
        valid = rewards[~torch.isnan(rewards)]
        if valid.numel() and (valid.min() < -RANGE_TOLERANCE or valid.max() > 1 + RANGE_TOLERANCE):
            name = self.args.advantage_estimator
            raise ValueError(
                f"{'BASIS' if name == 'basis' else repr(name)} needs the weighted reward in [0, 1], got values in "
                f"[{valid.min().item():.4g}, {valid.max().item():.4g}]: {self.describe_reward_ranges(rewards_per_func)}."
                " Rescale the reward function(s) or set reward_weights so that the weighted sum stays in [0, 1] (for "
                "example weights that sum to 1 over rewards in [0, 1])."
            )
        rewards.clamp_(0.0, 1.0)  # only round-off remains outside

    # ------------------------------------------------------------------ helpers shared by both trainers
    def aggregate_rewards(self, rewards_per_func: torch.Tensor) -> torch.Tensor:
        """The scalar reward the estimator sees: TRL's weighted sum (`sum_then_normalize`: the estimator does the
        normalising). Trainers that support `normalize_then_sum` override this."""
        return self.weighted_rewards(rewards_per_func)

    def weighted_rewards(self, rewards_per_func: torch.Tensor) -> torch.Tensor:
        """TRL's scalar reward of this trainer's reward functions (`weighted_sum` with its `reward_weights`)."""
        return weighted_sum(rewards_per_func, self.reward_weights)

    def _check_finite(self, rewards_per_func: torch.Tensor) -> None:
        """NaN means "no reward" (None); an infinite reward is a bug in a reward function: name it."""
        bad = torch.isinf(rewards_per_func).any(dim=0)
        if bool(bad.any()):
            names = [name for name, b in zip(self.reward_func_names, bad.tolist(), strict=True) if b]
            raise ValueError(
                f"reward function(s) {names} returned an infinite reward; return a finite number, or None for a "
                f"completion that cannot be scored. {self.describe_reward_ranges(rewards_per_func)}."
            )

    def clear_pending_metrics(self) -> None:
        """Forget the metrics TRL collected so far (e.g. by generation outside training), before they are logged."""
        for mode in ("train", "eval"):
            self._metrics[mode].clear()
        self._pending_metrics.clear()
        self._pending_extra_logs.clear()

    def describe_reward_ranges(self, rewards_per_func: torch.Tensor) -> str:
        """One line per reward function: its name, weight and the range it returned (for error messages)."""
        parts = []
        for i, name in enumerate(self.reward_func_names):
            col = rewards_per_func[:, i]
            col = col[~torch.isnan(col)]
            seen = f"[{col.min().item():.4g}, {col.max().item():.4g}]" if col.numel() else "no value"
            parts.append(f"{name} (weight {self.reward_weights[i].item():.4g}) returned {seen}")
        return "; ".join(parts)

    # ------------------------------------------------------------------ model card
    #: Named on the card that every save writes (`trl_basis.model_card`): the dataset, and the held-out results
    #: (`trl_basis.model_card.held_out_results`); `trl-basis train` sets both.
    model_card_dataset: str | None = None
    model_card_results: dict[str, Any] | None = None

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        super().save_model(output_dir, _internal_call)
        # After the weights: a LoRA save has just written PEFT's generic card, which this one replaces.
        write_model_card(self, output_dir or self.args.output_dir)

    def create_model_card(self, model_name=None, dataset_name=None, tags=None):
        """TRL's hook (checkpoints, `push_to_hub`): the same card as `save_model`'s, in `args.output_dir`."""
        write_model_card(self, self.args.output_dir, dataset_name=dataset_name, model_name=model_name, tags=tags)

    # ------------------------------------------------------------------ checkpoint state
    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        # Always, even for a stateless estimator: the file also records the estimator and its settings, which a
        # resume checks.
        if self.args.should_save:
            folder = os.path.join(
                self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            )
            # Atomic: an interrupted save never leaves a truncated state file.
            state = {**self._estimator_state, "config": self._estimator_config()}
            write_json_atomically(os.path.join(folder, ESTIMATOR_STATE_FILE), state)

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None:
            return
        path = os.path.join(checkpoint, ESTIMATOR_STATE_FILE)
        # Read on the main process only and broadcast: on several nodes each rank would read its own file system
        # (a file missing or older on one node), and a rank restoring other state than rank 0 trains on other
        # advantages. Every rank then warns, refuses or restores the same thing.
        loaded: list[Any] = [None, None]
        if self.accelerator.is_main_process:
            loaded = list(_read_state(path))
        state, problem = broadcast_object_list(loaded)
        if problem is not None:
            warnings.warn(
                f"{path} could not be read ({problem}); the estimator's state (its temperature/K history, basis_history"
                " counts and rolling/online value rows) restarts empty. The model, optimizer and schedule were restored.",
                UserWarning,
                stacklevel=2,
            )
            return
        for old, new in _RENAMED_STATE.items():  # checkpoints written before the renames of issue 21
            if old in state and new not in state:
                state[new] = state.pop(old)
        saved = state.pop("config", None)
        if isinstance(saved, dict):
            saved = {_RENAMED_STATE.get(k, k): v for k, v in saved.items()}
        if isinstance(saved, dict):
            now = self._estimator_config()
            changed = {k: (saved[k], now[k]) for k in now if k in saved and saved[k] != now[k]}
            if changed:
                described = ", ".join(
                    f"{k}={old!r} in the checkpoint but {new!r} now" for k, (old, new) in changed.items()
                )
                raise ValueError(
                    f"Cannot resume from {checkpoint}: {described}. Resume with the checkpoint's settings, or start "
                    "a new run in another output_dir."
                )
        self._estimator_state.update(state)

    def _estimator_config(self) -> dict[str, Any]:
        return {name: getattr(self.args, name) for name in self._estimator_fields}


def weighted_sum(rewards_per_func: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """TRL's scalar reward: the weighted sum of the reward functions, in the rewards' own dtype, NaN where every
    function returned None. A training step and a scoring pass (`trl_basis.evaluation`) both weigh with it."""
    rewards = (rewards_per_func * weights.to(rewards_per_func).unsqueeze(0)).nansum(dim=1)
    rewards[torch.isnan(rewards_per_func).all(dim=1)] = torch.nan
    return rewards


def sample_and_score(
    trainer: GRPOTrainer,
    examples: list[dict[str, Any]],
    reward_funcs: list | None = None,
    reward_weights: list[float] | None = None,
    group_size: int = 1,
    batch_out: list[dict[str, torch.Tensor]] | None = None,
) -> torch.Tensor:
    """Generate one completion per example through TRL's FULL per-batch path and return the GLOBAL rewards.

    The one generate-and-score path of the library: BASIS's offline stage, the held-out evaluation and the benchmarks
    all sample through it. It runs `GRPOTrainer._generate_and_score_completions` in evaluation mode, exactly as
    training does per batch: environments, tool tables, `rollout_func`, multimodal prompts, chat templates with
    `chat_template_kwargs`, the training sampler (temperature, top_p, top_k, min_p, repetition_penalty,
    generation_kwargs), HF generate / paged generation / vLLM, and DeepSpeed/FSDP unwrapping. Works on any
    `GRPOTrainer`. `reward_funcs`/`reward_weights` (callables) replace the trainer's own for this pass only (e.g.
    an accuracy reward for evaluation). `examples` come in runs of `group_size` copies of one prompt: TRL's
    evaluation mode groups rows by `num_generations_eval` (vLLM keeps one prompt per group and samples the group
    from it), so when that does not divide `group_size`, the pass groups by `group_size` instead. Every process
    must call it in lockstep with the same number of examples. Returns `(num_processes * len(examples),
    num_reward_funcs)`, NaN where a function returned None. The pass leaves no trace, also when it fails: the
    trainer's metrics, completion logs, reward functions and grouping are restored and its gathered batch dropped.
    `batch_out`, when given, receives this process's token ids and masks (`prompt_ids`, `prompt_mask`,
    `completion_ids`, `completion_mask`, TRL's left-padded layout), for a caller that needs a differentiable
    forward of the sampled completions (the gradient-variance benchmark).
    """
    captured: list[torch.Tensor] = []
    hook = type(trainer)._calculate_rewards

    def capture(inputs, prompts, completions, completion_ids_list):
        rewards = hook(trainer, inputs, prompts, completions, completion_ids_list)
        captured.append(rewards)
        return rewards

    kept = {name: getattr(trainer, name) for name in _PASS_STATE}
    was_training = trainer.model.training
    try:
        trainer._logs = copy.deepcopy(trainer._logs)
        trainer._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
        trainer._pending_metrics, trainer._pending_extra_logs = defaultdict(list), defaultdict(list)
        if reward_funcs is not None:
            _use_reward_funcs(trainer, reward_funcs, reward_weights)
        if group_size % trainer.num_generations_eval:
            trainer.num_generations_eval = group_size
        trainer._calculate_rewards = capture  # an instance attribute: shadows the method for this pass only
        trainer.model.eval()  # evaluation mode: TRL keeps its own advantages, no estimator state is touched
        with torch.no_grad():
            output = trainer._generate_and_score_completions(examples)
        if batch_out is not None:
            batch_out.append(
                {key: output[key] for key in ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask")}
            )
    finally:
        trainer.__dict__.pop("_calculate_rewards", None)
        trainer.model.train(was_training)
        for name, value in kept.items():
            setattr(trainer, name, value)
        if hasattr(trainer, "_gathered"):
            trainer._gathered = None
    return captured[-1]


#: What a scoring pass may change on the trainer, restored afterwards.
_PASS_STATE = (
    "_logs",
    "_metrics",
    "_pending_metrics",
    "_pending_extra_logs",
    "reward_funcs",
    "reward_weights",
    "reward_func_names",
    "reward_processing_classes",
    "num_generations_eval",
)


def _use_reward_funcs(trainer: GRPOTrainer, reward_funcs: list, reward_weights: list[float] | None) -> None:
    """Plain reward functions (TRL's signature) in place of the trainer's, weighted like TRL weights its own."""
    if any(isinstance(func, torch.nn.Module) or not callable(func) for func in reward_funcs):
        raise ValueError(
            "reward_funcs for scoring must be plain functions; reward models score through the trainer's own."
        )
    weights = [1.0] * len(reward_funcs) if reward_weights is None else list(reward_weights)
    if len(weights) != len(reward_funcs):
        raise ValueError(f"reward_weights has {len(weights)} entries for {len(reward_funcs)} reward functions.")
    trainer.reward_funcs = list(reward_funcs)
    trainer.reward_func_names = [getattr(f, "__name__", type(f).__name__) for f in reward_funcs]
    trainer.reward_processing_classes = [None] * len(reward_funcs)
    trainer.reward_weights = torch.tensor(weights, dtype=torch.float32)


def _read_state(path: str) -> tuple[dict[str, Any] | None, str | None]:
    """The estimator state saved at `path`, or None and why it could not be read."""
    try:
        with open(path) as f:
            state = json.load(f)
        if not isinstance(state, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as err:  # json.JSONDecodeError is a ValueError
        return None, f"{type(err).__name__}: {err}"
    return state, None
