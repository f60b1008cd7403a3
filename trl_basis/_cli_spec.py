"""What `trl-basis` knows about its options without importing torch, transformers or TRL: `--help` and the checks of
the YAML's keys and values and of the flags' names and values answer in well under 2 s.

`_cli_options.json` (next to this file) lists every option of every parser (`trl-basis train --trainer <name>` and
`trl-basis estimate-references`): its kind (int, float, bool, choice, ...), choices, the types a YAML value may have,
dataclass default, help and whether the trainer's config class declares it itself. It is generated from the real `TrlParser`s by
`python -m trl_basis._cli_spec`, with a fingerprint of the files that define options and of the TRL and
transformers versions: when that no longer matches (an option added, TRL upgraded) the spec is built from the
parsers instead, slower but never wrong, and `tests/test_cli_help.py` fails until the file is regenerated.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from functools import cache
from typing import Any

SPEC_FILE = os.path.join(os.path.dirname(__file__), "_cli_options.json")
HELP_WIDTH = 118

#: The options `trl-basis train --help` shows, grouped; everything else is under `--help-all`. The trainer's own
#: options (BASISConfig's or MaxPOConfig's) are added as a last group.
TRAIN_GROUPS: list[tuple[str, list[str]]] = [
    ("What to run", ["trainer", "model_name_or_path", "output_dir", "overwrite_output_dir", "resume_from_checkpoint"]),
    (
        "Data and rewards",
        ["dataset_name", "dataset_config", "question_column", "answer_column", "system_prompt", "reward_funcs"]
        + ["reward_weights", "max_train_samples", "world", "task_num_train", "task_num_test", "task_difficulties"],
    ),
    ("Held-out evaluation and outputs", ["eval_prompts", "eval_samples", "eval_points", "eval_batch_size", "plot"]),
    (
        "Training (the TRL options changed most often)",
        ["max_steps", "learning_rate", "lr_scheduler_type", "warmup_steps", "per_device_train_batch_size"]
        + ["steps_per_generation", "max_completion_length", "temperature", "beta", "loss_type", "seed"]
        + ["logging_steps", "report_to", "save_strategy", "save_steps"],
    ),
    (
        "Hardware, precision and LoRA",
        ["use_cpu", "bf16", "activation_checkpointing", "dtype", "use_peft", "lora_r", "lora_target_modules"]
        + ["use_vllm", "deepspeed"],
    ),
]
REFERENCE_GROUPS: list[tuple[str, list[str]]] = [
    ("What to run", ["model_name_or_path", "save_path", "output_dir"]),
    (
        "Data and rewards",
        ["dataset_name", "dataset_config", "question_column", "answer_column", "system_prompt", "reward_funcs"]
        + ["reward_weights", "max_train_samples", "world", "task_num_train", "task_difficulties"],
    ),
    (
        "The offline stage",
        ["num_reference_samples", "reference_batch_size", "reference_cache_dir", "max_completion_length"]
        + ["temperature", "seed", "use_cpu", "bf16"],
    ),
]
_TRAINER_TITLES = {"basis": "BASIS (BASISConfig)", "maxpo": "MaxPO (MaxPOConfig)", "grpo": "GRPO (TRL's GRPOConfig)"}
_GRPO_OWN = ["num_generations", "scale_rewards"]  # what a GRPO user tunes besides the shared options
#: Other spellings of an option that the parser accepts (transformers 5 renamed gradient_checkpointing).
ALIASES = {"activation_checkpointing": ("gradient_checkpointing",)}
#: Options that take a list where a YAML scalar means a list of one (`DataArguments.__post_init__` wraps it).
LIST_OPTIONS = ("reward_funcs", "task_difficulties")


def parser_key(command: str, trainer: str) -> str:
    return f"train:{trainer}" if command == "train" else command


#: The files that define options, their types, defaults and choices; with the installed TRL and transformers
#: versions they make the fingerprint that tells whether `_cli_options.json` is current.
SOURCES = (
    "trainers/*config.py",
    "trainers/registry.py",
    "scripts/*.py",
    "advantages/*.py",
    "tasks/arithmetic.py",
    "tasks/worlds.py",
)


def fingerprint() -> str:
    """Hash of `SOURCES` and the TRL/transformers versions (a few ms; imports neither)."""
    import glob
    import hashlib
    from importlib.metadata import version

    digest = hashlib.sha256()
    root = os.path.dirname(__file__)
    for pattern in SOURCES:
        for path in sorted(glob.glob(os.path.join(root, pattern))):
            digest.update(os.path.relpath(path, root).encode())
            with open(path, "rb") as f:
                digest.update(f.read())
    for package in ("trl", "transformers"):  # major.minor: patch releases do not add options
        digest.update(f"{package}=={'.'.join(version(package).split('.')[:2])}".encode())
    return digest.hexdigest()[:20]


@cache
def load() -> dict[str, dict[str, dict[str, Any]]]:
    """`{parser_key: {option: entry}}` from `_cli_options.json`; when the file is stale (an option was added, TRL
    upgraded), built from the parsers instead: slower (imports TRL), never wrong."""
    try:
        with open(SPEC_FILE, encoding="utf-8") as f:
            saved = json.load(f)
    except (OSError, ValueError):
        saved = {}
    if saved.get("fingerprint") == fingerprint():
        return saved["parsers"]
    return build_spec()


def options(command: str, trainer: str) -> dict[str, dict[str, Any]]:
    return load()[parser_key(command, trainer)]


# ---------------------------------------------------------------------------------------------------- fast checks
def problem(
    command: str, trainer: str, argv: list[str], config: dict[str, Any], config_path: str | None
) -> str | None:
    """The one-line message for the first unknown YAML key or flag (with a suggestion), YAML value of the wrong type
    or flag value argparse would refuse; None when all is well. TrlParser takes YAML values as defaults, which
    argparse never type-checks: they would otherwise fail deep inside the config classes, or not at all."""
    spec = options(command, trainer)
    see = (
        f"train --trainer {trainer} --help` for the options of this trainer"
        if command == "train"
        else f"{command} --help`"
    )
    # A training YAML given to estimate-references: the keys only training reads are ignored.
    ignored = set(options("train", "basis")) if command == "estimate-references" else set()
    for key, value in config.items():
        if key == "env":
            if not isinstance(value, dict):
                return f"`env` in {config_path} must be a mapping of NAME: value."
        elif key not in spec and key not in ignored:
            return f"unknown key {key!r} in {config_path}{_suggest(key, spec)}; see `trl-basis {see}"
        elif key in spec and (expected := yaml_value_problem(key, spec[key], value)):
            return f"option {key!r} in {config_path} must be {expected}; got {value!r} ({type(value).__name__})."
    for name, value in flag_values(argv):
        if name in ("help", "h", "config"):
            continue
        if name not in spec:
            return f"unknown option --{name}{_suggest(name, spec, '--')}; see `trl-basis {see}"
        if value is not None and (wrong := flag_value_problem(spec[name], value)):
            return f"argument --{name}: {wrong} (see trl-basis {command} --help)"
    return None


#: BASIS's temperature options renamed by issue 21: an old config gets the new name in its one-line error.
#: The other renames (TRL's `scale_rewards` replaces the old scaling option) are in docs/migration.md.
RENAMED = {
    "basis_beta_num": "basis_temperature_num",
    "basis_beta_min": "basis_temperature_min",
    "basis_beta_max": "basis_temperature_max",
}


def _suggest(name: str, known, prefix: str = "") -> str:
    import difflib

    if name in RENAMED and RENAMED[name] in known:
        return f" (renamed {prefix}{RENAMED[name]})"
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


_TYPE_NAMES = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string", "list": "a list"}


def yaml_value_problem(name: str, entry: dict[str, Any], value: Any) -> str | None:
    """What the YAML value of option `name` should have been (`entry["accepts"]`: the type names of its annotation),
    or None when it fits."""
    if value is not None and entry["choices"]:
        if value in entry["choices"]:
            return None
        quote = " (YAML reads an unquoted no/yes/on/off as false/true: quote it)" if isinstance(value, bool) else ""
        return f"one of {entry['choices']}{quote}"
    if name in LIST_OPTIONS and isinstance(value, str | int) and not isinstance(value, bool):
        value = [value]
    number = isinstance(value, int | float) and not isinstance(value, bool)
    fits = {
        "none": value is None,
        "bool": isinstance(value, bool),
        "int": number and isinstance(value, int),
        "float": number,
        "str": value is not None and not isinstance(value, bool | list | dict),
        "list": isinstance(value, list),
        "dict": isinstance(value, dict),
    }
    if any(fits.get(kind, True) for kind in entry["accepts"]):
        return None
    return " or ".join(
        dict.fromkeys(_TYPE_NAMES.get(kind, "a mapping") for kind in entry["accepts"] if kind != "none")
    )


_BOOL_WORDS = {"yes", "no", "true", "false", "y", "n", "t", "f", "1", "0"}


def flag_value_problem(entry: dict[str, Any], value: str) -> str | None:
    """argparse's message for a flag value it would refuse (int, float, bool, choices), or None when it is fine."""
    kind = entry["kind"]
    if kind == "int":
        try:
            int(value)
        except ValueError:
            return f"invalid int value: {value!r}"
    elif kind == "float":
        try:
            float(value)
        except ValueError:
            return f"invalid float value: {value!r}"
    elif kind == "bool" and value.lower() not in _BOOL_WORDS:
        return f"invalid bool value: {value!r} (use true or false)"
    elif entry.get("choices") and value not in entry["choices"]:
        choices = ", ".join(map(repr, entry["choices"]))
        return f"invalid choice: {value!r} (choose from {choices})"
    return None


