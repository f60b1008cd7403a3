"""The registry of group advantage estimators (verl's `register_adv_est` style): name -> one pure function.

Every function takes `(rewards (num_groups, B), k)` and returns library-scale advantages `(num_groups, B)`; the
trainer multiplies by B (so K = 1 with `l2o` is RLOO exactly). `MaxPOConfig.advantage_estimator` chooses among
`GROUP_ESTIMATORS`; the benchmarks and the docs read the same table. Register your own with
`@register_group_estimator("name")` before building the config.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .maxk import (
    group_mean_advantages,
    maxpo_advantages,
    pkpo_loo_advantages,
    pkpo_loo_minus_one_advantages,
    pkpo_plain_advantages,
)

__all__ = ["GROUP_ESTIMATORS", "get_group_estimator", "register_group_estimator"]

GroupEstimator = Callable[[torch.Tensor, int], torch.Tensor]

#: name -> (function, one-line description). Filled below and by `register_group_estimator`.
GROUP_ESTIMATORS: dict[str, tuple[GroupEstimator, str]] = {}


def register_group_estimator(name: str, description: str = "") -> Callable[[GroupEstimator], GroupEstimator]:
    """Decorator: make `fn(rewards, k)` selectable as `advantage_estimator=name`."""

    def wrap(fn: GroupEstimator) -> GroupEstimator:
        if name in GROUP_ESTIMATORS and GROUP_ESTIMATORS[name][0] is not fn:
            raise ValueError(f"group estimator {name!r} is already registered")
        GROUP_ESTIMATORS[name] = (fn, description or (fn.__doc__ or "").strip().splitlines()[0])
        return fn

    return wrap


def get_group_estimator(name: str) -> GroupEstimator:
    if name not in GROUP_ESTIMATORS:
        raise ValueError(f"unknown group estimator {name!r}; registered: {sorted(GROUP_ESTIMATORS)}")
    return GROUP_ESTIMATORS[name][0]


register_group_estimator("l2o", "MaxPO's Leave-Two-Out: unbiased for max@K, exactly centred (ALGORITHMS.md §2)")(
    maxpo_advantages
)
register_group_estimator("pkpo", "PKPO without a baseline: unbiased, not centred")(pkpo_plain_advantages)
register_group_estimator("pkpo_loo", "PKPO's leave-one-out baseline: unbiased, not centred")(pkpo_loo_advantages)
register_group_estimator("pkpo_loo_minus_one", "PKPO's 'loo minus one': unbiased, not centred")(
    pkpo_loo_minus_one_advantages
)
register_group_estimator("grpo", "the group mean (GRPO without std): targets the mean reward, K ignored")(
    group_mean_advantages
)
