"""Drop-in replacements of TRL's GRPOTrainer. The only contact with TRL internals is `_trl_bridge.py`.

Imported lazily, so that `trainers.registry` (the command line's `--trainer` choices) stays cheap to import.
"""

_LAZY = {
    "AdvantageEstimatorTrainer": "._trl_bridge",
    "GatheredBatch": "._trl_bridge",
    "BASISConfig": ".basis_config",
    "BASISTrainer": ".basis_trainer",
    "MaxPOConfig": ".maxpo_config",
    "MaxPOTrainer": ".maxpo_trainer",
}

__all__ = ["AdvantageEstimatorTrainer", "BASISConfig", "BASISTrainer", "GatheredBatch", "MaxPOConfig", "MaxPOTrainer"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
