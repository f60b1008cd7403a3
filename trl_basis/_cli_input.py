"""The pre-pass of the `trl-basis` command line: what `TrlParser` does not check, with one-line errors.

`TrlParser` (used by `trl_basis.cli`) reads the YAML file, exports its `env` and applies flags over it. Before it
runs, this module reads the file once for its own checks (a folder, a binary file, invalid YAML, unknown keys with a
suggestion, values of the wrong type: TrlParser takes YAML values as defaults, which argparse never type-checks) and
for the two values that choose the parser (`--trainer`) and its defaults (`--dataset_name`). After parsing, it
checks the paths the run will write and resume from. Every problem raises `CLIError`.
"""

from __future__ import annotations

import difflib
import enum
import os
import sys
from typing import Any

from .trainers.registry import TRAINERS as TRAINER_REGISTRY

TRAINERS = tuple(TRAINER_REGISTRY)


class CLIError(Exception):
    """Bad input: the message (one line) says what to change. Raised before any model loads where possible."""


class Interrupted(Exception):  # noqa: N818 - names what happened, like KeyboardInterrupt
    """Training was interrupted (Ctrl-C) after the model and metrics so far were saved; the message says where.

    Raised by `trl_basis.scripts.train.main`; defined here so that the command line catches it without importing
    the training script (and torch) before it has to."""


# ---------------------------------------------------------------------------------------------------- the YAML file
def read_yaml(argv: list[str]) -> tuple[str | None, dict[str, Any]]:
    if "--config" not in argv and not any(a.startswith("--config=") for a in argv):
        return None, {}
    path = explicit_value("config", argv, {})
    if not path:
        raise CLIError("--config needs a YAML file path.")
    if os.path.isdir(path):
        raise CLIError(f"--config {path!r} is a folder; pass a YAML file (for example examples/tiny_basis.yaml).")
    if not os.path.isfile(path):
        raise CLIError(f"config file {path!r} does not exist.")
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            config = yaml.safe_load(f)
    except UnicodeDecodeError as err:
        raise CLIError(f"config file {path!r} is not UTF-8 text (is it a binary file?); pass a YAML file.") from err
    except yaml.YAMLError as err:
        raise CLIError(f"config file {path!r} is not valid YAML: {' '.join(str(err).split())}") from err
    if config is None:
        return path, {}
    if not isinstance(config, dict):
        raise CLIError(f"config file {path!r} must hold a mapping of option: value.")
    return path, config


def check_yaml_types(config: dict[str, Any], hints: dict[str, Any], config_path: str | None) -> None:
    """YAML values of the wrong type (a float for an integer option, a list for a number, null for a required
    value) get a one-line error here: TrlParser takes YAML values as defaults, which argparse never type-checks, so
    they would otherwise fail deep inside the config classes, or not at all. `hints`: option -> type annotation (read
    from the options spec, `trl_basis._cli_spec`, so that no dataclass needs importing)."""
    for key, value in config.items():
        expected = _type_problem(value, hints.get(key))
        if expected is not None:
            raise CLIError(
                f"option {key!r} in {config_path} must be {expected}; got {value!r} ({type(value).__name__})."
            )


def _type_problem(value: Any, hint: Any) -> str | None:
    """What `value` should have been for the annotation `hint`, or None when it fits (or the type is not checked)."""
    import types
    import typing

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        problems = [_type_problem(value, a) for a in args if a is not type(None)]
        return None if any(p is None for p in problems) else " or ".join(dict.fromkeys(p for p in problems if p))
    if hint is None or hint is Any:
        return None
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        choices = [member.value for member in hint]
        if value in choices or isinstance(value, hint):
            return None
        hint_text = (
            " (YAML reads an unquoted no/yes/on/off as false/true: quote it)" if isinstance(value, bool) else ""
        )
        return f"one of {choices}{hint_text}"
    if value is None:
        return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(hint, "a value")
    checks = {
        bool: ("true or false", lambda v: isinstance(v, bool)),
        int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
        float: ("a number", lambda v: isinstance(v, int | float) and not isinstance(v, bool)),
        str: ("a string", lambda v: not isinstance(v, bool | list | dict)),
    }
    if hint in checks:
        name, ok = checks[hint]
        return None if ok(value) else name
    if origin is list or hint is list:
        return None if isinstance(value, list) else "a list"
    if origin is dict or hint is dict:
        return None if isinstance(value, dict) else "a mapping"
    return None


def normalized_argv(argv: list[str]) -> list[str]:
    """`--config=FILE` as `--config FILE`, the only spelling `TrlParser` reads."""
    out = []
    for arg in argv:
        out.extend(["--config", arg.split("=", 1)[1]] if arg.startswith("--config=") else [arg])
    return out


def flag_names(argv: list[str]) -> list[str]:
    """Option names given as flags, with dashes read as underscores (`--max-steps` is `max_steps`)."""
    return [a[2:].split("=", 1)[0].replace("-", "_") for a in argv if a.startswith("--") and len(a) > 2]


def explicit_value(name: str, argv: list[str], config: dict[str, Any]):
    """The value of `--name` (or `--na-me`) on the command line (last one wins), else the YAML's, else None."""
    value = config.get(name)
    spellings = {f"--{name}", f"--{name.replace('_', '-')}"}
    for i, arg in enumerate(argv):
        flag, eq, inline = arg.partition("=")
        if flag in spellings:
            if eq:
                value = inline
            elif i + 1 < len(argv):
                value = argv[i + 1]
    return value


def pick_trainer(command: str, argv: list[str], config: dict[str, Any], config_path: str | None) -> str:
    if command != "train":
        return "basis"
    trainer = explicit_value("trainer", argv, config)
    trainer = "basis" if trainer is None else str(trainer)
    if trainer not in TRAINERS:
        where = "--trainer" if "trainer" in flag_names(argv) else config_path
        raise CLIError(f"unknown trainer {trainer!r} (from {where}); use one of {', '.join(TRAINERS)}.")
    return trainer


