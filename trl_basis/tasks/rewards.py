"""Verifiable reward functions with TRL's reward-function signature.

TRL's ``GRPOTrainer`` calls each reward function as ``func(prompts=..., completions=..., completion_ids=...,
**extra_dataset_columns)`` and expects one float (or ``None``) per completion. Completions are either plain strings
(standard datasets) or lists of message dicts (conversational datasets), in which case the reward reads the content
of the last assistant message.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

__all__ = [
    "arithmetic_reward",
    "completion_text",
    "extract_final_integer",
    "math_verify_reward",
]

_INTEGER = re.compile(r"-?\d+")


def completion_text(completion: Any) -> str:
    """The text of a completion: a plain string, or the content of the last assistant message of a conversation."""
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _content_text(completion.get("content"))
    messages = list(completion)
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role", "assistant") == "assistant":
            return _content_text(message.get("content"))
    return _content_text(messages[-1].get("content")) if messages and isinstance(messages[-1], dict) else ""


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    # Multimodal-style content: [{"type": "text", "text": "..."}, ...]
    return "".join(part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text")


def extract_final_integer(text: str) -> int | None:
    """The last integer (regex ``-?\\d+``) in ``text``, or ``None`` when there is none."""
    matches = _INTEGER.findall(text)
    return int(matches[-1]) if matches else None


def _parse_gold_integer(answer: Any) -> int | None:
    if isinstance(answer, int):
        return answer
    return extract_final_integer(str(answer).replace(",", ""))


def arithmetic_reward(
    prompts: Sequence[Any] | None,
    completions: Sequence[Any],
    answer: Sequence[Any],
    **kwargs: Any,
) -> list[float]:
    """1.0 when the completion's final integer equals ``answer`` (e.g. ``"-17"``), else 0.0.

    The final integer is the last match of ``-?\\d+`` in the completion text, so ``"The answer is 42."`` scores on
    42 and ``"3+4=7"`` on 7. A completion without any integer scores 0.0.
    """
    if len(completions) != len(answer):
        raise ValueError(f"got {len(completions)} completions but {len(answer)} answers")
    rewards = []
    for completion, gold in zip(completions, answer, strict=True):
        predicted = extract_final_integer(completion_text(completion))
        expected = _parse_gold_integer(gold)
        rewards.append(1.0 if predicted is not None and predicted == expected else 0.0)
    return rewards


arithmetic_reward.__name__ = "arithmetic_reward"


def _normalize_gold_for_math_verify(answer: str) -> str:
    """Turn a GSM8K-style gold answer (``"... #### 42"``, ``"\\boxed{42}"`` or ``"42"``) into a parseable string."""
    answer = str(answer)
    if "####" in answer:
        answer = answer.split("####")[-1].strip().replace(",", "")
    if "\\boxed" in answer or "$" in answer:
        return answer
    return f"${answer.strip()}$"


def _normalize_completion_for_math_verify(text: str) -> str:
    if "\\boxed" not in text and "####" in text:
        final = text.split("####")[-1].strip().replace(",", "")
        return f"${final}$" if final else text
    return text


def math_verify_reward(
    prompts: Sequence[Any] | None,
    completions: Sequence[Any],
    answer: Sequence[Any],
    **kwargs: Any,
) -> list[float]:
    """1.0 when `math-verify <https://github.com/huggingface/Math-Verify>`_ judges the completion equal to ``answer``.

    Meant for GSM8K/MATH-style data: gold answers like ``"... #### 42"``, ``"\\boxed{42}"`` or plain ``"42"``;
    completions ending with ``\\boxed{...}``, ``"#### n"`` or a final number/expression. Needs the ``math`` extra
    (``pip install trl_basis[math]``).
    """
    try:
        from math_verify import parse, verify
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "math_verify_reward needs the math-verify package; install it with `pip install trl_basis[math]` "
            "(or `pip install math-verify`)."
        ) from err

    if len(completions) != len(answer):
        raise ValueError(f"got {len(completions)} completions but {len(answer)} answers")
    # math-verify's timeouts use SIGALRM, which only works in the main thread; elsewhere run without them.
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    rewards = []
    for completion, gold in zip(completions, answer, strict=True):
        gold_parsed = parse(_normalize_gold_for_math_verify(gold), parsing_timeout=timeout)
        if not gold_parsed:
            rewards.append(0.0)
            continue
        text = _normalize_completion_for_math_verify(completion_text(completion))
        try:
            predicted = parse(text, parsing_timeout=timeout)
            rewards.append(1.0 if predicted and verify(gold_parsed, predicted, timeout_seconds=timeout) else 0.0)
        except Exception:  # math-verify raises on pathological inputs; those completions are simply wrong
            rewards.append(0.0)
    return rewards


math_verify_reward.__name__ = "math_verify_reward"
