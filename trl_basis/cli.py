"""`trl-basis`: the command line (also `python -m trl_basis`).

    trl-basis train [--config FILE.yaml] [--trainer basis|maxpo|grpo] [--option value ...]
    trl-basis estimate-references [--config FILE.yaml] [--save_path DIR] [--option value ...]

The scripts behind the commands are TRL-shaped (`trl_basis.scripts.train`, `trl_basis.scripts.estimate_references`:
`make_parser()` and `main(script_args, training_args, model_args)`), and their `TrlParser` does the YAML file, its
`env` and the flags (flags win), as `trl grpo` does. This module adds what a new user needs around them: a pre-pass
that reads `--trainer` (it picks the config class, hence which options exist), defaults for the built-in tiny task
on CPU, and one-line errors (`trl_basis._cli_input`). With no arguments, `trl-basis train` trains BASIS on the shipped
tiny model and arithmetic task, on CPU, in a few minutes. Bad input (unknown trainer or option, a value of the wrong
type, a missing model path, dataset split or column) stops with a one-line message on stderr and exit code 2 before
any model loads; a `ValueError` of the library later on (e.g. a reward outside BASIS's range) is one line too (set
`TRL_BASIS_TRACEBACK=1` to see the traceback instead).
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from typing import Any

from . import _cli_spec
from ._cli_input import (  # CLIError and TRAINERS are part of this module's interface
    TRAINERS,  # noqa: F401
    CLIError,
    Interrupted,
    check_deepspeed_installed,
    check_paths,
    check_script_args,
    check_yaml_types,
    explicit_value,
    flag_names,
    normalized_argv,
    options_hint,
    pick_trainer,
    read_yaml,
    suggest,
)

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
    if not argv:  # like argparse without its required subcommand: usage, exit 2
        print(USAGE, file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        return _fail(f"unknown command {command!r}; use one of {', '.join(COMMANDS)} (see trl-basis --help).")
    if {"-h", "--help", "--help-all"} & set(rest):
        try:
            print(help_for(command, rest))
        except CLIError as err:
            return _fail(str(err))
        return 0
    try:
        script_args, training_args, model_args = parse(command, rest)
        if command == "train":
            from .scripts import train

            train.main(script_args, training_args, model_args, started=started)
        else:
            from .scripts import estimate_references

            estimate_references.main(script_args, training_args, model_args)
    except CLIError as err:
        return _fail(str(err))
    except Interrupted as err:
        return _fail(str(err), code=130)
    except KeyboardInterrupt:  # before training started (model load, offline stage): nothing to save yet
        return _fail(
            "interrupted before training started; nothing was saved (the reference cache keeps only complete "
            "entries, so the next run samples again).",
            code=130,
        )
    except ValueError as err:  # the library's own checks (data, rewards, trainers): one line, no traceback
        if os.environ.get("TRL_BASIS_TRACEBACK", "0").lower() in ("1", "true", "yes"):
            raise
        return _fail(str(err))
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

    The pre-pass checks the YAML file and every key and flag; then `TrlParser.parse_args_and_config` applies, in
    order, this run's defaults (`cli_defaults`), the YAML file (exporting its `env`) and the flags. Finally the
    model (with `check_model_path`), the script options and the paths are checked. Nothing heavy happens here: no
    model, tokenizer or dataset is loaded.
    """
    argv = normalized_argv(argv)
    config_path, config = read_yaml(argv)
    flags = flag_names(argv)
    trainer = pick_trainer(command, argv, config, config_path)
    # Names, flag values and the model path first, from the options' spec: bad input answers before torch loads.
    _check_fast(command, trainer, config, config_path, argv, check_model_path)

    from .scripts.arguments import LIST_OPTIONS, scalar_as_list

    for key in LIST_OPTIONS:  # checked as DataArguments will read them
        if key in config:
            config[key] = scalar_as_list(config[key])
    parser = build_parser(command, trainer)
    if not isinstance(config.get("env", {}), dict):
        raise CLIError(f"`env` in {config_path} must be a mapping of NAME: value.")

    explicit = set(config) | set(flags)
    world = explicit_value("world", argv, config)
    defaults = cli_defaults(command, trainer, explicit, explicit_value("dataset_name", argv, config), world=world)
    model_name = explicit_value("model_name_or_path", argv, config)
    if model_name is None and not {"-h", "--help"} & set(argv):
        defaults["model_name_or_path"] = _tiny_model(world)
    elif model_name is not None and command == "train" and "output_dir" not in explicit | set(defaults):
        defaults["output_dir"] = os.path.join(
            "outputs", f"{os.path.basename(os.path.normpath(str(model_name)))}-{trainer}"
        )
    parser.set_defaults_with_config(**defaults)
    with warnings.catch_warnings():
        # GRPOConfig defaults `gradient_checkpointing=True`, which transformers reports as a deprecated alias.
        warnings.simplefilter("ignore", FutureWarning)
        if command == "estimate-references":  # no training here: the generation batch does not matter
            warnings.filterwarnings("ignore", message="BASIS pools its baseline", category=UserWarning)
        try:
            # The YAML's keys that this command ignores (a training YAML given to estimate-references) come back
            # as remaining strings of the config file: already checked above, so dropped.
            script_args, training_args, model_args, _, remaining = parser.parse_args_and_config(
                argv, return_remaining_strings=True, separate_remaining_strings=True
            )
        except (ValueError, TypeError, FileNotFoundError, ImportError) as err:
            raise CLIError(str(err)) from err
    if remaining:
        raise CLIError(f"unexpected argument(s) {' '.join(map(str, remaining))}; options take the form --name value.")

    if check_model_path:
        from .models import check_model

        try:
            check_model(model_args.model_name_or_path)
        except ValueError as err:
            raise CLIError(str(err)) from err
    check_script_args(command, script_args)
    check_paths(command, script_args, training_args, model_args)
    if command == "train" and (training_args.max_steps == 0 or training_args.max_steps < -1):
        raise CLIError(
            f"max_steps must be a positive number of optimizer steps (or -1 to train num_train_epochs); got "
            f"{training_args.max_steps}."
        )
    return script_args, training_args, model_args


