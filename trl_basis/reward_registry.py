"""The reward registry: names the command line (`--reward_funcs`) and YAML files may use for reward functions.

`resolve_reward_funcs(["arithmetic", "my_module.my_reward"])` turns names and dotted import paths into callables,
checking that TRL can call each one. Register your own with `register_reward("name", "package.module:function")`.
Every function raises `ValueError` with a one-line message.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable, Sequence

#: name -> "module:attribute"; imported only when used (math_verify is an optional dependency).
REWARD_FUNCS: dict[str, str] = {
    "arithmetic": "trl_basis.tasks.rewards:arithmetic_reward",
    "math_verify": "trl_basis.tasks.rewards:math_verify_reward",
}


def register_reward(name: str, target: str) -> None:
    """Make `name` usable in `--reward_funcs`; `target` is `"module:function"` (imported when first used)."""
    if ":" not in target:
        raise ValueError(f"register_reward needs 'module:function' as target; got {target!r}.")
    REWARD_FUNCS[name] = target


def resolve_reward_funcs(names: Sequence[str]) -> list[Callable]:
    """Reward functions from their names (`arithmetic`, `math_verify`) or dotted import paths."""
    funcs = []
    for name in names:
        target = REWARD_FUNCS.get(name, name)
        module_name, sep, attr = target.rpartition(":") if ":" in target else target.rpartition(".")
        if not sep or not module_name:
            raise ValueError(
                f"unknown reward function {name!r}; use {' or '.join(REWARD_FUNCS)} or a dotted import path "
                "such as my_module.my_reward."
            )
        if os.getcwd() not in sys.path:
            # Last, not first: a stray matplotlib.py or datasets.py in the working folder must not shadow the
            # installed packages (only the user's own reward module should be found there).
            sys.path.append(os.getcwd())
        try:
            func = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"could not import reward function {name!r}: {err}.") from err
        if not callable(func):
            raise ValueError(f"reward function {name!r} is not callable.")
        check_reward_signature(name, func)
        funcs.append(func)
    if any(f.__name__ == "math_verify_reward" for f in funcs):
        try:
            importlib.import_module("math_verify")
        except ImportError as err:
            raise ValueError(
                "reward math_verify needs the math-verify package: pip install 'trl_basis[math]', or use "
                "--reward_funcs arithmetic."
            ) from err
    return funcs


def check_reward_signature(name: str, func: Callable) -> None:
    """TRL calls a reward function with keywords: prompts=, completions=, completion_ids= and every dataset column;
    one that cannot take them fails only at the first training step, after the model loaded."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return  # builtins and C callables: nothing to inspect
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params)
    missing = [n for n in ("prompts", "completions") if n not in names and not takes_kwargs]
    if missing or not takes_kwargs:
        raise ValueError(
            f"reward function {name!r} has the signature {inspect.signature(func)}; TRL calls it as "
            "f(prompts=..., completions=..., completion_ids=..., **dataset_columns): give it parameters "
            "prompts, completions and **kwargs."
        )
