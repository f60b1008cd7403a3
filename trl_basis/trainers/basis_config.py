"""Configuration of `BASISTrainer`."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

from trl import GRPOConfig

from ..advantages.basis import BASIS_FALLBACKS
from ..advantages.registry import get_estimator
from ..advantages.values import BASIS_VALUES
from ..evaluation import prompts_per_generation_call
from ._checks import cache_dir_or_none, one_of, warn_if_small_batch

#: The `scale_rewards` modes that need no group (BASIS samples one completion per prompt), default first.
BASIS_SCALE_REWARDS = ("batch", "none")


@dataclass
class BASISConfig(GRPOConfig):
    r"""
    Configuration class for [`BASISTrainer`]: BASIS (Batchwise Advantage estimation from Single-rollout Information
    Sharing, [arXiv 2605.27293](https://arxiv.org/abs/2605.27293)).

    BASIS samples ONE completion per prompt. The baseline of each prompt is a weighted average of the OTHER prompts'
    rewards in the global generation batch, with weights from offline reference values `v_x(β)`, and one temperature
    `β` recalibrated every step (see `docs/ALGORITHMS.md`, §1; the config calls it the *temperature*, to keep
    `beta` for TRL's KL coefficient). `num_generations` is therefore fixed to 1; every other parameter of
    [`GRPOConfig`] keeps its meaning (loss types, KL `beta`, vLLM, PEFT, logging); `scale_rewards` keeps its values
    with another default (below). `advantage_estimator` can name any other one-completion estimator of the registry
    (`trl_basis.advantages.ESTIMATORS`), which makes this trainer a harness for BASIS's single-rollout peers.

    Parameters that differ from [`GRPOConfig`]:
        num_generations (`int`, *optional*, defaults to `1`):
            Fixed to 1: one completion per prompt (GRPOConfig's default is 8). Any other value is rejected.
        num_generations_eval (`int` or `None`, *optional*, defaults to `1`):
            Completions per prompt in evaluation, one like training.
        scale_rewards (`str`, *optional*, defaults to `"batch"`):
            TRL's option, applied to the ADVANTAGES `r_i − b_i` (GRPO applies it to `r_i − mean`): `"batch"` divides
            them by their standard deviation over the global batch (not re-centred: BASIS's baseline replaces the
            batch mean); `"none"` keeps `A_i = r_i − b_i`. `"group"` does not exist at one completion per prompt.

    Parameters:
        advantage_estimator (`str`, *optional*, defaults to `"basis"`):
            A one-completion estimator of the registry (`trl_basis.advantages.ESTIMATORS`): `"basis"` (the paper's),
            `"reinforce_pp"` (REINFORCE++'s batch baseline, no offline stage), `"spo"` (SPO's per-prompt tracker,
            started from the reference rewards), or one registered with `register_estimator(..., group=False)`.
        num_reference_samples (`int`, *optional*, defaults to `8`):
            Number `N` of completions sampled per training prompt from the reference (initial) policy in the offline
            stage. `0` means "never sample": the dataset must then hold `reference_rewards_column`.
        reference_rewards_column (`str`, *optional*, defaults to `"reference_rewards"`):
            Dataset column holding each prompt's `N` reference rewards (a list of floats in `[0, 1]`). When it is
            missing, the trainer runs the offline stage and adds it.
        reference_cache_dir (`str` or `None`, *optional*, defaults to `"~/.cache/trl_basis/reference_rewards"`):
            Where the offline stage caches its results, keyed by model, data, reward functions and sampling settings,
            so that a restart or a second run does not sample again. `None`, `""`, `"null"` or `"none"` disable the
            cache. The environment variable `TRL_BASIS_CACHE` overrides the default.
        reference_batch_size (`int` or `None`, *optional*, defaults to `None`):
            Prompts per process per generation call in the offline stage (each is sampled `N` times). `None` derives
            it from the training batch: `per_device_train_batch_size × steps_per_generation // N` (at least 1), so
            that an offline generation call holds no more sequences than the training's own generation call and the
            offline stage's peak memory stays below a training step's (it also needs no gradients and no optimizer
            state; `benchmarks/real_size.py` measures both). A larger value is faster on a GPU with memory to spare.
        basis_temperature_num (`int`, *optional*, defaults to `230`):
            Number `G` of temperatures `β` in the calibration grid (ALGORITHMS.md's `β`; TRL's `beta` is the KL
            coefficient).
        basis_temperature_min (`float`, *optional*, defaults to `0.01`):
            Smallest temperature of the (log-spaced) grid.
        basis_temperature_max (`float`, *optional*, defaults to `5.0`):
            Largest temperature of the grid.
        basis_epsilon (`float`, *optional*, defaults to `1e-3`):
            A prompt is active (enters the other prompts' baselines) when its value satisfies
            `ε ≤ v(β) ≤ 1 − ε`.
        basis_fallback (`str` or `None`, *optional*, defaults to `None`):
            Baseline of a prompt outside the active set or with no other active prompt: `"zero"` (the paper's
            choice) or `"initial"` (its value `v(β)`). `None` picks `"zero"` for `basis_values="reference"` and
            `"history"` (the paper's), `"initial"` for `"rolling"` and `"online"`, whose rows can become constant as
            the policy learns (a prompt it always solves then gets baseline 1, not 0).
        basis_exact (`bool`, *optional*, defaults to `False`):
            Calibrate `β` separately for every prompt without that prompt's reward (O(G·B²)), which makes the
            gradient exactly unbiased. Off by default: the default calibration leaks `r_i` into `β` at O(1/B).
        filter_constant_prompts (`bool`, *optional*, defaults to `True`):
            Drop training prompts whose `N` reference rewards are all equal (all right or all wrong): they carry no
            usable information for the value estimate.
        basis_values (`str`, *optional*, defaults to `"reference"`):
            Where each prompt's value curve `v_x(β)` comes from (ALGORITHMS.md §1, §1e, §1f). `"reference"`: the
            paper's, its `N` offline reference rewards, frozen. `"history"`: the same, and the baseline is then
            blended with the prompt's own discounted past rewards (same as `basis_history=True`). `"rolling"`: a
            window of the prompt's last `basis_window` rewards, started from its reference rewards (the last
            `basis_window` of them); each online
            reward joins it after the whole batch's baselines are computed. `"online"`: the same window started
            empty, with NO offline stage; a prompt with fewer than `basis_min_samples` rewards gets the
            leave-one-out batch mean as its baseline. Rolling and online rows are saved with checkpoints.
        basis_window (`int` or `None`, *optional*, defaults to `None`):
            Rewards kept per prompt by `basis_values="rolling"` or `"online"`. `None`: `num_reference_samples`
            (8 when that is 0).
        basis_min_samples (`int`, *optional*, defaults to `2`):
            With `basis_values="online"` (or a rolling row with missing samples): a prompt needs at least this many
            rewards in its row to have a value; below it, the leave-one-out mean of the batch's other rewards is its
            baseline and it enters no other prompt's baseline.
        basis_history (`bool`, *optional*, defaults to `False`):
            Beyond the paper (ALGORITHMS.md §1e): when a prompt is revisited, refine its batch-shared baseline with
            its own past rewards, `b_i^h = (w·b_i + s_i) / (w + s_i + f_i)`, where `s_i`, `f_i` are discounted counts
            of its past successes and failures (SPO's tracker, from zero; ALGORITHMS.md's `α_i`, `β_i`). The counts are saved with checkpoints.
            Same as `basis_values="history"` (kept for existing configs).
        basis_history_discount (`float`, *optional*, defaults to `0.9`):
            Forgetting factor ρ in (0, 1] of those counts: each new observation multiplies the old ones by ρ
            (ρ = 1 never forgets).
        basis_history_weight (`float` or `None`, *optional*, defaults to `None`):
            How many observations the batch baseline `b_i` is worth (`w`). `None`: the prompt's number of
            reference samples N.
        spo_discount (`float`, *optional*, defaults to `0.9`):
            With `advantage_estimator="spo"`: the forgetting factor ρ in (0, 1] of SPO's per-prompt tracker (constant;
            the SPO paper adapts it to the policy's KL divergence).
    """

    num_generations: int | None = field(
        default=1,
        metadata={"help": "BASIS samples one completion per prompt; any other value is rejected."},
    )
    num_generations_eval: int | None = field(
        default=1,
        metadata={"help": "Number of completions per prompt during evaluation (defaults to 1, like training)."},
    )
    scale_rewards: str = field(
        default="batch",
        metadata={
            "help": "Applied to the advantages r - b: 'batch' divides them by their std over the global batch; "
            "'none' keeps r - b.",
            "choices": list(BASIS_SCALE_REWARDS),
        },
    )
    advantage_estimator: str = field(
        default="basis",
        metadata={
            "help": "A one-completion estimator of the registry (trl_basis.advantages.ESTIMATORS): 'basis' (the "
            "paper's), 'reinforce_pp', 'spo', or one added with register_estimator(..., group=False)."
        },
    )
    num_reference_samples: int = field(
        default=8,
        metadata={
            "help": "Number N of completions sampled per training prompt from the reference policy in the offline "
            "stage. 0 means the dataset must already hold the reference rewards column."
        },
    )
    reference_rewards_column: str = field(
        default="reference_rewards",
        metadata={"help": "Dataset column with each prompt's N reference rewards; computed offline when missing."},
    )
    reference_cache_dir: str | None = field(
        default_factory=lambda: os.environ.get(
            "TRL_BASIS_CACHE", os.path.join("~", ".cache", "trl_basis", "reference_rewards")
        ),
        metadata={
            "help": "Cache of the offline stage (keyed by model, data and settings); None, '' or 'null' disable it."
        },
    )
    reference_batch_size: int | None = field(
        default=None,
        metadata={
            "help": "Prompts per process per generation call in the offline stage. None: per_device_train_batch_size "
            "× steps_per_generation // num_reference_samples (at least 1), so that the offline stage never holds "
            "more sequences than a training generation call and its peak memory stays below a training step's."
        },
    )
    basis_temperature_num: int = field(
        default=230, metadata={"help": "Number of temperatures β in the calibration grid (not TRL's KL beta)."}
    )
    basis_temperature_min: float = field(default=0.01, metadata={"help": "Smallest temperature of the log grid."})
    basis_temperature_max: float = field(default=5.0, metadata={"help": "Largest temperature of the log grid."})
    basis_epsilon: float = field(
        default=1e-3,
        metadata={"help": "Prompts with ε ≤ v(β) ≤ 1 − ε are active and enter the other prompts' baselines."},
    )
    basis_fallback: str | None = field(
        default=None,
        metadata={
            "help": "Baseline of inactive prompts: 'zero' (the paper's choice) or 'initial' (their value v(β)). "
            "None: 'zero' for basis_values reference/history, 'initial' for rolling/online.",
            "choices": [*BASIS_FALLBACKS, None],
        },
    )
    basis_exact: bool = field(
        default=False,
        metadata={"help": "Calibrate β for each prompt without its own reward (O(G·B²), exactly unbiased)."},
    )
    filter_constant_prompts: bool = field(
        default=True,
        metadata={"help": "Drop training prompts whose reference rewards are all equal."},
    )
    basis_values: str = field(
        default="reference",
        metadata={
            "help": "Source of each prompt's values: 'reference' (the paper's frozen offline rows), 'history' "
            "(plus the prompt's own past rewards), 'rolling' (a window of its last rewards, started from the "
            "offline row), 'online' (the same window started empty: no offline stage). ALGORITHMS.md §1e-§1f.",
            "choices": list(BASIS_VALUES),
        },
    )
    basis_window: int | None = field(
        default=None,
        metadata={"help": "Rewards kept per prompt by rolling/online values; None: num_reference_samples (or 8)."},
    )
    basis_min_samples: int = field(
        default=2,
        metadata={"help": "Rewards a rolling/online row needs to have a value; below: the leave-one-out batch mean."},
    )
    basis_history: bool = field(
        default=False,
        metadata={
            "help": "Refine each baseline with the prompt's own past rewards when it is revisited: (w·b_i + α_i) / "
            "(w + α_i + β_i) with discounted success/failure counts (ALGORITHMS.md §1e; not in the paper)."
        },
    )
    basis_history_discount: float = field(
        default=0.9,
        metadata={"help": "Forgetting factor ρ in (0, 1] of the per-prompt counts (basis_history)."},
    )
    basis_history_weight: float | None = field(
        default=None,
        metadata={"help": "Observations the batch baseline is worth (w); None: the prompt's N reference samples."},
    )
    spo_discount: float = field(
        default=0.9,
        metadata={"help": "advantage_estimator='spo': forgetting factor in (0, 1] of SPO's per-prompt tracker."},
    )

    def __post_init__(self):
        if self.num_generations != 1:
            raise ValueError(
                f"BASIS samples exactly one completion per prompt; got num_generations={self.num_generations}. "
                "Leave num_generations at 1 (use MaxPOConfig or GRPOConfig for group sampling)."
            )
        num_generations_eval = self.num_generations_eval or 1
        # GRPOConfig.__post_init__ rejects num_generations < 2 because GRPO's baseline is the group mean. BASIS's
        # baseline comes from the other prompts of the batch instead, so we let GRPOConfig validate everything else
        # with a group size that divides every batch it checks, then restore 1.
        self.num_generations = self._placeholder_group_size(self.per_device_train_batch_size)
        self.num_generations_eval = self._placeholder_group_size(self.per_device_eval_batch_size)
        try:
            super().__post_init__()
        finally:
            self.num_generations = 1
            self.num_generations_eval = num_generations_eval
        self.reference_cache_dir = cache_dir_or_none(self.reference_cache_dir)
        if self.multi_objective_aggregation == "normalize_then_sum":
            raise ValueError(
                "BASIS samples one completion per prompt, so there is no group in which to normalise each reward "
                "function (normalize_then_sum); use multi_objective_aggregation='sum_then_normalize' and weight the "
                "functions with reward_weights so that the weighted sum stays in [0, 1]."
            )
        self._resolve_basis_values()
        self._check_basis_fields()
        if self.advantage_estimator == "basis":  # the pooled baseline is BASIS's own
            warn_if_small_batch(self)
        if self.basis_exact and self.generation_batch_size >= 1024:  # already global: all processes, all steps
            warnings.warn(
                f"basis_exact=True costs O(G·B²) per step: at B = {self.generation_batch_size} prompts per generation "
                "batch (all processes together) "
                f"and G = {self.basis_temperature_num} temperatures it takes seconds per step on a CPU (12 s at B = 4096); "
                "the default basis_exact=False is O(G·B) with an O(1/B) leak.",
                UserWarning,
                stacklevel=2,
            )

    def _placeholder_group_size(self, per_device_batch_size: int) -> int:
        # Each batch GRPOConfig checks is a multiple of the per-device batch size (or, with a batch of 1 per
        # device, of the number of processes times the steps per generation).
        if per_device_batch_size >= 2:
            return per_device_batch_size
        if self.generation_batch_size is not None and self.generation_batch_size >= 2:
            return self.generation_batch_size
        steps = self.steps_per_generation or self.gradient_accumulation_steps
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if steps * world >= 2:
            return steps * world
        raise ValueError(
            "BASIS needs at least 2 prompts in each generation batch (a prompt's baseline is built from the OTHER "
            "prompts). Increase per_device_train_batch_size, steps_per_generation or the number of processes."
        )

    def _resolve_basis_values(self) -> None:
        """`basis_history=True` is `basis_values="history"`; the window and the fallback default by variant."""
        if self.basis_values not in BASIS_VALUES:
            raise ValueError(f"basis_values must be {one_of(BASIS_VALUES)}; got {self.basis_values!r}.")
        if self.basis_history:
            if self.basis_values not in ("reference", "history"):
                raise ValueError(
                    f"basis_history=True means basis_values='history'; it cannot be combined with "
                    f"basis_values={self.basis_values!r}. Set one of them."
                )
            self.basis_values = "history"
        self.basis_history = self.basis_values == "history"
        if self.basis_window is None:
            self.basis_window = self.num_reference_samples or 8
        if self.basis_fallback is None:
            self.basis_fallback = "initial" if self.basis_values in ("rolling", "online") else "zero"

    def _check_basis_fields(self) -> None:
        if self.generation_batch_size < 2:
            raise ValueError(
                f"BASIS needs at least 2 prompts per generation batch; got generation_batch_size="
                f"{self.generation_batch_size}. Increase per_device_train_batch_size or steps_per_generation."
            )
        if self.num_reference_samples < 0:
            raise ValueError(f"num_reference_samples must be >= 0; got {self.num_reference_samples}.")
        if self.reference_batch_size is None:  # as many sequences per call as the training's generation call
            self.reference_batch_size = prompts_per_generation_call(self, max(self.num_reference_samples, 1))
        if self.reference_batch_size < 1:
            raise ValueError(f"reference_batch_size must be >= 1; got {self.reference_batch_size}.")
        get_estimator(self.advantage_estimator, group=False)  # the registry as it is now, not at import
        if self.basis_temperature_num < 1:
            raise ValueError(f"basis_temperature_num must be >= 1; got {self.basis_temperature_num}.")
        if not 0 < self.basis_temperature_min <= self.basis_temperature_max:
            raise ValueError(
                "Need 0 < basis_temperature_min <= basis_temperature_max; got "
                f"{self.basis_temperature_min} and {self.basis_temperature_max}."
            )
        if not 0 < self.basis_epsilon < 0.5:
            raise ValueError(f"basis_epsilon must be in (0, 0.5); got {self.basis_epsilon}.")
        if self.basis_fallback not in BASIS_FALLBACKS:
            raise ValueError(f"basis_fallback must be {one_of(BASIS_FALLBACKS)}; got {self.basis_fallback!r}.")
        if self.scale_rewards not in BASIS_SCALE_REWARDS:
            raise ValueError(
                f"scale_rewards must be {one_of(BASIS_SCALE_REWARDS)} at one completion per prompt; got "
                f"{self.scale_rewards!r} (True is TRL's spelling of 'group')."
            )
        for name in ("basis_window", "basis_min_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")
        if self.basis_values in ("rolling", "online") and self.basis_min_samples > self.basis_window:
            raise ValueError(
                f"basis_min_samples must be in [1, basis_window={self.basis_window}]; got {self.basis_min_samples}."
            )
        if not 0 < self.spo_discount <= 1:
            raise ValueError(f"spo_discount must be in (0, 1]; got {self.spo_discount}.")
        if not 0 < self.basis_history_discount <= 1:
            raise ValueError(f"basis_history_discount must be in (0, 1]; got {self.basis_history_discount}.")
        if self.basis_history_weight is not None and not self.basis_history_weight > 0:
            raise ValueError(
                f"basis_history_weight must be > 0 (or None for the number of reference samples); got "
                f"{self.basis_history_weight}."
            )