def _check_fast(
    command: str, trainer: str, config: dict, config_path: str | None, argv: list[str], model: bool
) -> None:
    """Every YAML key and flag is an option of this command (with a suggestion when not), every YAML value has the
    option's type, every int, float, bool or choice flag has a value argparse will take, and an explicit model path
    exists: from `_cli_options.json`, so
    without importing torch, transformers or TRL."""
    known = set(_cli_spec.options(command, trainer)) | {"env"}
    ignored = set(_cli_spec.options("train", "basis")) - known if command == "estimate-references" else set()
    for key in config:
        if key not in known | ignored:
            raise CLIError(
                f"unknown key {key!r} in {config_path}{suggest(key, known)}; {options_hint(command, trainer)}"
            )
    spec = _cli_spec.options(command, trainer)
    for key in ("reward_funcs", "task_difficulties"):  # a YAML scalar there is a list of one (DataArguments)
        if key in config and isinstance(config[key], str | int) and not isinstance(config[key], bool):
            config = {**config, key: [config[key]]}
    hints = {name: _cli_spec.hint_from_json(entry["hint"]) for name, entry in spec.items()}
    check_yaml_types({k: v for k, v in config.items() if k in spec}, hints, config_path)
    for name, value in _cli_spec.flag_values(argv):
        if name in ("help", "h", "config"):
            continue
        if name not in known:
            hint = options_hint(command, trainer)
            raise CLIError(f"unknown option --{name}{suggest(name, known, prefix='--')}; {hint}")
        problem = None if value is None else _cli_spec.flag_value_problem(spec[name], value)
        if problem:
            raise CLIError(f"argument --{name}: {problem} (see trl-basis {command} --help)")
    check_deepspeed_installed(argv, config)
    model_name = explicit_value("model_name_or_path", argv, config)
    if model and model_name is not None:
        from .models import check_model

        try:
            check_model(str(model_name))
        except ValueError as err:
            raise CLIError(str(err)) from err


