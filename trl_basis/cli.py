"""`trl-basis`: the command line (also `python -m trl_basis`).

    trl-basis train [--config FILE.yaml] [--trainer basis|maxpo|grpo] [--option value ...]
    trl-basis estimate-references [--config FILE.yaml] [--save_path DIR] [--option value ...]

Arguments are parsed with TRL's `TrlParser`, the way `trl grpo` does: a script-arguments dataclass, the chosen
trainer's config class (`BASISConfig`, `MaxPOConfig` or `GRPOConfig`) and TRL's `ModelConfig` (LoRA included), from a
YAML file and/or flags (flags win). With no arguments, `trl-basis train` trains BASIS on the shipped tiny model and
arithmetic task, on CPU, in a few minutes. Bad input (unknown trainer or option, missing model path, dataset split or
column) stops with a one-line message on stderr and exit code 2 before any model loads.
"""

from __future__ import annotations

import difflib
import enum
import os
import sys
import time
import warnings
from typing import Any

from .main_job import CLIError
from .trainers.registry import TRAINERS as TRAINER_REGISTRY
from .trainers.registry import config_class as registry_config_class

TRAINERS = tuple(TRAINER_REGISTRY)
COMMANDS = {
    "train": "train BASIS, MaxPO or GRPO, evaluate held-out accuracy before/during/after, save model, metrics, plot",
    "estimate-references": "run BASIS's offline stage alone and save the dataset with the reference-reward column",
}
USAGE = (
    "usage: trl-basis {train,estimate-references} [--config FILE.yaml] [--option value ...]\n\n"
    + "\n".join(f"  {name:<20} {text}" for name, text in COMMANDS.items())
    + "\n\n`trl-basis COMMAND --help` lists every option. Launch on several GPUs with\n"
    "  accelerate launch --config_file accelerate_configs/multi_gpu.yaml -m trl_basis train --config FILE.yaml"
)

