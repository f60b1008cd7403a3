"""Small file-system helpers shared by the trainers, the cache and the command line."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any


def write_json_atomically(path: str, data: Any, **dump_kwargs: Any) -> None:
    """Write JSON through a temporary file and a rename: the file appears whole or not at all, and an interrupted
    write (an error, Ctrl-C) leaves no temporary behind. `dump_kwargs` go to `json.dump` (e.g. `indent`)."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, **dump_kwargs)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)  # gone already after os.replace; a leftover of an interrupted write otherwise


def nearest_existing(path: str) -> str:
    """The absolute `path`, or its nearest ancestor that exists (what a run would have to create starts below it)."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    return existing


@contextlib.contextmanager
def removing_new_empty_folders(path: str):
    """Run the block, then remove `path` and the parents the block created while they are empty: only folders that
    did not exist before (a trainer's `output_dir` that nothing was written to), never the user's own."""
    existing = nearest_existing(path)
    yield
    created = os.path.abspath(path)
    while created != existing and os.path.isdir(created) and not os.listdir(created):
        os.rmdir(created)
        created = os.path.dirname(created)