def flag_values(argv: list[str]) -> list[tuple[str, str | None]]:
    """(option name, its first value or None) for each `--flag` of `argv`; dashes read as underscores."""
    out = []
    for i, arg in enumerate(argv):
        if not arg.startswith("--") or len(arg) == 2:
            continue
        name, eq, inline = arg[2:].partition("=")
        value = inline if eq else (argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else None)
        out.append((name.replace("-", "_"), value))
    return out


# ---------------------------------------------------------------------------------------------------- --help
def help_entries(
    command: str, trainer: str, run_defaults: dict[str, Any], task_only: set[str]
) -> list[tuple[str, list[tuple[str, Any, str]]]]:
    """`[(group title, [(option, default, help)])]` of `--help`: defaults are the run's (`run_defaults` over the
    dataclasses'), and `task_only` names the defaults that only the built-in task uses."""
    spec = options(command, trainer)
    if command == "train":
        own = _GRPO_OWN if trainer == "grpo" else [name for name, e in spec.items() if e.get("own")]
        groups = [*TRAIN_GROUPS, (f"{_TRAINER_TITLES[trainer]} options", own)]
    else:
        groups = REFERENCE_GROUPS
    out = []
    for title, names in groups:
        rows = []
        for name in names:
            entry = spec[name]
            default = run_defaults.get(name, entry["default"])
            rows.append((name, default, entry["help"] + (" [built-in task]" if name in task_only else "")))
        out.append((title, rows))
    return out