# Defaults of the built-in arithmetic task (the tiny model): a few minutes on 2 CPU cores. Per trainer, then shared.
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "basis": dict(per_device_train_batch_size=64, reference_batch_size=128),
    "maxpo": dict(per_device_train_batch_size=64, num_generations=8, max_k=4),
    "grpo": dict(per_device_train_batch_size=64, num_generations=8),
}
TASK_SHARED_DEFAULTS: dict[str, Any] = dict(
    max_steps=300,
    # Where BASIS and GRPO both learn on the tiny model (docs/tiny_model.md, "Learning rate"): at 1e-4 GRPO@8 degrades
    # it, at 3e-4 both collapse.
    learning_rate=5e-5,
    lr_scheduler_type="constant_with_warmup",
    warmup_steps=5,
    max_completion_length=8,
    temperature=1.0,
    logging_steps=1,
    save_strategy="no",
    seed=0,
)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `trl-basis` console script. Returns the exit code."""
    started = time.perf_counter()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        return _fail(f"unknown command {command!r}; use one of {', '.join(COMMANDS)} (see trl-basis --help).")
    try:
        script_args, training_args, model_args = parse(command, rest)
        from . import main_job

        if command == "train":
            main_job.run_train(script_args, training_args, model_args, started=started)
        else:
            main_job.run_estimate_references(script_args, training_args, model_args)
    except CLIError as err:
        return _fail(str(err))
    except KeyboardInterrupt:  # before training started (model load, offline stage): nothing to save yet
        return _fail(
            "interrupted before training started; nothing was saved (the reference cache keeps only complete "
            "entries, so the next run samples again).",
            code=130,
        )
    except Exception as err:
        from .main_job import Interrupted

        if isinstance(err, Interrupted):
            return _fail(str(err), code=130)
        raise
    return 0


def _fail(message: str, code: int = 2) -> int:
    try:  # a progress bar may be mid-line: start the message on a line of its own
        from tqdm import tqdm

        if getattr(tqdm, "_instances", None):
            print(file=sys.stderr)
    except ImportError:
        pass
    print(f"trl-basis: error: {' '.join(message.split())}", file=sys.stderr)
    return code


# ---------------------------------------------------------------------------------------------------- parsing
def parse(command: str, argv: list[str], check_model_path: bool = True) -> tuple[Any, Any, Any]:
    """Parse `argv` of `command` into `(script_args, trainer_config, model_config)`; `CLIError` on bad input.

    As `TrlParser.parse_args_and_config`: the YAML file (`--config`) replaces the defaults, flags override the YAML,
    and its `env` mapping is exported. Every key and flag is checked first, then (with `check_model_path`) that the
    model exists locally or can be fetched. Nothing heavy happens here: no model, tokenizer or dataset is loaded.
    """
    argv = list(argv)
    config_path, config = _read_yaml(argv)
    for key in ("reward_funcs", "task_difficulties"):  # a YAML scalar where a list belongs: one item, not letters
        if isinstance(config.get(key), str | int) and not isinstance(config.get(key), bool):
            config[key] = [config[key]]
    flags = _flag_names(argv)
    trainer = _pick_trainer(command, argv, config, config_path)
    parser = build_parser(command, trainer)

    known = {action.dest for action in parser._actions} | {"env"}
    ignored = set()
    if command == "estimate-references":  # a training YAML works here too: its training-only keys are ignored
        ignored = {action.dest for action in build_parser("train", "basis")._actions} - known
    for key in config:
        if key not in known | ignored:
            hint = _options_hint(command, trainer)
            raise CLIError(f"unknown key {key!r} in {config_path}{_suggest(key, known)}; {hint}")
    _check_yaml_types(config, parser, config_path)
    for name in flags:
        if name not in known and name not in ("help", "h", "config"):
            hint = _options_hint(command, trainer)
            raise CLIError(f"unknown option --{name}{_suggest(name, known, prefix='--')}; {hint}")
    env = config.get("env", {})
    if not isinstance(env, dict):
        raise CLIError(f"`env` in {config_path} must be a mapping of NAME: value.")
    os.environ.update({str(k): str(v) for k, v in env.items()})

    explicit = set(config) | set(flags)
    defaults = cli_defaults(command, trainer, explicit, _explicit_value("dataset_name", argv, config))
    wants_help = bool({"-h", "--help"} & set(argv))
    model_name = _explicit_value("model_name_or_path", argv, config)
    if model_name is None and not wants_help:
        defaults["model_name_or_path"] = _tiny_model()
    elif model_name is not None and command == "train" and "output_dir" not in explicit | set(defaults):
        defaults["output_dir"] = os.path.join(
            "outputs", f"{os.path.basename(os.path.normpath(str(model_name)))}-{trainer}"
        )
    parser.set_defaults_with_config(**defaults)
    parser.set_defaults_with_config(**{k: v for k, v in config.items() if k not in ignored and k != "env"})

    args = _without_config_flag(argv)
    with warnings.catch_warnings():
        # GRPOConfig defaults `gradient_checkpointing=True`, which transformers reports as a deprecated alias.
        warnings.simplefilter("ignore", FutureWarning)
        try:
            script_args, training_args, model_args, remaining = parser.parse_args_into_dataclasses(
                args=args, return_remaining_strings=True
            )
        except CLIError:
            raise
        except (ValueError, TypeError, FileNotFoundError, ImportError) as err:
            raise CLIError(str(err)) from err
    if remaining:
        raise CLIError(f"unexpected argument(s) {' '.join(map(str, remaining))}; options take the form --name value.")

    if check_model_path:
        from .main_job import check_model

        check_model(model_args.model_name_or_path)
    _check_script_args(command, script_args)
    _check_paths(command, script_args, training_args, model_args)
    if command == "train" and (training_args.max_steps == 0 or training_args.max_steps < -1):
        raise CLIError(
            f"max_steps must be a positive number of optimizer steps (or -1 to train num_train_epochs); got "
            f"{training_args.max_steps}."
        )
    return script_args, training_args, model_args


def build_parser(command: str, trainer: str = "basis"):
    """The `TrlParser` of `command`: script arguments, the trainer's config class and TRL's `ModelConfig`."""
    from trl import ModelConfig, TrlParser

    from .main_job import ReferenceScriptArguments, TrainScriptArguments

    class Parser(TrlParser):
        def error(self, message):  # argparse would print the usage and exit; we want one line
            raise CLIError(f"{message} (see trl-basis {command} --help)")

    if command == "train":
        types = (TrainScriptArguments, config_class(trainer), ModelConfig)
    else:
        types = (ReferenceScriptArguments, config_class("basis"), ModelConfig)
    return Parser(types, prog=f"trl-basis {command}" + (f" --trainer {trainer}" if command == "train" else ""))


def config_class(trainer: str):
    return registry_config_class(trainer)


def cli_defaults(command: str, trainer: str, explicit: set[str], dataset_name: str | None) -> dict[str, Any]:
    """Defaults that differ from the dataclasses' for this run; keys given in the YAML or as flags are left out."""
    import torch

    from .main_job import is_builtin_task

    defaults: dict[str, Any] = {"report_to": "none"}
    if command == "train" and is_builtin_task(dataset_name):
        defaults.update(TASK_SHARED_DEFAULTS)
        defaults.update(TASK_DEFAULTS[trainer])
        defaults["output_dir"] = os.path.join(
            "outputs", "trl-basis-tiny" + ("" if trainer == "basis" else f"-{trainer}")
        )
        if not explicit & {"gradient_checkpointing", "activation_checkpointing"}:
            defaults["activation_checkpointing"] = False  # pointless for a tiny model
    if command == "estimate-references":
        defaults["output_dir"] = os.path.join("outputs", "trl_basis_reference_stage")  # removed when left empty
        if is_builtin_task(dataset_name):
            defaults.update(max_completion_length=8, reference_batch_size=128)
    if not torch.cuda.is_available():
        defaults["bf16"] = False
        if not explicit & {"gradient_checkpointing", "activation_checkpointing"}:
            defaults["activation_checkpointing"] = False
        if "deepspeed" in explicit or os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
            defaults.update(_deepspeed_without_gpu())
        else:
            defaults["use_cpu"] = True
    return {key: value for key, value in defaults.items() if key not in explicit}


