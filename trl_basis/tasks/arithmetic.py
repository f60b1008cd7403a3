"""A seeded generator of small integer-arithmetic problems with graded difficulty.

Each problem is a short expression such as ``"12+345-6="`` whose answer is an integer (possibly negative). The
difficulty levels are:

=====  =========================================================================
level  problem
=====  =========================================================================
1      two terms, both 1-digit                              (e.g. ``7-9=``)
2      three terms, all 1-digit                             (e.g. ``3+5-7=``)
3      two terms, up to 2 digits, at least one 2-digit      (e.g. ``48+7=``)
4      three terms, up to 2 digits, at least one 2-digit    (e.g. ``12+9-40=``)
5      two terms, up to 3 digits, at least one 3-digit      (e.g. ``305-86=``)
6      three terms, up to 3 digits, at least one 3-digit    (e.g. ``12+345-6=``)
=====  =========================================================================

Every operator is ``+`` or ``-`` with equal probability, so answers may be negative and carries/borrows appear
naturally. Datasets come in TRL's conversational prompt format: a ``prompt`` column holding
``[{"role": "user", "content": "12+345-6="}]``, an ``answer`` column (the integer as a string, e.g. ``"351"``) and a
``difficulty`` column (int). TRL forwards the extra columns to reward functions as keyword arguments, so
:func:`trl_basis.tasks.arithmetic_reward` receives ``answer=[...]``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from .worlds import DEFAULT_WORLD, WORLDS, get_world

#: (number of terms, maximum number of digits per operand) for each difficulty level.
DIFFICULTY_LEVELS: dict[int, tuple[int, int]] = {
    1: (2, 1),
    2: (3, 1),
    3: (2, 2),
    4: (3, 2),
    5: (2, 3),
    6: (3, 3),
}
MAX_DIFFICULTY = max(DIFFICULTY_LEVELS)
#: The levels of the default task (the default world's): the ones the default tiny model was trained on, where it is
#: partly right on most prompts, so that reinforcement learning has a signal to learn from (docs/tiny_model.md).
DEFAULT_DIFFICULTIES: tuple[int, ...] = WORLDS[DEFAULT_WORLD].difficulties

__all__ = [
    "DEFAULT_DIFFICULTIES",
    "DIFFICULTY_LEVELS",
    "MAX_DIFFICULTY",
    "ArithmeticProblem",
    "evaluate_expression",
    "make_arithmetic_dataset",
    "make_arithmetic_problem",
]


@dataclass(frozen=True)
class ArithmeticProblem:
    """One problem: ``expression`` (e.g. ``"12+345-6"``), its integer ``answer`` and its ``difficulty`` level."""

    expression: str
    answer: int
    difficulty: int

    @property
    def question(self) -> str:
        """The user-turn text: the expression followed by ``=``, e.g. ``"12+345-6="``."""
        return f"{self.expression}="

    def to_example(self) -> dict:
        """The problem as a TRL conversational row: ``prompt``, ``answer`` (string) and ``difficulty``."""
        return {
            "prompt": [{"role": "user", "content": self.question}],
            "answer": str(self.answer),
            "difficulty": self.difficulty,
        }


def _random_operand(rng: random.Random, num_digits: int) -> int:
    if num_digits == 1:
        return rng.randint(0, 9)
    return rng.randint(10 ** (num_digits - 1), 10**num_digits - 1)


def make_arithmetic_problem(rng: random.Random, difficulty: int) -> ArithmeticProblem:
    """Draw one problem of the given difficulty (see the module docstring) from ``rng`` (a ``random.Random``)."""
    if difficulty not in DIFFICULTY_LEVELS:
        raise ValueError(f"difficulty must be one of {sorted(DIFFICULTY_LEVELS)}, got {difficulty!r}")
    num_terms, max_digits = DIFFICULTY_LEVELS[difficulty]
    digits = [rng.randint(1, max_digits) for _ in range(num_terms)]
    digits[rng.randrange(num_terms)] = max_digits  # at least one operand has the level's full width
    operands = [_random_operand(rng, d) for d in digits]
    ops = [rng.choice("+-") for _ in range(num_terms - 1)]
    expression = str(operands[0]) + "".join(op + str(x) for op, x in zip(ops, operands[1:], strict=True))
    return ArithmeticProblem(expression=expression, answer=evaluate_expression(expression), difficulty=difficulty)


def evaluate_expression(expression: str) -> int:
    """Evaluate a ``+``/``-`` expression of non-negative integers (a trailing ``=`` is ignored), without ``eval``."""
    expression = expression.strip().rstrip("=").replace(" ", "")
    total, sign, number = 0, 1, ""
    for ch in expression + "+":
        if ch.isdigit():
            number += ch
        elif ch in "+-":
            if not number:
                raise ValueError(f"malformed expression: {expression!r}")
            total += sign * int(number)
            sign, number = (1 if ch == "+" else -1), ""
        else:
            raise ValueError(f"unexpected character {ch!r} in expression {expression!r}")
    return total


def _sample_problems(
    rng: random.Random,
    num: int,
    difficulties: Sequence[int],
    exclude: set[str],
    unique: bool,
) -> list[ArithmeticProblem]:
    """Sample ``num`` problems, cycling through ``difficulties`` so every level gets an equal share."""
    problems: list[ArithmeticProblem] = []
    seen: set[str] = set()
    for i in range(num):
        difficulty = difficulties[i % len(difficulties)]
        for _ in range(10_000):
            problem = make_arithmetic_problem(rng, difficulty)
            if problem.expression in exclude or (unique and problem.expression in seen):
                continue
            break
        else:
            raise ValueError(f"could not draw enough distinct problems of difficulty {difficulty}; ask for fewer")
        seen.add(problem.expression)
        problems.append(problem)
    rng.shuffle(problems)
    return problems


def _world_test_split(num_test: int, seed: int, difficulties: tuple[int, ...]) -> list[ArithmeticProblem]:
    """A multi-level world's held-out problems: the union of each level's OWN held-out split (an equal share of
    ``num_test`` per level, each the test split of ``make_arithmetic_dataset(difficulties=(level,), seed=seed)``), so
    that a problem held out at one level is held out in every world: each shipped model's SFT stream skipped the
    single-level splits of its levels (``trl_basis/tasks/train_tiny_model.py``), including the models it started from."""
    problems: list[ArithmeticProblem] = []
    for i, level in enumerate(difficulties):
        share = num_test // len(difficulties) + (i < num_test % len(difficulties))
        problems += _sample_problems(random.Random(seed), share, (level,), exclude=set(), unique=True)
    random.Random(seed).shuffle(problems)
    return problems


def make_arithmetic_dataset(
    num_train: int = 2000,
    num_test: int = 200,
    seed: int = 0,
    difficulties: Sequence[int] | None = None,
    world: str | None = None,
):
    """Build a ``datasets.DatasetDict`` with ``"train"`` and ``"test"`` splits of arithmetic problems.

    ``difficulties`` defaults to the levels of ``world`` (``trl_basis.tasks.WORLDS``; ``None``: the default world,
    level 3, the level of the default tiny model); any of the six levels can be asked for instead. Both splits hold an equal share of each level in ``difficulties`` (shuffled). Test problems are distinct from
    each other and never appear in the train split. Train problems are drawn independently and may repeat (level 1
    has only 200 distinct problems), but none of them is a test problem. The same arguments always give the same
    dataset.

    Columns: ``prompt`` (conversational: ``[{"role": "user", "content": "12+345-6="}]``), ``answer`` (the integer as
    a string) and ``difficulty`` (int).
    """
    from datasets import Dataset, DatasetDict, Features, List, Value

    world_levels = get_world(world).difficulties
    if difficulties is None:
        difficulties = world_levels
    elif world is not None and tuple(difficulties) != world_levels:
        raise ValueError(f"world {world!r} has difficulties {world_levels}; got difficulties={tuple(difficulties)}")
    difficulties = tuple(difficulties)
    if not difficulties:
        raise ValueError("difficulties must not be empty")
    for d in difficulties:
        if d not in DIFFICULTY_LEVELS:
            raise ValueError(f"unknown difficulty {d!r}; known levels are {sorted(DIFFICULTY_LEVELS)}")
    if world is not None and len(difficulties) > 1:
        test, rng = _world_test_split(num_test, seed, difficulties), random.Random(f"{seed}/{difficulties}")
    else:
        rng = random.Random(seed)
        test = _sample_problems(rng, num_test, difficulties, exclude=set(), unique=True)
    test_expressions = {p.expression for p in test}
    train = _sample_problems(rng, num_train, difficulties, exclude=test_expressions, unique=False)

    features = Features(
        {
            "prompt": List({"role": Value("string"), "content": Value("string")}),
            "answer": Value("string"),
            "difficulty": Value("int64"),
        }
    )

    def to_dataset(problems: list[ArithmeticProblem]) -> Dataset:
        rows = [p.to_example() for p in problems]
        columns = {name: [r[name] for r in rows] for name in features}
        return Dataset.from_dict(columns, features=features)

    return DatasetDict({"train": to_dataset(train), "test": to_dataset(test)})