def format_default(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return " ".join(map(str, value)) or "none"
    return str(value)


def help_text(command: str, trainer: str, run_defaults: dict[str, Any], task_only: set[str]) -> str:
    """`trl-basis <command> --help`: the grouped options a user changes most, with the run's true defaults."""
    what = f"train --trainer {trainer}" if command == "train" else command
    lines = [
        f"usage: trl-basis {what} [--config FILE.yaml] [--option value ...]",
        "",
        "  --config FILE.yaml      YAML file of options (its `env:` mapping is exported); flags override it",
        "  --help-all              every option (all of TRL's GRPOConfig and ModelConfig too)",
        "",
        "Defaults are the ones this command uses with no other option, without a GPU; [built-in task] marks those of",
        "the built-in arithmetic task, which a run with --dataset_name does not use.",
    ]
    for title, rows in help_entries(command, trainer, run_defaults, task_only):
        lines += ["", f"{title}:"]
        for name, default, text in rows:
            names = ", ".join(f"--{n}" for n in (name, *ALIASES.get(name, ())))
            head = f"  {names} ({format_default(default)})"
            wrapped = textwrap.wrap(_short(text), HELP_WIDTH - 8)
            if len(wrapped) <= 1 and len(head) + 2 + len(wrapped[0] if wrapped else "") <= HELP_WIDTH:
                lines.append(f"{head}  {wrapped[0] if wrapped else ''}".rstrip())
            else:
                lines.append(head)
                lines += [f"        {w}" for w in wrapped]
    return "\n".join(lines)


def _short(text: str, max_lines: int = 2) -> str:
    """The leading sentences of an option's help that fit in `max_lines` lines (`--help-all` has the rest)."""
    text = " ".join(text.replace("%%", "%").split())
    tag = " [built-in task]" if text.endswith("[built-in task]") else ""
    text = text.removesuffix(tag)
    sentences, out = re.split(r"(?<=[.!?])\s+(?=[A-Z`'\[])", text), ""
    for sentence in sentences:
        candidate = f"{out} {sentence}".strip()
        if len(textwrap.wrap(candidate + tag, HELP_WIDTH - 8)) > max_lines:
            break
        out = candidate
    if not out:  # one long sentence: cut at a word
        out = textwrap.shorten(text, (HELP_WIDTH - 8) * max_lines - len(tag) - 4, placeholder=" ...")
    return out + tag


# ---------------------------------------------------------------------------------------------------- generation
def build_spec() -> dict[str, dict[str, dict[str, Any]]]:
    """The spec from the real parsers (imports TRL): what `_cli_options.json` must hold."""
    from .cli import build_parser
    from .trainers.registry import TRAINERS

    spec = {parser_key("train", t): _parser_options(build_parser("train", t)) for t in TRAINERS}
    spec["estimate-references"] = _parser_options(build_parser("estimate-references"))
    return spec


def _parser_options(parser) -> dict[str, dict[str, Any]]:
    import dataclasses
    import typing

    config_cls = parser.dataclass_types[1]
    own = set(vars(config_cls).get("__annotations__", {})) if config_cls.__module__.startswith("trl_basis") else set()
    docs, hints = {}, {}
    for cls in parser.dataclass_types:
        resolved = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            docs.setdefault(f.name, " ".join(str(f.metadata.get("help", "")).split()))
            if f.init:
                hints.setdefault(f.name, _accepts(resolved.get(f.name)))
    out: dict[str, dict[str, Any]] = {}
    for action in parser._actions:
        if action.dest == "help" or action.dest in out or not action.option_strings[0].startswith("--"):
            continue
        if type(action).__name__ in ("_StoreFalseAction", "_StoreTrueAction"):
            continue  # --no_<flag> aliases; the positive flag carries the entry
        out[action.dest] = {
            "kind": _kind(action),
            "choices": [_plain(c) for c in action.choices] if action.choices else None,
            "default": _plain(action.default),
            "help": docs.get(action.dest, ""),
            "own": action.dest in own,
            "accepts": hints.get(action.dest, ["any"]),
        }
    for name, value in _resolved_defaults(config_cls, own).items():
        if out.get(name, {}).get("default") is None:
            out[name]["default"] = value
    return dict(sorted(out.items()))


def _resolved_defaults(config_cls, own: set[str]) -> dict[str, Any]:
    """The trainer's own options whose `None` default `__post_init__` resolves (e.g. BASIS's `basis_fallback` and
    `basis_window`): `--help` shows what a run gets."""
    import warnings

    if not own:
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = config_cls(output_dir="trl_basis_help", use_cpu=True, bf16=False, report_to="none")
    return {name: _plain(getattr(config, name)) for name in own if getattr(config, name, None) is not None}


def _accepts(hint: Any) -> list[str]:
    """The type names a YAML value of a field annotated `hint` may have ("any": not checked; enums and literals are
    checked by their choices)."""
    import types
    import typing

    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    names = []
    for arg in typing.get_args(hint) if union else (hint,):
        base = typing.get_origin(arg) or arg
        names.append(
            "none" if arg is type(None) else base.__name__ if base in (int, float, bool, str, list, dict) else "any"
        )
    return names


def _kind(action) -> str:
    name = getattr(action.type, "__name__", "")
    if name == "string_to_bool":
        return "bool"
    if action.type in (int, float):
        return action.type.__name__
    if action.choices:
        return "choice"
    return "str" if action.type is str else "other"


def _plain(value: Any) -> Any:
    """A JSON value: enums by value, anything else not JSON-serialisable as its string."""
    import enum

    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def main() -> None:
    """Regenerate `_cli_options.json` (after changing an option, or with a new TRL)."""
    with open(SPEC_FILE, "w", encoding="utf-8") as f:
        json.dump({"fingerprint": fingerprint(), "parsers": build_spec()}, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {SPEC_FILE}")


if __name__ == "__main__":
    main()
