"""The trainers the command line can run: name -> (config class, trainer class), imported only when asked for."""

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
