"""A self-contained tiny world for offline tests, examples and benchmarks.

* :func:`make_arithmetic_dataset` / :func:`make_arithmetic_problem`: seeded integer-arithmetic problems of graded
  difficulty, in TRL's conversational prompt format, with ``answer`` and ``difficulty`` columns.
* :func:`arithmetic_reward` (final integer equals the answer) and :func:`math_verify_reward` (GSM8K/MATH-style, via
  math-verify), both with TRL's reward-function signature.
* :func:`tiny_model_path`: the folder of a tiny, partly trained ``Qwen2ForCausalLM`` (character-level tokenizer,
  ChatML template) shipped with the package, e.g. ``GRPOTrainer(model=tiny_model_path(), ...)``. See
  ``docs/tiny_model.md`` for how it was made and how accurate it is.

Importing this module is cheap: ``datasets``, ``transformers`` and ``math_verify`` are imported only when used.
"""

from __future__ import annotations

from .arithmetic import (
    DEFAULT_DIFFICULTIES,
    DIFFICULTY_LEVELS,
    MAX_DIFFICULTY,
    ArithmeticProblem,
    evaluate_expression,
    make_arithmetic_dataset,
    make_arithmetic_problem,
)
from .rewards import arithmetic_reward, completion_text, extract_final_integer, math_verify_reward
from .worlds import DEFAULT_WORLD, WORLDS, World, get_world

__all__ = [
    "DEFAULT_DIFFICULTIES",
    "DEFAULT_WORLD",
    "DIFFICULTY_LEVELS",
    "MAX_DIFFICULTY",
    "WORLDS",
    "World",
    "ArithmeticProblem",
    "arithmetic_reward",
    "completion_text",
    "evaluate_expression",
    "extract_final_integer",
    "get_world",
    "make_arithmetic_dataset",
    "make_arithmetic_problem",
    "math_verify_reward",
    "tiny_model_path",
]


def tiny_model_path(world: str | None = None) -> str:
    """Local folder of a shipped tiny model (weights, config, generation config, tokenizer, chat template).

    ``world`` names a shipped world (``trl_basis.tasks.WORLDS``: ``"level3"``, the default, ``"mixed"`` or
    ``"hard"``); its task is ``make_arithmetic_dataset(world=world)``. Works offline with
    ``AutoModelForCausalLM.from_pretrained``, ``AutoTokenizer.from_pretrained`` and ``GRPOTrainer(model=...)``.
    """
    folder = get_world(world).model_path
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"The tiny model is missing from {folder}. Regenerate it with the recipe in docs/tiny_model.md "
            f"(`python -m trl_basis.tasks.train_tiny_model --output-dir trl_basis/tasks/{folder.name} ...`), or reinstall "
            "trl_basis."
        )
    return str(folder)
