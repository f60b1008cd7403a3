"""A training run's folder: whether it can be written, whether it already holds a run, and which checkpoint to resume
from. `trl-basis train` checks these before anything is sampled; in your own script, call them before
`trainer.train(resume_from_checkpoint=latest_complete_checkpoint(output_dir))`. Each raises `ValueError` with a
one-line message naming the option to change.
"""

from __future__ import annotations

import os
import re
import sys

from ._io import nearest_existing

__all__ = ["RUN_FILES", "check_writable_folder", "latest_complete_checkpoint", "refuse_existing_run", "resume_path"]

#: What a finished or checkpointed run leaves in its output_dir (the model, its adapter, our metrics, TRL's state).
RUN_FILES = ("config.json", "adapter_config.json", "model.safetensors", "metrics.json", "trainer_state.json")


def check_writable_folder(path: str, option: str = "output_dir") -> None:
    """`path` is a folder, or can be created as one: not a file, and its nearest existing ancestor is writable."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{option} {path!r} is a file; pass a folder.")
    existing = nearest_existing(path)  # the nearest folder that exists must let us create the rest
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path!r} cannot be written ({existing!r} is not a writable folder); pass another.")


def refuse_existing_run(folder: str) -> None:
    """A `ValueError` when `folder` already holds a run (a model, `metrics.json`, checkpoints) that training would
    replace silently."""
    names = os.listdir(folder) if os.path.isdir(folder) else []
    found = sorted(n for n in names if n in RUN_FILES or n.startswith("checkpoint-"))
    if found:
        raise ValueError(
            f"output_dir {folder!r} already holds a run ({', '.join(found[:3])}); pass another --output_dir, "
            "or --overwrite_output_dir true to replace it (--resume_from_checkpoint true continues it)."
        )


def latest_complete_checkpoint(folder: str) -> str | None:
    """The `checkpoint-<step>` folder of `folder` with the highest step that holds `trainer_state.json` (a checkpoint
    interrupted while saving has none), or None. transformers' `resume_from_checkpoint=True` would take the latest
    folder, even a half-written one; a note on stderr says when it is skipped."""
    names = os.listdir(folder) if os.path.isdir(folder) else []
    found = sorted(
        (int(m[1]), os.path.join(folder, m[0])) for m in map(re.compile(r"checkpoint-(\d+)").fullmatch, names) if m
    )
    numbered = [path for _, path in found if os.path.isdir(path)]
    complete = [path for path in numbered if os.path.isfile(os.path.join(path, "trainer_state.json"))]
    if complete and numbered[-1] != complete[-1]:
        print(
            f"trl-basis: note: {numbered[-1]} is incomplete (no trainer_state.json: interrupted while saving?); "
            f"resuming from {complete[-1]}.",
            file=sys.stderr,
        )
    return complete[-1] if complete else None


def resume_path(resume: str | bool | None, output_dir: str) -> str | None:
    """What `resume_from_checkpoint` resumes from: None (none, false, no), a complete checkpoint folder as given, or
    for true/yes the latest complete checkpoint of `output_dir` (`latest_complete_checkpoint`)."""
    if resume is None or str(resume).lower() in ("false", "no"):
        return None
    if str(resume).lower() not in ("true", "yes"):
        if not os.path.isdir(resume):
            raise ValueError(
                f"--resume_from_checkpoint {resume!r} is not a folder; pass a checkpoint-* folder or true."
            )
        if not os.path.isfile(os.path.join(resume, "trainer_state.json")):
            raise ValueError(
                f"checkpoint {resume!r} has no trainer_state.json: it is incomplete (interrupted while saving?); "
                "resume from an earlier checkpoint."
            )
        return resume
    latest = latest_complete_checkpoint(output_dir)
    if latest is None:
        raise ValueError(
            f"--resume_from_checkpoint true, but output_dir {output_dir!r} has no complete checkpoint-* folder; pass "
            "a checkpoint path, or train without it."
        )
    return latest
