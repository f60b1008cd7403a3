"""Pure-torch advantage estimators of trl_basis (no TRL / transformers import).

BASIS (one completion per prompt, a batch-shared leave-one-out baseline, `basis.py`) and the max@K
estimators for group sampling: MaxPO's Leave-Two-Out advantage and PKPO's variants (`maxk.py`). `peers.py` holds
the single-rollout peers the benchmarks compare BASIS with (REINFORCE++'s batch baseline, SPO's value tracker);
`registry.py` holds the one registry of trainable estimators (one signature), `estimators.py` registers the
built-in ones; `reference.py` holds plain readable loops of the vectorised formulas; `history.py` the option that refines BASIS's baseline with each prompt's own past rewards, `values.py` the rolling
and online value rows that keep BASIS's values current.
The mathematical specification is `docs/ALGORITHMS.md`; every function computes in float64 on the device of
its input and returns float64.
"""

from . import estimators  # noqa: E402,F401  (registers the built-in estimators)
from .basis import (
    BASIS_FALLBACKS,
    BetaCalibration,
    basis_baseline,
    beta_grid,
    calibrate_beta,
    reference_values,
)
from .history import blend_with_history, prompt_key
from .maxk import (
    PKPO_BASELINES,
    group_mean_advantages,
    max_at_k,
    maxpo_advantages,
    pkpo_advantages,
    pkpo_loo_advantages,
    pkpo_loo_minus_one_advantages,
    pkpo_plain_advantages,
)
from .peers import reinforce_pp_advantages, spo_advantages, spo_tracker_init, spo_tracker_update
from .registry import ESTIMATORS, Estimator, EstimatorBatch, estimator_names, get_estimator, register_estimator
from .values import BASIS_VALUES, leave_one_out_mean, rolling_row, usable_rows, with_batch_fallback

__all__ = [
    "BASIS_FALLBACKS",
    "BASIS_VALUES",
    "ESTIMATORS",
    "Estimator",
    "EstimatorBatch",
    "PKPO_BASELINES",
    "BetaCalibration",
    "basis_baseline",
    "beta_grid",
    "blend_with_history",
    "calibrate_beta",
    "estimator_names",
    "get_estimator",
    "group_mean_advantages",
    "leave_one_out_mean",
    "max_at_k",
    "maxpo_advantages",
    "pkpo_advantages",
    "pkpo_loo_advantages",
    "pkpo_loo_minus_one_advantages",
    "pkpo_plain_advantages",
    "prompt_key",
    "reference_values",
    "register_estimator",
    "reinforce_pp_advantages",
    "rolling_row",
    "spo_advantages",
    "spo_tracker_init",
    "spo_tracker_update",
    "usable_rows",
    "with_batch_fallback",
]
