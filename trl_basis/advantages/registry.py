"""The registry of advantage estimators (verl's `register_adv_est` style): name -> one function, one signature.

    advantages, metrics = estimator(rewards, batch, state, args)

- `rewards`: `(B_global,)` float tensor, the weighted reward of every completion of the GLOBAL generation batch
  (all processes, all `steps_per_generation` micro-batches), NaN where every reward function returned None.
- `batch`: an `EstimatorBatch`: the per-function rewards, the dataset columns the estimator asked for (same row
  order), the group size and the training progress.
- `state`: the estimator's own dict (JSON-serialisable), kept by the trainer across steps, saved with every
  checkpoint and restored on resume.
- `args`: the trainer's config (`BASISConfig`, `MaxPOConfig`), read for the estimator's options.

It returns the advantages `(B_global,)` (NaN rows become 0 in the trainer) and a dict of metrics to log.

`trl_basis/advantages/estimators.py` registers the built-in estimators; `BASISTrainer` trains the one-completion
estimators (`group=False`) and `MaxPOTrainer` the group ones, chosen by `advantage_estimator=<name>` in their
configs. Register your own before building the config:

    @register_estimator("my_baseline", group=False)
    def my_baseline(rewards, batch, state, args):
        return rewards - rewards.nanmean(), {}

Nothing here imports TRL: `args` is read by attribute only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["ESTIMATORS", "Estimator", "EstimatorBatch", "estimator_names", "get_estimator", "register_estimator"]


@dataclass
class EstimatorBatch:
    """What an estimator sees of the global generation batch, besides the weighted rewards."""

    rewards_per_func: torch.Tensor  # (B_global, num_reward_funcs), NaN where a function returned None
    columns: dict[str, list[Any]] = field(default_factory=dict)  # dataset column -> B_global values, same rows
    group_size: int = 1  # completions per prompt, consecutive rows (num_generations)
    step: int = 0  # optimizer steps done
    max_steps: int = 1  # optimizer steps planned (for schedules such as MaxPO's annealed K)
    num_local: int = 0  # rows on this process (the trainer's slicing; estimators need not read it)


EstimatorFn = Callable[[torch.Tensor, EstimatorBatch, dict, Any], tuple[torch.Tensor, dict[str, float]]]


@dataclass(frozen=True)
class Estimator:
    """A registered estimator: its function and what a trainer must provide for it."""

    fn: EstimatorFn
    #: True: groups of `num_generations` completions per prompt (MaxPOTrainer); False: one per prompt (BASISTrainer).
    group: bool
    #: The dataset columns to gather alongside the rewards, as a function of the config (BASIS's depend on
    #: `basis_values`). A column named by `args.reference_rewards_column` makes BASISTrainer run its offline stage.
    columns: Callable[[Any], tuple[str, ...]]
    #: The weighted reward must lie in [0, 1] (a value or a probability is estimated from it).
    unit_rewards: bool
    description: str
    #: Group estimators: whether K (`max_k`, `max_k_final`) enters the formula (False for `grpo`, `rloo`).
    uses_k: bool = True


#: name -> Estimator, in registration order (the built-ins first). Filled by `register_estimator`.
ESTIMATORS: dict[str, Estimator] = {}


def register_estimator(
    name: str,
    *,
    group: bool,
    columns: tuple[str, ...] | Callable[[Any], tuple[str, ...]] = (),
    unit_rewards: bool = False,
    description: str | None = None,
    uses_k: bool = True,
) -> Callable[[EstimatorFn], EstimatorFn]:
    """Decorator: make `fn(rewards, batch, state, args)` trainable as `advantage_estimator=name`.

    `group`: whether it needs groups of completions per prompt (MaxPOTrainer) or one per prompt (BASISTrainer).
    `columns`: dataset columns it reads from `batch.columns` (a tuple, or a function of the config).
    `unit_rewards`: whether the weighted reward must lie in [0, 1]. `description`: one line (default: the first
    line of the docstring). `uses_k`: for a group estimator, whether it reads K (`max_k` is then checked against the
    group size).
    """

    def wrap(fn: EstimatorFn) -> EstimatorFn:
        if name in ESTIMATORS and ESTIMATORS[name].fn is not fn:
            raise ValueError(f"advantage estimator {name!r} is already registered")
        needs = columns if callable(columns) else (lambda args, fixed=tuple(columns): fixed)
        text = description or (fn.__doc__ or name).strip().splitlines()[0]
        ESTIMATORS[name] = Estimator(fn, group, needs, unit_rewards, text, uses_k)
        return fn

    return wrap


def estimator_names(group: bool | None = None) -> tuple[str, ...]:
    """The registered names (all, or only the group / one-completion ones), in registration order."""
    return tuple(name for name, est in ESTIMATORS.items() if group is None or est.group == group)


def get_estimator(name: str, group: bool | None = None, option: str = "advantage_estimator") -> Estimator:
    """The estimator registered as `name`; a one-line error naming `option` and the valid names otherwise."""
    if name not in ESTIMATORS or (group is not None and ESTIMATORS[name].group != group):
        kind = {None: "", True: "group ", False: "one-completion "}[group]
        hint = ""
        if name in ESTIMATORS:  # registered, but for the other trainer
            hint = " (a group estimator: use MaxPOConfig)" if ESTIMATORS[name].group else " (use BASISConfig)"
        others = (
            ""
            if group is None
            else f" (for {'BASISConfig' if group else 'MaxPOConfig'}: {list(estimator_names(not group))})"
        )
        raise ValueError(
            f"{option}={name!r} is not a registered {kind}estimator{hint}; choose one of "
            f"{list(estimator_names(group))}{others}, or register yours with trl_basis.advantages.register_estimator."
        )
    return ESTIMATORS[name]
