"""Configuration of `MaxPOTrainer`."""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import GRPOConfig

from ..advantages.registry import get_estimator
from ..advantages.scaling import SCALE_REWARDS
from ._checks import one_of


@dataclass
class MaxPOConfig(GRPOConfig):
    r"""
    Configuration class for [`MaxPOTrainer`]: max@K / pass@K policy optimisation with the Leave-Two-Out advantage
    ("On Advantage Estimates for Max@K Policy Gradients", [arXiv 2606.06080](https://arxiv.org/abs/2606.06080)).

    Each prompt gets a group of `num_generations` completions (`B`); the objective is the expected best reward among
    `K` of them. Every parameter of [`GRPOConfig`] keeps its meaning (loss types, KL `beta`, vLLM, PEFT, logging);
    `scale_rewards` keeps its values with another default (below).

    Parameters that differ from [`GRPOConfig`]:
        num_generations (`int`, *optional*, defaults to `8`):
            The group size `B`, as in GRPO; it must exceed `max_k` (the Leave-Two-Out baseline needs `K + 1`
            completions per prompt).
        scale_rewards (`str`, *optional*, defaults to `"none"`):
            TRL's option, applied to the ADVANTAGES the estimator returns: `"none"` keeps the gradient unbiased (GRPO's
            default `"group"` divides by each group's std, which biases it); `"group"` divides each group's advantages
            by their standard deviation; `"batch"` by their standard deviation over the global batch.

    Parameters:
        max_k (`int`, *optional*, defaults to `4`):
            `K` of the max@K objective; `1 ≤ K < num_generations`. `K = 1` is the mean reward (RLOO).
        max_k_final (`int` or `None`, *optional*, defaults to `None`):
            If set, `K` is annealed linearly from `max_k` to `max_k_final` over training (rounded to an integer), as
            PKPO anneals `K` to turn a pass@K-trained policy into a pass@1 one. `None` keeps `K = max_k`.
        advantage_estimator (`str`, *optional*, defaults to `"l2o"`):
            A group estimator of the registry `trl_basis.advantages.ESTIMATORS` (add your own with
            `register_estimator(..., group=True)`). Built in: `"l2o"`: the Leave-Two-Out advantage (unbiased, exactly centred in every group). `"pkpo"`,
            `"pkpo_loo"`, `"pkpo_loo_minus_one"`: PKPO's estimators (no baseline, leave-one-out, leave-one-out minus
            one; unbiased, not centred). `"grpo"`: the group-mean baseline `r_i − mean(r)` (for comparisons; the
            max@K parameter is then ignored). `"rloo"`: `r_i − mean(others)` (L2O at K = 1; `max_k` ignored).
    """

    num_generations: int | None = field(
        default=8,
        metadata={"help": "Group size B: completions per prompt. Must exceed max_k."},
    )
    scale_rewards: str = field(
        default="none",
        metadata={
            "help": "Applied to the advantages: 'none' (unbiased), 'group' (divide by the group std) or 'batch' "
            "(divide by the batch std).",
            "choices": list(SCALE_REWARDS),
        },
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
            "help": "A group estimator of the registry (trl_basis.advantages.ESTIMATORS): 'l2o' (the centred "
            "Leave-Two-Out), 'pkpo', 'pkpo_loo', 'pkpo_loo_minus_one', 'grpo', 'rloo', or one added with "
            "register_estimator(..., group=True).",
        },
    )

    def __post_init__(self):
        super().__post_init__()
        estimator = get_estimator(self.advantage_estimator, group=True)  # the registry as it is now, not at import
        if self.scale_rewards not in SCALE_REWARDS:
            raise ValueError(f"scale_rewards must be {one_of(SCALE_REWARDS)}; got {self.scale_rewards!r}.")
        for name in ("max_k", "max_k_final") if estimator.uses_k else ():  # grpo, rloo: K is not read
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
