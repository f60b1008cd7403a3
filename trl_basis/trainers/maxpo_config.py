"""Configuration of `MaxPOTrainer`."""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import GRPOConfig

from ..advantages.registry import GROUP_ESTIMATORS
from ..advantages.scaling import ADVANTAGE_SCALINGS
from ._checks import one_of, warn_if_scale_rewards_set

#: The built-in choices (the registry may hold more: `trl_basis.advantages.register_group_estimator`).
ADVANTAGE_ESTIMATORS = tuple(GROUP_ESTIMATORS)


@dataclass
class MaxPOConfig(GRPOConfig):
    r"""
    Configuration class for [`MaxPOTrainer`]: max@K / pass@K policy optimisation with the Leave-Two-Out advantage
    ("On Advantage Estimates for Max@K Policy Gradients", [arXiv 2606.06080](https://arxiv.org/abs/2606.06080)).

    Each prompt gets a group of `num_generations` completions (`B`); the objective is the expected best reward among
    `K` of them. Every parameter of [`GRPOConfig`] keeps its meaning (loss types, KL `beta`, vLLM, PEFT, logging),
    except `scale_rewards`, which MaxPO does not use (see `advantage_scaling`).

    Parameters that differ from [`GRPOConfig`]:
        num_generations (`int`, *optional*, defaults to `8`):
            The group size `B`, as in GRPO; it must exceed `max_k` (the Leave-Two-Out baseline needs `K + 1`
            completions per prompt).

    Parameters:
        max_k (`int`, *optional*, defaults to `4`):
            `K` of the max@K objective; `1 ≤ K < num_generations`. `K = 1` is the mean reward (RLOO).
        max_k_final (`int` or `None`, *optional*, defaults to `None`):
            If set, `K` is annealed linearly from `max_k` to `max_k_final` over training (rounded to an integer), as
            PKPO anneals `K` to turn a pass@K-trained policy into a pass@1 one. `None` keeps `K = max_k`.
        advantage_estimator (`str`, *optional*, defaults to `"l2o"`):
            A name of `trl_basis.advantages.GROUP_ESTIMATORS` (the registry; add your own with
            `register_group_estimator`). Built in: `"l2o"`: the Leave-Two-Out advantage (unbiased, exactly centred in every group). `"pkpo"`,
            `"pkpo_loo"`, `"pkpo_loo_minus_one"`: PKPO's estimators (no baseline, leave-one-out, leave-one-out minus
            one; unbiased, not centred). `"grpo"`: the group-mean baseline `r_i − mean(r)` (for comparisons; the
            max@K parameter is then ignored). All are multiplied by the group size `B`, so that `K = 1` gives RLOO.
        advantage_scaling (`str`, *optional*, defaults to `"none"`):
            `"none"` keeps the gradient unbiased; `"group"` divides each group's advantages by their standard
            deviation; `"batch"` divides by their standard deviation over the global batch.
    """

    num_generations: int | None = field(
        default=8,
        metadata={"help": "Group size B: completions per prompt. Must exceed max_k."},
    )
    max_k: int = field(
        default=4,
        metadata={"help": "K of the max@K / pass@K objective, 1 <= K < num_generations."},
    )
    max_k_final: int | None = field(
        default=None,
        metadata={"help": "If set, anneal K linearly from max_k to this value over training."},
    )
    advantage_estimator: str = field(
        default="l2o",
        metadata={
            "help": f"A registered group estimator: {one_of(ADVANTAGE_ESTIMATORS)}; 'l2o' is the centred Leave-Two-Out.",
            "choices": list(ADVANTAGE_ESTIMATORS),
        },
    )
    advantage_scaling: str = field(
        default="none",
        metadata={
            "help": "'none' (unbiased), 'group' (divide by the group std) or 'batch' (divide by the batch std).",
            "choices": list(ADVANTAGE_SCALINGS),
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if self.advantage_estimator not in GROUP_ESTIMATORS:
            raise ValueError(
                f"advantage_estimator must be one of {tuple(GROUP_ESTIMATORS)}; got {self.advantage_estimator!r}."
            )
        if self.advantage_scaling not in ADVANTAGE_SCALINGS:
            raise ValueError(
                f"advantage_scaling must be {one_of(ADVANTAGE_SCALINGS)}; got {self.advantage_scaling!r}."
            )
        for name in ("max_k", "max_k_final"):
            k = getattr(self, name)
            if k is not None and (isinstance(k, bool) or not isinstance(k, int)):
                raise ValueError(
                    f"{name} must be a whole number of completions (1 <= K < num_generations); got {k!r}."
                )
            if k is not None and not 1 <= k < self.num_generations:
                raise ValueError(
                    f"{name}={k} must satisfy 1 <= K < num_generations ({self.num_generations}): the Leave-Two-Out "
                    f"baseline needs at least K+1 completions per prompt. Lower {name} or raise num_generations."
                )
        warn_if_scale_rewards_set(self)