def _deepspeed_without_gpu() -> dict[str, Any]:
    """DeepSpeed on CPU (tests, debugging). accelerate drops DeepSpeed when `use_cpu=True`, and without a GPU it picks
    no process-group backend; so we set up accelerate's state for DeepSpeed on gloo ourselves and tell the trainer to
    use it (`use_configured_state`). Set DS_ACCELERATOR=cpu."""
    from accelerate import PartialState

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 or "LOCAL_RANK" in os.environ:
        previous = os.environ.get("ACCELERATE_USE_DEEPSPEED")
        os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
        PartialState(backend="gloo")
        if previous is None:
            del os.environ["ACCELERATE_USE_DEEPSPEED"]
        return {"use_cpu": False, "accelerator_config": {"use_configured_state": True}}
    return {"use_cpu": False}


def _check_script_args(command: str, script_args) -> None:
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


def _check_paths(command: str, script_args, training_args, model_args) -> None:
    """Where the run will write, what it resumes from and what it loads with: checked before anything is sampled."""
    import importlib.util

    if command == "train":
        _check_writable_folder(training_args.output_dir, "output_dir")
        _check_resume(training_args)
    else:
        _check_writable_folder(script_args.save_path, "save_path")
    if (model_args.load_in_4bit or model_args.load_in_8bit) and importlib.util.find_spec("bitsandbytes") is None:
        flag = "load_in_4bit" if model_args.load_in_4bit else "load_in_8bit"
        raise CLIError(f"--{flag} needs the bitsandbytes package (pip install bitsandbytes, on a CUDA machine).")


