"""trl_basis: BASIS and MaxPO advantage estimators for RLVR, as drop-in replacements of TRL's GRPOTrainer.

The estimator math (`trl_basis.advantages`) is pure torch and imports nothing from TRL. The trainers and
the tiny task are imported lazily so that `import trl_basis` stays cheap.
"""

from ._quiet import silence_unactionable_warnings

__version__ = "0.1.0"

silence_unactionable_warnings()

_LAZY = {
    "AdvantageEstimatorTrainer": "trl_basis.trainers._trl_bridge",
    "BASISConfig": "trl_basis.trainers.basis_config",
    "BASISTrainer": "trl_basis.trainers.basis_trainer",
    "MaxPOConfig": "trl_basis.trainers.maxpo_config",
    "MaxPOTrainer": "trl_basis.trainers.maxpo_trainer",
    "estimate_reference_rewards": "trl_basis.references",
    "evaluate_pass_at_k": "trl_basis.evaluation",
    "register_estimator": "trl_basis.advantages",
    "tiny_model_path": "trl_basis.tasks",
    "make_arithmetic_dataset": "trl_basis.tasks",
    "arithmetic_reward": "trl_basis.tasks",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'trl_basis' has no attribute {name!r}")