def suggest(name: str, known: set[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def options_hint(command: str, trainer: str) -> str:
    if command == "train":
        return f"see `trl-basis train --trainer {trainer} --help` for the options of this trainer"
    return "see `trl-basis estimate-references --help`"


# ---------------------------------------------------------------------------------------------------- after parsing
def check_deepspeed_installed(argv: list[str], config: dict[str, Any]) -> None:
    """DeepSpeed is an optional extra (as in TRL): `--deepspeed` without it gets the install command."""
    import importlib.util

    if explicit_value("deepspeed", argv, config) and importlib.util.find_spec("deepspeed") is None:
        raise CLIError(
            "--deepspeed needs the deepspeed package, an optional extra: pip install 'trl_basis[deepspeed]' (or "
            "pip install deepspeed)."
        )


def check_script_args(command: str, script_args) -> None:
    if script_args.dataset_streaming:
        raise CLIError(
            "dataset_streaming is not supported by trl-basis (BASIS's offline stage and the held-out evaluation need "
            "a map-style dataset); remove it, or use max_train_samples to train on part of a large dataset."
        )
    if command == "train":
        if script_args.trainer not in TRAINERS:
            raise CLIError(f"unknown trainer {script_args.trainer!r}; use one of {', '.join(TRAINERS)}.")
        for name in ("eval_prompts", "eval_points"):
            if getattr(script_args, name) < 0:
                raise CLIError(f"{name} must be >= 0; got {getattr(script_args, name)}.")
        if script_args.eval_samples < 1 or script_args.eval_batch_size < 1:
            raise CLIError("eval_samples and eval_batch_size must be >= 1.")


def check_paths(command: str, script_args, training_args, model_args) -> None:
    """Where the run will write, what it resumes from and what it loads with: checked before anything is sampled."""
    import importlib.util

    if command == "train":
        check_writable_folder(training_args.output_dir, "output_dir")
        check_resume(training_args)
        if not script_args.overwrite_output_dir and training_args.resume_from_checkpoint is None:
            check_no_previous_run(training_args.output_dir)
    else:
        check_writable_folder(script_args.save_path, "save_path")
    if (model_args.load_in_4bit or model_args.load_in_8bit) and importlib.util.find_spec("bitsandbytes") is None:
        flag = "load_in_4bit" if model_args.load_in_4bit else "load_in_8bit"
        raise CLIError(f"--{flag} needs the bitsandbytes package (pip install bitsandbytes, on a CUDA machine).")


def check_writable_folder(path: str, option: str) -> None:
    if os.path.exists(path) and not os.path.isdir(path):
        raise CLIError(f"{option} {path!r} is a file; pass a folder.")
    from ._io import nearest_existing

    existing = nearest_existing(path)  # the nearest folder that exists must let us create the rest
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
        raise CLIError(f"{option} {path!r} cannot be written ({existing!r} is not a writable folder); pass another.")


#: What a finished or checkpointed run leaves in its output_dir (the model, its adapter, our metrics, TRL's state).
RUN_FILES = ("config.json", "adapter_config.json", "model.safetensors", "metrics.json", "trainer_state.json")


def check_no_previous_run(folder: str) -> None:
    """A folder holding another run's model, metrics or checkpoints is refused: it would be replaced silently."""
    if not os.path.isdir(folder):
        return
    names = os.listdir(folder)
    found = [n for n in names if n in RUN_FILES or n.startswith("checkpoint-")]
    if found:
        raise CLIError(
            f"output_dir {folder!r} already holds a run ({', '.join(sorted(found)[:3])}); pass another --output_dir, "
            "or --overwrite_output_dir true to replace it (--resume_from_checkpoint true continues it)."
        )


def check_resume(training_args) -> None:
    resume = training_args.resume_from_checkpoint
    if resume is None:
        return
    if str(resume).lower() in ("true", "false", "yes", "no"):
        truthy = str(resume).lower() in ("true", "yes")
        training_args.resume_from_checkpoint = None
        if truthy:  # the latest COMPLETE checkpoint (HF would take the latest folder, even a half-written one)
            training_args.resume_from_checkpoint = latest_complete_checkpoint(training_args.output_dir)
        return
    if not os.path.isdir(resume):
        raise CLIError(f"--resume_from_checkpoint {resume!r} is not a folder; pass a checkpoint-* folder or true.")
    if not os.path.isfile(os.path.join(resume, "trainer_state.json")):
        raise CLIError(
            f"checkpoint {resume!r} has no trainer_state.json: it is incomplete (interrupted while saving?); resume "
            "from an earlier checkpoint."
        )


def latest_complete_checkpoint(folder: str) -> str:
    import re

    numbered = []
    if os.path.isdir(folder):
        for name in os.listdir(folder):
            match = re.fullmatch(r"checkpoint-(\d+)", name)
            if match and os.path.isdir(os.path.join(folder, name)):
                numbered.append((int(match.group(1)), os.path.join(folder, name)))
    numbered.sort()
    complete = [path for _, path in numbered if os.path.isfile(os.path.join(path, "trainer_state.json"))]
    if not complete:
        raise CLIError(
            f"--resume_from_checkpoint true, but output_dir {folder!r} has no complete checkpoint-* folder; pass a "
            "checkpoint path, or train without it."
        )
    if numbered[-1][1] != complete[-1]:
        print(
            f"trl-basis: note: {numbered[-1][1]} is incomplete (no trainer_state.json: interrupted while saving?); "
            f"resuming from {complete[-1]}.",
            file=sys.stderr,
        )
    return complete[-1]
