"""The trainers the command line can run: name -> (config class, trainer class), imported only when asked for; and
which one trains a registered advantage estimator."""

from __future__ import annotations

import importlib

#: name -> ("module:ConfigClass", "module:TrainerClass"). The CLI's `--trainer` choices, in this order.
TRAINERS: dict[str, tuple[str, str]] = {
    "basis": ("trl_basis.trainers.basis_config:BASISConfig", "trl_basis.trainers.basis_trainer:BASISTrainer"),
    "maxpo": ("trl_basis.trainers.maxpo_config:MaxPOConfig", "trl_basis.trainers.maxpo_trainer:MaxPOTrainer"),
    "grpo": ("trl:GRPOConfig", "trl:GRPOTrainer"),
}


def _load(target: str):
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def config_class(name: str) -> type:
    """The config class of trainer `name` (a key of `TRAINERS`)."""
    return _load(TRAINERS[name][0])


def trainer_class(name: str) -> type:
    """The trainer class of trainer `name` (a key of `TRAINERS`)."""
    return _load(TRAINERS[name][1])


def trainer_for_estimator(name: str) -> str:
    """The trainer of advantage estimator `name`: "maxpo" for a group estimator of the registry
    (`trl_basis.advantages.ESTIMATORS`, as it is now), else "basis" (whose config names an unknown one in its error).
    Imports the registry, hence torch."""
    from ..advantages import ESTIMATORS

    estimator = ESTIMATORS.get(name)
    return "maxpo" if estimator is not None and estimator.group else "basis"
