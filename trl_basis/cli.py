"""`trl-basis`: the command line (also `python -m trl_basis`), shaped like TRL's `trl grpo`.

    trl-basis train [--config FILE.yaml] [--trainer basis|maxpo|grpo] [--option value ...]
    trl-basis estimate-references [--config FILE.yaml] [--save_path DIR] [--option value ...]

The scripts behind the commands (`trl_basis.scripts.train`, `trl_basis.scripts.estimate_references`) have TRL's
`make_parser()` and `main(script_args, training_args, model_args)`; their `TrlParser` reads the YAML file (exporting
its `env`) and the flags (flags win), and the dataclasses' `__post_init__` check the values. This module peeks at
`--trainer` (it picks the config class, hence which options exist; without it, `--advantage_estimator` picks it) and
`--config`, checks option names and value types from the options spec without importing torch (`trl_basis._cli_spec`),
adds the defaults of the built-in tiny task on CPU, then hands everything to the parser. With no arguments,
`trl-basis train` trains BASIS on the shipped tiny model and arithmetic task, on CPU, in a few minutes. Bad input
stops with one line on stderr and exit code 2 before any model loads; so does a library `ValueError` later on
(`TRL_BASIS_TRACEBACK=1` shows its traceback).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
import warnings
from typing import Any

from . import _cli_spec
from .trainers.registry import TRAINERS

COMMANDS = {
    "train": "train BASIS, MaxPO or GRPO, evaluate held-out accuracy before/during/after, save model, metrics, plot",
    "estimate-references": "run BASIS's offline stage alone and save the dataset with the reference-reward column",
}
USAGE = (
    "usage: trl-basis {train,estimate-references} [--config FILE.yaml] [--option value ...]\n\n"
    + "\n".join(f"  {name:<20} {text}" for name, text in COMMANDS.items())
    + "\n\n`trl-basis COMMAND --help` lists the main options, `--help-all` every one. Launch on several GPUs with\n"
    "  accelerate launch --config_file accelerate_configs/multi_gpu.yaml -m trl_basis train --config FILE.yaml"
)

CHECKPOINTING = {"gradient_checkpointing", "activation_checkpointing"}  # transformers 5 renamed the first


class CLIError(Exception):
    """Bad input: the message (one line) says what to change. Raised before any model loads where possible."""


class Interrupted(Exception):  # noqa: N818 - names what happened, like KeyboardInterrupt
    """Ctrl-C stopped training after the model and the metrics so far were saved; the message says where."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `trl-basis` console script. Returns the exit code."""
    started = time.perf_counter()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):  # no command: argparse's usage and exit 2; --help: exit 0
        print(USAGE, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    try:
        if command not in COMMANDS:
            raise CLIError(f"unknown command {command!r}; use one of {', '.join(COMMANDS)} (see trl-basis --help).")
        if {"-h", "--help", "--help-all"} & set(rest):
            print(help_for(command, rest))
            return 0
        args = parse(command, rest)  # before the script's import: bad input answers without importing torch
        # As `trl <command>` does: the command names its script, whose `main` takes the parsed dataclasses.
        script = importlib.import_module(f".scripts.{command.replace('-', '_')}", __package__)
        script.main(*args, **({"started": started} if command == "train" else {}))
    except CLIError as err:
        return _fail(str(err))
    except Interrupted as err:
        return _fail(str(err), code=130)
    except KeyboardInterrupt:  # before training started (model load, offline stage): nothing to save yet
        message = "interrupted before training started; nothing was saved (the reference cache keeps only complete "
        return _fail(message + "entries, so the next run samples again).", code=130)
    except ValueError as err:  # the library's own checks (data, rewards, trainers): one line, no traceback
        if os.environ.get("TRL_BASIS_TRACEBACK", "0").lower() in ("1", "true", "yes"):
            raise
        return _fail(str(err))
    return 0


def _fail(message: str, code: int = 2) -> int:
    tqdm = getattr(sys.modules.get("tqdm"), "tqdm", None)
    if getattr(tqdm, "_instances", None):
        print(file=sys.stderr)  # a progress bar may be mid-line: start the message on a line of its own
    print(f"trl-basis: error: {' '.join(message.split())}", file=sys.stderr)
    return code


# ---------------------------------------------------------------------------------------------------- parsing
def parse(command: str, argv: list[str], check_model_path: bool = True) -> tuple[Any, Any, Any]:
    """Parse `argv` of `command` into `(script_args, trainer_config, model_config)`; `CLIError` on bad input.

    Peeks at `--config` and `--trainer` (or `--advantage_estimator`), checks names, values and the model path from
    the spec (no heavy import), then `TrlParser.parse_args_and_config` applies this run's defaults, the YAML file and
    the flags, in that order. Finally checks the paths the run writes and resumes from. Loads no model, tokenizer or
    dataset.
    """
    argv = _normalized(argv)
    config_path, config = read_yaml(argv)
    trainer = trainer_name(argv, config, config_path) if command == "train" else "basis"
    check_input(command, trainer, argv, config, config_path, check_model_path)
    defaults = cli_defaults(command, trainer, argv, config)
    if command == "train":  # the trainer picked above (by --advantage_estimator, say) is the script's too
        defaults["trainer"] = trainer
    parser = build_parser(command, trainer)
    parser.set_defaults_with_config(**defaults)
    with warnings.catch_warnings():
        # GRPOConfig defaults `gradient_checkpointing=True`, which transformers reports as a deprecated alias.
        warnings.simplefilter("ignore", FutureWarning)
        if command == "estimate-references":  # no training here: the generation batch does not matter
            warnings.filterwarnings("ignore", message="BASIS pools its baseline", category=UserWarning)
        try:
            # The YAML keys this command ignores (a training YAML given to estimate-references) come back as the
            # config file's remaining strings: checked above, so dropped.
            script_args, training_args, model_args, _, remaining = parser.parse_args_and_config(
                argv, return_remaining_strings=True, separate_remaining_strings=True
            )
        except (ValueError, TypeError, FileNotFoundError, ImportError) as err:
            raise CLIError(str(err)) from err
    if remaining:
        raise CLIError(f"unexpected argument(s) {' '.join(map(str, remaining))}; options take the form --name value.")
    check_run(command, script_args, training_args, model_args)
    return script_args, training_args, model_args


def read_yaml(argv: list[str]) -> tuple[str | None, dict[str, Any]]:
    """The `--config` file of `argv` (path and mapping), read once for the checks `TrlParser` does not make."""
    if "--config" not in argv:
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
        raise CLIError(f"config file {path!r} is not valid YAML: {err}") from err
    if config is not None and not isinstance(config, dict):
        raise CLIError(f"config file {path!r} must hold a mapping of option: value.")
    return path, config or {}


def _normalized(argv: list[str]) -> list[str]:
    """`--config=FILE` as `--config FILE`, the only spelling `TrlParser` reads."""
    return [part for arg in argv for part in (["--config", arg[9:]] if arg.startswith("--config=") else [arg])]


def explicit_value(name: str, argv: list[str], config: dict[str, Any]):
    """The value of `--name` (or `--na-me`) on the command line (last one wins), else the YAML's, else None."""
    values = [value for flag, value in _cli_spec.flag_values(argv) if flag == name]
    return values[-1] if values else config.get(name)


def trainer_name(argv: list[str], config: dict[str, Any] | None = None, config_path: str | None = None) -> str:
    """The `--trainer` of a command line, else its `--config` YAML's `trainer:`, else the trainer of its
    `--advantage_estimator` (`trainer_for_estimator`: "maxpo" for a group estimator), else "basis". Read before
    parsing, as `trl` reads its command: the trainer picks the config class, hence the parser."""
    if config is None:
        config_path, config = read_yaml(_normalized(argv))
    trainer = explicit_value("trainer", argv, config)
    estimator = explicit_value("advantage_estimator", argv, config)
    if not trainer and estimator is not None:  # only then import the estimator registry (and torch)
        from .trainers.registry import trainer_for_estimator

        trainer = trainer_for_estimator(str(estimator))
    trainer = str(trainer or "basis")
    if trainer not in TRAINERS:
        where = config_path if explicit_value("trainer", argv, {}) is None else "--trainer"
        raise CLIError(f"unknown trainer {trainer!r} (from {where}); use one of {', '.join(TRAINERS)}.")
    return trainer


def build_parser(command: str, trainer: str = "basis"):
    """The script's parser, a `TrlParser` whose argparse errors are one-line `CLIError`s (`error` is argparse's
    documented override point) instead of the usage and `exit(2)`."""
    from trl import TrlParser

    from .scripts import estimate_references, train

    class Parser(TrlParser):
        def error(self, message: str):
            raise CLIError(f"{message} (see trl-basis {command} --help)")

    if command == "train":
        return train.make_parser(trainer, parser_class=Parser)
    return estimate_references.make_parser(parser_class=Parser)


def check_input(
    command: str, trainer: str, argv: list[str], config: dict, config_path: str | None, check_model_path: bool = True
) -> None:
    """Names and values of the YAML and the flags (from the spec), the deepspeed extra and an explicit model path:
    without importing torch, transformers or TRL, so that bad input answers in well under 2 s."""
    problem = _cli_spec.problem(command, trainer, argv, config, config_path)
    if problem:
        raise CLIError(problem)
    if explicit_value("deepspeed", argv, config) and importlib.util.find_spec("deepspeed") is None:
        raise CLIError(
            "--deepspeed needs the deepspeed package, an optional extra: pip install 'trl_basis[deepspeed]' (or "
            "pip install deepspeed)."
        )
    model = explicit_value("model_name_or_path", argv, config)
    if check_model_path and model is not None:
        from .models import check_model

        try:
            check_model(str(model))
        except ValueError as err:
            raise CLIError(str(err)) from err


def cli_defaults(command: str, trainer: str, argv: list[str], config: dict, cuda: bool | None = None) -> dict:
    """This run's defaults that differ from the dataclasses' (the built-in task's, the tiny model, CPU without a
    GPU), leaving out the options given in the YAML or as flags. `cuda`: whether a GPU is there (None: ask torch)."""
    from ._devices import deepspeed_without_gpu
    from .data import TASK_DEFAULTS, TASK_SHARED_DEFAULTS, is_builtin_task
    from .tasks.worlds import get_world

    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    explicit = set(config) | {name for name, _ in _cli_spec.flag_values(argv)}
    world, model = explicit_value("world", argv, config), explicit_value("model_name_or_path", argv, config)
    builtin = is_builtin_task(explicit_value("dataset_name", argv, config))
    defaults: dict[str, Any] = {"report_to": "none", "model_name_or_path": model}
    if model is None:
        from .tasks import tiny_model_path

        try:
            defaults["model_name_or_path"] = tiny_model_path(world)
        except FileNotFoundError as err:
            raise CLIError(f"{err} Or pass --model_name_or_path.") from err
    if builtin:  # the world's levels (DataArguments resolves the same when called directly)
        defaults["task_difficulties"] = list(get_world(world).difficulties)
    if command == "train" and builtin:
        defaults.update({**TASK_SHARED_DEFAULTS, **TASK_DEFAULTS[trainer], "activation_checkpointing": False})
        estimator = explicit_value("advantage_estimator", argv, config)  # a peer's run must not meet BASIS's folder
        name = "trl-basis-tiny" + ("" if trainer == "basis" else f"-{trainer}") + (f"-{world}" if world else "")
        name += f"-{estimator}" if estimator else ""
        defaults["output_dir"] = os.path.join("outputs", name)
    elif command == "train" and model is not None:
        defaults["output_dir"] = os.path.join("outputs", f"{os.path.basename(os.path.normpath(str(model)))}-{trainer}")
    if command == "estimate-references":
        defaults["output_dir"] = os.path.join("outputs", "trl_basis_reference_stage")  # removed when left empty
        # No training step to stay under in memory here: 64 prompts per generate call (128 for the tiny task).
        defaults["reference_batch_size"] = 128 if builtin else 64
        if builtin:
            defaults["max_completion_length"] = 8
    if not cuda:
        defaults.update(bf16=False, activation_checkpointing=False)
        deepspeed = "deepspeed" in explicit or os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true"
        defaults.update(deepspeed_without_gpu() if deepspeed else {"use_cpu": True})
    if explicit & CHECKPOINTING:  # either spelling given: the user's choice stands
        explicit |= CHECKPOINTING
    return {key: value for key, value in defaults.items() if key not in explicit}


# ---------------------------------------------------------------------------------------------------- after parsing
def check_run(command: str, script_args, training_args, model_args) -> None:
    """Where the run writes, what it resumes from and what it loads with (`trl_basis.runs`): checked before
    anything is sampled."""
    from .runs import check_writable_folder, refuse_existing_run, resume_path

    try:
        if command == "train":
            check_writable_folder(training_args.output_dir, "output_dir")
            if training_args.max_steps == 0 or training_args.max_steps < -1:
                raise CLIError(
                    "max_steps must be a positive number of optimizer steps (or -1 to train num_train_epochs); got "
                    f"{training_args.max_steps}."
                )
            training_args.resume_from_checkpoint = resume_path(
                training_args.resume_from_checkpoint, training_args.output_dir
            )
            if not script_args.overwrite_output_dir and training_args.resume_from_checkpoint is None:
                refuse_existing_run(training_args.output_dir)  # it would be replaced silently
        else:
            check_writable_folder(script_args.save_path, "save_path")
    except ValueError as err:
        raise CLIError(str(err)) from err
    if (model_args.load_in_4bit or model_args.load_in_8bit) and importlib.util.find_spec("bitsandbytes") is None:
        flag = "load_in_4bit" if model_args.load_in_4bit else "load_in_8bit"
        raise CLIError(f"--{flag} needs the bitsandbytes package (pip install bitsandbytes, on a CUDA machine).")


# ---------------------------------------------------------------------------------------------------- --help
def help_for(command: str, argv: list[str]) -> str:
    """`--help`: the grouped main options with the run's true defaults (no heavy import); `--help-all`: TRL's full
    argparse help of every option."""
    trainer = trainer_name(argv) if command == "train" else "basis"  # a bad --config or --trainer: CLIError
    if "--help-all" in argv:
        return build_parser(command, trainer).format_help()
    return _cli_spec.help_text(command, trainer, *help_defaults(command, trainer))


def help_defaults(command: str, trainer: str) -> tuple[dict[str, Any], set[str]]:
    """The defaults `--help` shows (`_cli_spec.help_entries`): a run's with no option on a machine without a GPU,
    and those only the built-in task uses."""
    builtin = cli_defaults(command, trainer, [], {}, cuda=False)
    other = cli_defaults(command, trainer, ["--dataset_name", "my/dataset"], {}, cuda=False)
    if command == "train":  # GRPOConfig resolves None to gradient_accumulation_steps (1 unless given)
        builtin.setdefault("steps_per_generation", builtin.get("gradient_accumulation_steps", 1))
    return builtin, {k for k, v in builtin.items() if k not in other or other[k] != v} - {"model_name_or_path"}


if __name__ == "__main__":
    raise SystemExit(main())