def help_for(command: str, argv: list[str]) -> str:
    """`--help`: the grouped main options with the run's true defaults (no heavy import); `--help-all`: TRL's full
    argparse help of every option."""
    argv = normalized_argv(argv)
    config_path, config = read_yaml(argv)
    trainer = pick_trainer(command, argv, config, config_path)
    if "--help-all" in argv:
        return build_parser(command, trainer).format_help()
    return _cli_spec.help_text(command, trainer, *_help_defaults(command, trainer))


def _help_defaults(command: str, trainer: str) -> tuple[dict[str, Any], set[str]]:
    """The defaults of a run with no option on a machine without a GPU, and those only the built-in task uses."""
    builtin = cli_defaults(command, trainer, set(), None, cuda=False)
    other = cli_defaults(command, trainer, set(), "my/dataset", cuda=False)
    builtin["model_name_or_path"] = _tiny_model()
    if command == "train":  # GRPOConfig resolves None to gradient_accumulation_steps (1 unless given)
        builtin.setdefault("steps_per_generation", builtin.get("gradient_accumulation_steps", 1))
    return builtin, {k for k, v in builtin.items() if k not in other or other[k] != v} - {"model_name_or_path"}


def help_entries_for(command: str, trainer: str):
    """The `(group, [(option, default, help)])` that `--help` prints."""
    return _cli_spec.help_entries(command, trainer, *_help_defaults(command, trainer))


def build_parser(command: str, trainer: str = "basis"):
    """The script's `TrlParser` (`make_parser`), whose argparse errors become one line instead of usage + exit."""
    from .scripts import estimate_references, train

    parser = train.make_parser(trainer) if command == "train" else estimate_references.make_parser()

    def error(message):
        raise CLIError(f"{message} (see trl-basis {command} --help)")

    parser.error = error
    return parser


def cli_defaults(
    command: str,
    trainer: str,
    explicit: set[str],
    dataset_name: str | None,
    cuda: bool | None = None,
    world: str | None = None,
) -> dict[str, Any]:
    """Defaults that differ from the dataclasses' for this run; keys given in the YAML or as flags are left out.
    `cuda`: whether a GPU is there (None: ask torch); `world`: the built-in task's world (its output folder)."""
    from .data import is_builtin_task

    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()

    defaults: dict[str, Any] = {"report_to": "none"}
    if is_builtin_task(dataset_name):  # the world's levels (DataArguments resolves the same when called directly)
        defaults["task_difficulties"] = list(_world(world).difficulties)
    if command == "train" and is_builtin_task(dataset_name):
        defaults.update(TASK_SHARED_DEFAULTS)
        defaults.update(TASK_DEFAULTS[trainer])
        defaults["output_dir"] = os.path.join(
            "outputs",
            "trl-basis-tiny" + ("" if trainer == "basis" else f"-{trainer}") + (f"-{world}" if world else ""),
        )
        if not explicit & {"gradient_checkpointing", "activation_checkpointing"}:
            defaults["activation_checkpointing"] = False  # pointless for a tiny model
    if command == "estimate-references":
        defaults["output_dir"] = os.path.join("outputs", "trl_basis_reference_stage")  # removed when left empty
        # No training step to stay under in memory here: 64 prompts per generate call (128 for the tiny task).
        defaults["reference_batch_size"] = 64
        if is_builtin_task(dataset_name):
            defaults.update(max_completion_length=8, reference_batch_size=128)
    if not cuda:
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


def _world(name: str | None):
    """The shipped world `name` (None: the default); an unknown one (from a YAML, which argparse's choices do not
    see before the defaults are built) is a one-line `CLIError`."""
    from .tasks.worlds import get_world

    try:
        return get_world(name)
    except ValueError as err:
        raise CLIError(f"--world: {err}") from err


def _tiny_model(world: str | None = None) -> str:
    from .tasks import tiny_model_path

    _world(world)
    try:
        return tiny_model_path(world)
    except FileNotFoundError as err:
        raise CLIError(f"{err} Or pass --model_name_or_path.") from err


if __name__ == "__main__":
    raise SystemExit(main())