def _check_writable_folder(path: str, option: str) -> None:
    if os.path.exists(path) and not os.path.isdir(path):
        raise CLIError(f"{option} {path!r} is a file; pass a folder.")
    from ._io import nearest_existing

    existing = nearest_existing(path)  # the nearest folder that exists must let us create the rest
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
        raise CLIError(f"{option} {path!r} cannot be written ({existing!r} is not a writable folder); pass another.")


def _check_resume(training_args) -> None:
    resume = training_args.resume_from_checkpoint
    if resume is None:
        return
    if str(resume).lower() in ("true", "false", "yes", "no"):
        truthy = str(resume).lower() in ("true", "yes")
        training_args.resume_from_checkpoint = None
        if truthy:  # the latest COMPLETE checkpoint (HF would take the latest folder, even a half-written one)
            training_args.resume_from_checkpoint = _latest_complete_checkpoint(training_args.output_dir)
        return
    if not os.path.isdir(resume):
        raise CLIError(f"--resume_from_checkpoint {resume!r} is not a folder; pass a checkpoint-* folder or true.")
    if not os.path.isfile(os.path.join(resume, "trainer_state.json")):
        raise CLIError(
            f"checkpoint {resume!r} has no trainer_state.json: it is incomplete (interrupted while saving?); resume "
            "from an earlier checkpoint."
        )


def _latest_complete_checkpoint(folder: str) -> str:
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


def _tiny_model() -> str:
    from .tasks import tiny_model_path

    try:
        return tiny_model_path()
    except FileNotFoundError as err:
        raise CLIError(f"{err} Or pass --model_name_or_path.") from err


# ---------------------------------------------------------------------------------------------------- pre-parsing
def _read_yaml(argv: list[str]) -> tuple[str | None, dict[str, Any]]:
    if "--config" not in argv and not any(a.startswith("--config=") for a in argv):
        return None, {}
    path = _explicit_value("config", argv, {})
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


def _check_yaml_types(config: dict[str, Any], parser, config_path: str | None) -> None:
    """YAML values of the wrong type (a float for an integer option, a list for a number, null for a required
    value) get a one-line error here: TrlParser takes YAML values as defaults, which argparse never type-checks, so
    they would otherwise fail deep inside the config classes, or not at all."""
    import dataclasses
    import typing

    hints: dict[str, Any] = {}
    for cls in parser.dataclass_types:
        resolved = typing.get_type_hints(cls)
        hints.update({f.name: resolved.get(f.name) for f in dataclasses.fields(cls) if f.init})
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


def _without_config_flag(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--config":
            skip = True
        elif not arg.startswith("--config="):
            out.append(arg)
    return out


def _flag_names(argv: list[str]) -> list[str]:
    """Option names given as flags, with dashes read as underscores (`--max-steps` is `max_steps`)."""
    return [a[2:].split("=", 1)[0].replace("-", "_") for a in argv if a.startswith("--") and len(a) > 2]


def _explicit_value(name: str, argv: list[str], config: dict[str, Any]):
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


def _pick_trainer(command: str, argv: list[str], config: dict[str, Any], config_path: str | None) -> str:
    if command != "train":
        return "basis"
    trainer = _explicit_value("trainer", argv, config)
    trainer = "basis" if trainer is None else str(trainer)
    if trainer not in TRAINERS:
        where = "--trainer" if "trainer" in _flag_names(argv) else config_path
        raise CLIError(f"unknown trainer {trainer!r} (from {where}); use one of {', '.join(TRAINERS)}.")
    return trainer


def _suggest(name: str, known: set[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def _options_hint(command: str, trainer: str) -> str:
    if command == "train":
        return f"see `trl-basis train --trainer {trainer} --help` for the options of this trainer"
    return "see `trl-basis estimate-references --help`"


if __name__ == "__main__":
    raise SystemExit(main())
