"""Config checks shared by BASISConfig and MaxPOConfig."""

from __future__ import annotations

import warnings

# GRPOConfig's default; any other value was set by the user.
_GRPO_SCALE_REWARDS_DEFAULT = "group"


def warn_if_scale_rewards_set(config) -> None:
    """BASIS and MaxPO replace GRPO's `scale_rewards` by `advantage_scaling`: say so instead of ignoring it."""
    if config.scale_rewards != _GRPO_SCALE_REWARDS_DEFAULT:
        warnings.warn(
            f"scale_rewards={config.scale_rewards!r} has no effect with {type(config).__name__}: its advantages are "
            f"scaled by advantage_scaling (now {config.advantage_scaling!r}); set that instead.",
            UserWarning,
            stacklevel=3,
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
