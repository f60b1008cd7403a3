"""The shipped tiny worlds: a tiny model and the arithmetic levels it is partly right on (docs/tiny_model.md).

* ``level3`` (the default): the model trained on level 3 only (``48+7=``), right on most prompts only sometimes
  (pass rates spread around 0.4). The main job's world.
* ``mixed``: a second model, the level-3 model trained further on levels 3 and 4, kept where its held-out pass rates
  were most spread from near 0 to near 1 (24% of the prompts in (0, 0.15], 19% in [0.75, 1), 28% never solved,
  docs/tiny_model.md): the regime in which BASIS's per-prompt values carry the most information.
* ``hard``: the mixed model on its hardest level only, where pass@1 and pass@16 are both far from the ceiling, so
  that gains at large k (MaxPO's target) are visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_WORLD", "WORLDS", "World", "get_world"]

_TASKS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class World:
    """A shipped tiny model (``model_dir`` under ``trl_basis/tasks/``) and the arithmetic levels of its task."""

    name: str
    model_dir: str
    difficulties: tuple[int, ...]
    description: str

    @property
    def model_path(self) -> Path:
        return _TASKS_DIR / self.model_dir


WORLDS: dict[str, World] = {
    "level3": World("level3", "tiny_model", (3,), "level-3 model, level-3 problems (pass rates spread around 0.4)"),
    "mixed": World("mixed", "tiny_model_mixed", (3, 4), "mixed model, levels 3-4 (pass rates from near 0 to near 1)"),
    "hard": World("hard", "tiny_model_mixed", (4,), "mixed model, level 4 only (far from the pass@k ceiling)"),
}
DEFAULT_WORLD = "level3"


def get_world(name: str | None) -> World:
    """The world called ``name`` (``None``: the default); a ``ValueError`` naming the known worlds otherwise."""
    name = DEFAULT_WORLD if name is None else name
    if name not in WORLDS:
        raise ValueError(f"unknown world {name!r}; the shipped worlds are {', '.join(map(repr, WORLDS))}.")
    return WORLDS[name]
