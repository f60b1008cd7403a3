"""Config checks shared by BASISConfig and MaxPOConfig."""

from __future__ import annotations

import warnings

#: The smallest global generation batch (prompts) where BASIS's pooled baseline is reliable. Measured on the tiny
#: world (benchmarks/basis_batch_size.py, results/basis_batch_size.md): the baseline's value MSE, relative to its
#: 256-prompt level, is 2.9x (initial policy) / 1.9x (after 60 training steps) at 8 prompts, 1.5x / 1.3x at 32,
#: 1.24x / 1.11x at 64 and 1.08x / 1.03x at 128.
MIN_RELIABLE_BATCH = 64


def warn_if_small_batch(config) -> None:
    """BASIS's baseline pools the OTHER prompts of the global generation batch: say so when there are too few."""
    if config.generation_batch_size is not None and config.generation_batch_size < MIN_RELIABLE_BATCH:
        warnings.warn(
            f"BASIS pools its baseline over the global generation batch, here {config.generation_batch_size} prompts "
            f"(per_device_train_batch_size x processes x steps_per_generation); below {MIN_RELIABLE_BATCH} the "
            "baseline's error grows (on the tiny world 1.9-2.9x its large-batch level at 8 prompts, 1.3-1.5x at 32: "
            "benchmarks/results/basis_batch_size.md). Raise per_device_train_batch_size or steps_per_generation so "
            f"that the global batch holds at least {MIN_RELIABLE_BATCH} prompts.",
            UserWarning,
            stacklevel=4,
        )


def one_of(choices: tuple[str, ...]) -> str:
    """`'a' or 'b'`, `'a', 'b' or 'c'`: the choices of an option, for its error message."""
    quoted = [repr(c) for c in choices]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def cache_dir_or_none(value):
    """`None`, `""`, `"null"` and `"none"` (any case; YAML and flags give strings) all mean: no cache."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "null", "none")):
        return None
    return value
