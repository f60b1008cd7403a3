"""Which trainer a benchmark method name means: the one place that builds trainers by name.

Names read "<estimator>@<completions per prompt>[ N=<reference samples>]": `BASIS@1`, `BASIS+roll@1 N=4`,
`GRPO@8`, `RLOO@8`, `REINFORCE++@1`, `SPO@1`. Every estimator is the package's, trained by its registry name
(`trl_basis.advantages.ESTIMATORS`): `reinforce_pp` and `spo` in BASISTrainer, `rloo` in MaxPOTrainer.
"""

from __future__ import annotations

#: SPO's forgetting factor (`BASISConfig.spo_discount`). The paper adapts it to the KL divergence since a prompt was
#: last seen; we keep it constant (per-prompt KL tracking would need the old policy's log-probabilities).
SPO_DISCOUNT = 0.9

__all__ = ["BASIS_VARIANTS", "SPO_DISCOUNT", "basis_variant", "group_size", "make_trainer"]

#: BASIS's `basis_values` of each BASIS method name (ALGORITHMS.md §1, §1e, §1f); " N=n" sets its N.
BASIS_VARIANTS = {"BASIS": "reference", "BASIS+hist": "history", "BASIS+roll": "rolling", "BASIS+online": "online"}


def group_size(method: str) -> int:
    """Completions per prompt: the number after "@"."""
    return int(method.split("@")[1].split()[0])


def basis_variant(method: str, default_samples: int) -> tuple[str, int] | None:
    """`(basis_values, N)` of a BASIS method name such as "BASIS+roll@1 N=4"; None for other methods."""
    name, _, rest = method.partition("@")
    if name not in BASIS_VARIANTS:
        return None
    samples = int(rest.split("N=")[1]) if "N=" in rest else default_samples
    return BASIS_VARIANTS[name], samples


def make_trainer(method: str, world, common: dict, reference_samples: int = 8):
    """`(trainer, offline completions)` of `method` on `world` (`_common.tiny_world`'s tuple), with the trainer
    arguments `common` (a GRPOConfig's keywords).

    BASIS and SPO run their offline stage here, uncached (`reference_cache_dir=None`), so that a caller timing this
    call times the stage too; the completions it sampled are returned (0 for `online` and for the other methods).
    """
    from trl import GRPOConfig, GRPOTrainer

    from trl_basis import BASISConfig, BASISTrainer, MaxPOConfig, MaxPOTrainer

    path, train, _, reward = world
    variant = basis_variant(method, reference_samples)
    if variant is not None or method == "SPO@1":
        values, samples = variant or ("reference", reference_samples)
        args = BASISConfig(
            **common,
            advantage_estimator="spo" if method == "SPO@1" else "basis",
            spo_discount=SPO_DISCOUNT,
            basis_values=values,
            num_reference_samples=samples,
            reference_cache_dir=None,  # the offline stage really runs, and is timed (SPO starts its tracker from it)
            reference_batch_size=64,
        )
        trainer = BASISTrainer(path, [reward], args=args, train_dataset=train)
        # The offline stage runs at the start of train(); run it here so that it is timed as construction.
        trainer.prepare_reference_rewards()
        return trainer, 0 if values == "online" else samples * len(train)
    if method == "REINFORCE++@1":
        args = BASISConfig(**common, advantage_estimator="reinforce_pp", num_reference_samples=0)
        return BASISTrainer(path, [reward], args=args, train_dataset=train), 0
    if method.startswith("GRPO@"):
        args = GRPOConfig(**common, num_generations=group_size(method))
        return GRPOTrainer(path, [reward], args=args, train_dataset=train), 0
    if method.startswith("RLOO@"):
        args = MaxPOConfig(**common, num_generations=group_size(method), advantage_estimator="rloo")
        return MaxPOTrainer(path, [reward], args=args, train_dataset=train), 0
    raise ValueError(f"unknown method {method!r}")
