"""Drop-in replacements of TRL's GRPOTrainer. The only contact with TRL internals is `_trl_bridge.py`."""

from ._trl_bridge import AdvantageEstimatorTrainer, GatheredBatch
from .basis_config import BASISConfig
from .basis_trainer import BASISTrainer
from .maxpo_config import MaxPOConfig
from .maxpo_trainer import MaxPOTrainer

__all__ = ["AdvantageEstimatorTrainer", "BASISConfig", "BASISTrainer", "GatheredBatch", "MaxPOConfig", "MaxPOTrainer"]
