"""The cache and validation of BASIS's reference rewards (the offline stage's output).

The cache is keyed by everything that determines a reference reward (model identity, reward functions and weights,
sampling settings and every dataset column), validated on load (an invalid entry is reported and recomputed, never
used) and written atomically. `check_reference_rewards` validates a user-provided column the same way.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable
from typing import Any

from ._io import write_json_atomically


def reference_cache_key(fields: dict[str, Any], rows: Iterable[dict[str, Any]]) -> str:
    """Hash of everything the reference rewards depend on: model, reward functions, sampling settings and EVERY
    column of every row (TRL passes all of them to the reward functions, e.g. `answer`)."""
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode())
    for row in rows:
        digest.update(json.dumps(row, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:32]


def model_fingerprint(model: Any, revision: str | None = None) -> dict[str, Any]:
    """Identity of a model for the cache: its name or path, revision and commit, its config and, for a local
    folder, its weight files (size and modification time)."""
    config = getattr(model, "config", None)
    name = getattr(config, "_name_or_path", None) or str(model)
    fingerprint: dict[str, Any] = {"name": name}
    if revision is not None:
        fingerprint["revision"] = revision
    commit = getattr(config, "_commit_hash", None)  # set by transformers for Hub checkpoints
    if commit is not None:
        fingerprint["commit"] = commit
    if config is not None:
        fingerprint["config"] = hashlib.sha256(config.to_json_string().encode()).hexdigest()
    if os.path.isdir(name):  # retraining weights in place must not hit a stale cache
        fingerprint["files"] = sorted(
            (f, os.path.getsize(os.path.join(name, f)), int(os.path.getmtime(os.path.join(name, f))))
            for f in os.listdir(name)
            if f.endswith((".safetensors", ".bin"))
        )
    return fingerprint


# Weighted rewards a hair outside [0, 1] are float round-off of weights that sum to 1, not user error.
RANGE_TOLERANCE = 1e-5


def reference_rewards_problem(rows: Any, column: str = "reference_rewards") -> str | None:
    """Why `rows` is not a valid reference-reward column, or None when it is.

    Valid: one list per prompt of N >= 1 rewards, each a number in [0, 1] or None/NaN (a missing sample).
    Rows may have different N (missing samples).
    """
    if isinstance(rows, str | bytes | dict) or not isinstance(rows, Iterable):
        return f"column {column!r} must hold one list of rewards per prompt; got {type(rows).__name__}"
    for i, row in enumerate(rows):  # a list, or a `datasets` Column
        if not isinstance(row, list | tuple):
            return f"row {i} of column {column!r} is {row!r} ({type(row).__name__}), not a list of rewards"
        if len(row) == 0:
            return f"row {i} of column {column!r} has no reference reward; give each prompt N >= 1"
        for value in row:
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                return f"row {i} of column {column!r} holds {value!r} ({type(value).__name__}), not a number"
            if value != value:  # NaN: a missing sample
                continue
            if not -RANGE_TOLERANCE <= value <= 1 + RANGE_TOLERANCE:
                return f"row {i} of column {column!r} holds {value!r}, outside [0, 1]"
    return None


def check_reference_rewards(rows: Any, column: str) -> None:
    """Raise a one-line `ValueError` naming the column, the row and the fix when `rows` is not valid."""
    problem = reference_rewards_problem(rows, column)
    if problem is not None:
        raise ValueError(
            f"{problem}. BASIS needs, per prompt, the rewards in [0, 1] of N completions of the reference policy "
            "(None or NaN for a missing one): fix the column, or drop it to have them sampled (num_reference_samples "
            ">= 1)."
        )


def _warn(message: str) -> None:
    print(f"\n[trl_basis] warning: {message}", file=sys.stderr, flush=True)


def _rows_problem(rows: Any, num_rows: int, num_samples: int | None) -> str | None:
    """Why `rows` is not `num_rows` valid rows of `num_samples` reference rewards each (None: it is)."""
    problem = reference_rewards_problem(rows, "reference_rewards")
    if problem is None and not isinstance(rows, list):
        problem = "it is not a list of rows"
    if problem is None and len(rows) != num_rows:
        problem = f"it holds {len(rows)} prompts, not {num_rows}"
    if problem is None and num_samples is not None:
        # Rows of another length were sampled with another num_reference_samples (or were cut short).
        wrong = next((i for i, row in enumerate(rows) if len(row) != num_samples), None)
        if wrong is not None:
            problem = f"row {wrong} holds {len(rows[wrong])} rewards, not num_reference_samples={num_samples}"
    return problem


def _as_floats(rows: list[list[Any]]) -> list[list[float]]:
    return [[math.nan if v is None else float(v) for v in row] for row in rows]


def load_cached_rewards(
    cache_dir: str | None, key: str, num_rows: int, num_samples: int | None = None
) -> list[list[float]] | None:
    """The cached `(P, N)` reference rewards for `key`, or None when absent or invalid.

    An entry that cannot be read or fails validation (truncated, not JSON, wrong shape, rows of another length than
    `num_samples`, values outside [0, 1]) is reported in one warning line and ignored: the caller recomputes it,
    never uses it.
    """
    if cache_dir is None:
        return None
    path = os.path.join(os.path.expanduser(cache_dir), f"{key}.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            entry = json.load(f)
        rewards = entry["reference_rewards"] if isinstance(entry, dict) else None
        problem = _rows_problem(rewards, num_rows, num_samples)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError) as err:
        problem = f"it cannot be read ({type(err).__name__})"
    if problem is not None:
        _warn(f"ignoring the invalid reference-reward cache entry {path}: {problem}; recomputing it.")
        return None
    return _as_floats(rewards)


# ---------------------------------------------------------------------------------------------- partial progress
def partial_dir(cache_dir: str, key: str) -> str:
    """Folder of the completed chunks of an offline stage that has not finished yet (next to its future entry)."""
    return os.path.join(os.path.expanduser(cache_dir), f"{key}.partial")


def save_partial_rewards(cache_dir: str, key: str, indices: list[int], rows: list[list[float]]) -> None:
    """Save one completed chunk of the offline stage atomically: the prompt indices and their rewards. A failed
    write is a warning: the stage goes on, it only loses the ability to resume from this chunk."""
    folder = partial_dir(cache_dir, key)
    path = os.path.join(folder, f"chunk-{indices[0]:09d}.json")
    try:
        os.makedirs(folder, exist_ok=True)
        write_json_atomically(path, {"indices": indices, "reference_rewards": rows})
    except OSError as err:
        _warn(f"could not save the offline-stage chunk {path} ({type(err).__name__}: {err}).")


def load_partial_rewards(cache_dir: str | None, key: str, num_rows: int, num_samples: int) -> dict[int, list[float]]:
    """The rows an interrupted offline stage completed: prompt index -> its `num_samples` rewards.

    Each chunk is validated like a cache entry (readable, indices in range and not repeated, one valid row of
    `num_samples` rewards per index); an invalid chunk is reported in one warning line and ignored, so its prompts
    are sampled again.
    """
    if cache_dir is None or not os.path.isdir(partial_dir(cache_dir, key)):
        return {}
    done: dict[int, list[float]] = {}
    folder = partial_dir(cache_dir, key)
    for name in sorted(os.listdir(folder)):
        if not (name.startswith("chunk-") and name.endswith(".json")):
            continue  # e.g. the temporary of a write that was interrupted
        path = os.path.join(folder, name)
        try:
            with open(path) as f:
                entry = json.load(f)
            indices = entry["indices"] if isinstance(entry, dict) else None
            rows = entry["reference_rewards"] if isinstance(entry, dict) else None
            problem = _indices_problem(indices, num_rows, done)
            if problem is None:
                problem = _rows_problem(rows, len(indices), num_samples)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError) as err:
            problem = f"it cannot be read ({type(err).__name__})"
        if problem is not None:
            _warn(f"ignoring the invalid offline-stage chunk {path}: {problem}; its prompts are sampled again.")
            continue
        done.update(zip(indices, _as_floats(rows), strict=True))
    return done


def _indices_problem(indices: Any, num_rows: int, done: dict[int, Any]) -> str | None:
    if not isinstance(indices, list) or not indices:
        return "it holds no list of prompt indices"
    if any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < num_rows for i in indices):
        return f"its prompt indices are not all whole numbers in [0, {num_rows})"
    if len(set(indices)) != len(indices) or any(i in done for i in indices):
        return "it repeats prompt indices"
    return None


def clear_partial_rewards(cache_dir: str, key: str) -> None:
    """Remove the chunks once the whole entry is written (they are a subset of it)."""
    shutil.rmtree(partial_dir(cache_dir, key), ignore_errors=True)


def cache_is_writable(cache_dir: str | None) -> bool:
    """Whether the cache folder exists or can be made, and takes a file. Checked BEFORE the offline stage samples,
    so that an unusable cache costs a warning, not the sampled work."""
    if cache_dir is None:
        return False
    folder = os.path.expanduser(cache_dir)
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as err:
        _warn(
            f"the reference-reward cache {cache_dir!r} is not usable ({type(err).__name__}: {err}); the offline stage "
            "runs without it. Set reference_cache_dir to a writable folder, or to null."
        )
        return False
    return True


def save_cached_rewards(
    cache_dir: str | None, key: str, rewards: list[list[float]], meta: dict[str, Any]
) -> str | None:
    """Write the reference rewards atomically (a crash never leaves a truncated cache entry). A failed write is a
    warning: the computed rewards are used all the same."""
    if cache_dir is None:
        return None
    folder = os.path.expanduser(cache_dir)
    path = os.path.join(folder, f"{key}.json")
    try:
        os.makedirs(folder, exist_ok=True)
        write_json_atomically(path, {"meta": meta, "reference_rewards": rewards}, default=str)
    except OSError as err:
        _warn(f"could not write the reference-reward cache entry {path} ({type(err).__name__}: {err}).")
        return None
    return path
