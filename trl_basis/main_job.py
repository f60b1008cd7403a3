"""The work behind `trl-basis train` and `trl-basis estimate-references`: arguments, data and rewards, the runs.

`trl_basis.cli` parses and validates the arguments (cheaply, before any model loads) and calls `run_train` or
`run_estimate_references` here. The held-out evaluation and progress callbacks live in `trl_basis.callbacks`, the
picture in `trl_basis.plotting`; `load_task` and `resolve_reward_funcs` also work in a script of your own.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from trl import ScriptArguments

from ._io import nearest_existing, write_json_atomically
from ._quiet import no_dataset_progress_bars, quiet_map
from .callbacks import CompactProgressCallback, HeldOutAccuracyCallback
from .plotting import collect_series, plot_curves
from .tasks.arithmetic import DEFAULT_DIFFICULTIES
from .trainers.registry import TRAINERS

BUILTIN_DATASET = "arithmetic"
REWARD_FUNCS = {
    "arithmetic": "trl_basis.tasks.rewards:arithmetic_reward",
    "math_verify": "trl_basis.tasks.rewards:math_verify_reward",
}
METRICS_FILE = "metrics.json"
TASK_INFO_FILE = "trl_basis_task.json"
PLOT_FILE = "training_curves.png"


class CLIError(Exception):
    """Bad input: the message (one line) says what to change. Raised before any model loads where possible."""


class Interrupted(Exception):  # noqa: N818 - names what happened, like KeyboardInterrupt
    """Training was interrupted (Ctrl-C) after the model and metrics so far were saved; the message says where."""


# ---------------------------------------------------------------------------------------------------- arguments
@dataclass
class DataArguments(ScriptArguments):
    """Dataset and reward options shared by `trl-basis train` and `trl-basis estimate-references`.

    Parameters:
        dataset_name (`str` or `None`, *optional*, defaults to `None`):
            `None` (or `"arithmetic"`): the built-in tiny arithmetic task (`trl_basis.tasks`). Otherwise a dataset
            name on the Hugging Face Hub (e.g. `"openai/gsm8k"`, with `dataset_config: main`), a local data folder or
            file loaded with `datasets.load_dataset`, or a folder written by `save_to_disk` (for example by
            `trl-basis estimate-references`).
        question_column (`str`, *optional*, defaults to `"question"`):
            Column with the question text, turned into a conversational prompt. Ignored when the dataset already
            has a `prompt` column.
        answer_column (`str`, *optional*, defaults to `"answer"`):
            Column with the reference answer, passed to the reward functions as `answer`.
        system_prompt (`str` or `None`, *optional*, defaults to `None`):
            System message put before each question.
        prompt_template (`str`, *optional*, defaults to `"{question}"`):
            Template of the user message; `{question}` is replaced by the question.
        max_train_samples (`int` or `None`, *optional*, defaults to `None`):
            Keep only the first N training rows.
        reward_funcs (`list[str]` or `None`, *optional*, defaults to `None`):
            Reward functions: `arithmetic`, `math_verify`, or dotted import paths (`my_module.my_reward`). `None`
            means `arithmetic` for the built-in task and `math_verify` otherwise. Weights: `reward_weights`.
        task_num_train (`int`, *optional*, defaults to `1000`):
            Training problems of the built-in task.
        task_num_test (`int`, *optional*, defaults to `200`):
            Held-out problems of the built-in task.
        task_seed (`int`, *optional*, defaults to `0`):
            Seed of the built-in task.
        task_difficulties (`list[int]`, *optional*, defaults to `[3]`):
            Difficulty levels (1-6) of the built-in task; the default is the level of the shipped tiny model, where
            it is partly right on most prompts (see `trl_basis.tasks.DEFAULT_DIFFICULTIES`).
    """

    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "None or 'arithmetic': the built-in tiny arithmetic task. Else a Hub dataset name, a local data "
            "folder/file (datasets.load_dataset), or a folder written by save_to_disk."
        },
    )
    question_column: str = field(
        default="question",
        metadata={"help": "Column with the question text (ignored when the dataset has a 'prompt' column)."},
    )
    answer_column: str = field(
        default="answer", metadata={"help": "Column with the reference answer, passed to the rewards as `answer`."}
    )
    system_prompt: str | None = field(default=None, metadata={"help": "Optional system message before each question."})
    prompt_template: str = field(
        default="{question}", metadata={"help": "Template of the user message; {question} is the question."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only the first N training rows."})
    reward_funcs: list[str] | None = field(
        default=None,
        metadata={
            "help": "Reward functions: 'arithmetic', 'math_verify' or dotted import paths. Default: 'arithmetic' for "
            "the built-in task, 'math_verify' otherwise."
        },
    )
    task_num_train: int = field(default=1000, metadata={"help": "Training problems of the built-in task."})
    task_num_test: int = field(default=200, metadata={"help": "Held-out problems of the built-in task."})
    task_seed: int = field(default=0, metadata={"help": "Seed of the built-in task."})
    task_difficulties: list[int] = field(
        default_factory=lambda: list(DEFAULT_DIFFICULTIES),
        metadata={"help": "Difficulty levels (1-6) of the built-in task; default: the tiny model's level (3)."},
    )


@dataclass
class TrainScriptArguments(DataArguments):
    """Options of `trl-basis train` besides the trainer's config and TRL's `ModelConfig`.

    Parameters:
        trainer (`str`, *optional*, defaults to `"basis"`):
            `basis` (BASISTrainer), `maxpo` (MaxPOTrainer) or `grpo` (TRL's GRPOTrainer, for comparison). Picks the
            config class, hence which options exist.
        eval_prompts (`int`, *optional*, defaults to `200`):
            Held-out prompts scored before, during and after training (`0` turns the evaluation off).
        eval_samples (`int`, *optional*, defaults to `8`):
            Completions sampled per held-out prompt; accuracy is their mean reward (pass@1), and pass@k is reported
            for k up to this number.
        eval_points (`int`, *optional*, defaults to `4`):
            Evaluations during training (evenly spaced), besides the ones before and after.
        eval_batch_size (`int`, *optional*, defaults to `256`):
            Completions per `generate` call in the evaluation.
        plot (`bool`, *optional*, defaults to `True`):
            Draw `training_curves.png` in the output directory.
    """

    trainer: str = field(
        default="basis",
        metadata={"help": "Which trainer: 'basis', 'maxpo' or 'grpo'.", "choices": list(TRAINERS)},
    )
    eval_prompts: int = field(
        default=200, metadata={"help": "Held-out prompts scored before/during/after training (0: no evaluation)."}
    )
    eval_samples: int = field(default=8, metadata={"help": "Completions sampled per held-out prompt."})
    eval_points: int = field(default=4, metadata={"help": "Evaluations during training, besides before and after."})
    eval_batch_size: int = field(default=256, metadata={"help": "Completions per generate call in the evaluation."})
    plot: bool = field(default=True, metadata={"help": "Draw training_curves.png in the output directory."})


@dataclass
class ReferenceScriptArguments(DataArguments):
    """Options of `trl-basis estimate-references` besides `BASISConfig` and TRL's `ModelConfig`.

    Parameters:
        save_path (`str`, *optional*, defaults to `"outputs/reference_rewards"`):
            Folder where the dataset with the reference-reward column is written (`save_to_disk`, a `DatasetDict`
            with the training split and, when the source has one, the held-out split). Train on it with
            `trl-basis train --dataset_name <save_path>`.
    """

    save_path: str = field(
        default=os.path.join("outputs", "reference_rewards"),
        metadata={"help": "Folder for the dataset with the reference-reward column (datasets.save_to_disk)."},
    )


# ---------------------------------------------------------------------------------------------------- inputs
def is_builtin_dataset(name: str | None) -> bool:
    return name is None or name == BUILTIN_DATASET


def is_builtin_task(name: str | None) -> bool:
    """The built-in task, or a dataset that `trl-basis estimate-references` saved from it (same defaults apply)."""
    return is_builtin_dataset(name) or saved_task_info(name).get("task") == BUILTIN_DATASET


def load_task(args: DataArguments, test: str = "required") -> tuple[Any, Any | None, str]:
    """`(train, held-out or None, description)`, both with `prompt` and `answer` columns.

    `test` is `"required"` (a missing held-out split is an error), `"optional"` or `"none"`. Raises `CLIError` on bad
    input (a missing split or column), before any model loads.
    """
    if is_builtin_dataset(args.dataset_name):
        from .tasks import DIFFICULTY_LEVELS, make_arithmetic_dataset

        if args.task_num_train < 1 or args.task_num_test < 1:
            raise CLIError("task_num_train and task_num_test must be >= 1.")
        unknown = sorted(set(args.task_difficulties) - set(DIFFICULTY_LEVELS))
        if unknown or not args.task_difficulties:
            raise CLIError(
                f"task_difficulties must be levels among {sorted(DIFFICULTY_LEVELS)}; got {args.task_difficulties}."
            )
        levels = tuple(args.task_difficulties)
        data = make_arithmetic_dataset(
            args.task_num_train, args.task_num_test, seed=args.task_seed, difficulties=levels
        )
        train, held_out = data["train"], (data["test"] if test != "none" else None)
        description = (
            f"built-in arithmetic task (level {','.join(map(str, levels))}; {len(train)} train / "
            f"{args.task_num_test} test, seed {args.task_seed})"
        )
    else:
        data = _load_external(args)
        splits = list(data)
        if args.dataset_train_split not in data:
            raise CLIError(
                f"dataset {args.dataset_name!r} has no split {args.dataset_train_split!r} (splits: {splits}); "
                "set --dataset_train_split."
            )
        train = _to_prompt_answer(data[args.dataset_train_split], args, args.dataset_train_split)
        if test == "required" and args.dataset_test_split not in data:
            raise CLIError(
                f"dataset {args.dataset_name!r} has no split {args.dataset_test_split!r} for the held-out "
                f"evaluation (splits: {splits}); set --dataset_test_split, or --eval_prompts 0 to skip it."
            )
        held_out = None
        if test != "none" and args.dataset_test_split in data:
            held_out = _to_prompt_answer(data[args.dataset_test_split], args, args.dataset_test_split)
        description = f"{args.dataset_name}" + (f" ({args.dataset_config})" if args.dataset_config else "")
    if args.max_train_samples is not None:
        if args.max_train_samples < 1:
            raise CLIError(f"max_train_samples must be >= 1; got {args.max_train_samples}.")
        train = train.select(range(min(args.max_train_samples, len(train))))
    return train, held_out, description


def saved_task_info(dataset_name: str | None) -> dict[str, Any]:
    """What `trl-basis estimate-references` recorded next to a saved dataset (its reward functions), or `{}`."""
    if dataset_name is None:
        return {}
    path = os.path.join(os.path.expanduser(dataset_name), TASK_INFO_FILE)
    if not os.path.isfile(path):
        return {}
    try:
        with open(path) as f:
            info = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CLIError(
            f"{path} is not valid JSON ({type(err).__name__}); delete it, or re-create the folder with "
            "trl-basis estimate-references."
        ) from err
    if not isinstance(info, dict):
        raise CLIError(f"{path} must hold a JSON object; delete it or re-create the folder with estimate-references.")
    return info


def default_reward_names(args: DataArguments) -> list[str]:
    """The reward functions to use: as given, else as recorded with a saved dataset, else by dataset kind."""
    if args.reward_funcs:
        return list(args.reward_funcs)
    recorded = saved_task_info(args.dataset_name).get("reward_funcs")
    if recorded:
        # A data folder may come from anyone: from its metadata only built-in names are taken, never code paths.
        foreign = [name for name in recorded if name not in REWARD_FUNCS] if isinstance(recorded, list) else recorded
        if foreign:
            raise CLIError(
                f"{TASK_INFO_FILE} in {args.dataset_name!r} names reward function(s) {foreign} that are not built in; "
                "trl-basis does not import code named by a data folder. Pass them yourself with --reward_funcs "
                "if you trust them."
            )
        return list(recorded)
    return ["arithmetic"] if is_builtin_dataset(args.dataset_name) else ["math_verify"]


def _load_external(args: DataArguments):
    import datasets

    name = args.dataset_name
    path = os.path.expanduser(name)
    try:
        with no_dataset_progress_bars():
            data = _load(datasets, name, path, args.dataset_config)
    except Exception as err:  # noqa: BLE001 - any loading failure is bad input here
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if isinstance(err, StopIteration) or (os.path.isfile(path) and os.path.getsize(path) == 0):
            first = "the file is empty"
        raise CLIError(
            f"could not load dataset {name!r}: {first} (check --dataset_name/--dataset_config, or use the built-in "
            "task by leaving dataset_name unset)"
        ) from err
    if isinstance(data, datasets.Dataset):
        data = datasets.DatasetDict({args.dataset_train_split: data})
    empty = [split for split, part in data.items() if len(part) == 0]
    if args.dataset_train_split in empty:
        raise CLIError(f"dataset {name!r} split {args.dataset_train_split!r} has no rows; check --dataset_name.")
    return data


DATA_FILE_BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}


def _load(datasets, name: str, path: str, config: str | None):
    """A `save_to_disk` folder, a single data file (by extension), or anything `load_dataset` takes."""
    saved = os.path.exists(os.path.join(path, "dataset_dict.json")) or os.path.exists(os.path.join(path, "state.json"))
    if os.path.isdir(path) and saved:
        return datasets.load_from_disk(path)
    if os.path.isfile(path):
        extension = os.path.splitext(path)[1].lower()
        if extension not in DATA_FILE_BUILDERS:
            raise ValueError(f"unsupported data file type {extension!r}; use one of {sorted(DATA_FILE_BUILDERS)}")
        return datasets.load_dataset(DATA_FILE_BUILDERS[extension], data_files=path)
    return datasets.load_dataset(name, name=config)


def _to_prompt_answer(dataset, args: DataArguments, split: str):
    """Map a question/answer dataset (GSM8K style) to TRL's conversational `prompt` plus `answer`."""
    columns = dataset.column_names
    needs_answer = any(name in REWARD_FUNCS for name in default_reward_names(args))  # the built-ins read `answer`
    if args.answer_column not in columns and not ("prompt" in columns and not needs_answer):
        raise CLIError(
            f"dataset {args.dataset_name!r} split {split!r} has no answer column {args.answer_column!r} "
            f"(columns: {columns}); set --answer_column."
        )
    if "prompt" not in columns and args.question_column not in columns:
        raise CLIError(
            f"dataset {args.dataset_name!r} split {split!r} has no question column {args.question_column!r} and no "
            f"'prompt' column (columns: {columns}); set --question_column."
        )
    if "{question}" not in args.prompt_template:
        raise CLIError(f"prompt_template must contain '{{question}}'; got {args.prompt_template!r}.")
    if args.answer_column != "answer" and args.answer_column in columns:
        if "answer" in columns:
            dataset = dataset.remove_columns("answer")
        dataset = dataset.rename_column(args.answer_column, "answer")
    if "prompt" in columns:
        return dataset
    system, template, question_column = args.system_prompt, args.prompt_template, args.question_column

    def to_prompt(example):
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": template.format(question=example[question_column])})
        return {"prompt": messages}

    return quiet_map(dataset, to_prompt)


def resolve_reward_funcs(names: Sequence[str]) -> list[Callable]:
    """Reward functions from their names (`arithmetic`, `math_verify`) or dotted import paths."""
    funcs = []
    for name in names:
        target = REWARD_FUNCS.get(name, name)
        module_name, sep, attr = target.rpartition(":") if ":" in target else target.rpartition(".")
        if not sep or not module_name:
            raise CLIError(
                f"unknown reward function {name!r}; use {' or '.join(REWARD_FUNCS)} or a dotted import path "
                "such as my_module.my_reward."
            )
        if os.getcwd() not in sys.path:
            # Last, not first: a stray matplotlib.py or datasets.py in the working folder must not shadow the
            # installed packages (only the user's own reward module should be found there).
            sys.path.append(os.getcwd())
        try:
            func = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise CLIError(f"could not import reward function {name!r}: {err}.") from err
        if not callable(func):
            raise CLIError(f"reward function {name!r} is not callable.")
        check_reward_signature(name, func)
        funcs.append(func)
    if any(f.__name__ == "math_verify_reward" for f in funcs):
        try:
            importlib.import_module("math_verify")
        except ImportError as err:
            raise CLIError(
                "reward math_verify needs the math-verify package: pip install 'trl_basis[math]', or use "
                "--reward_funcs arithmetic."
            ) from err
    return funcs


def check_model(name: str) -> None:
    """Fail fast when `name` is neither a local model folder nor a model that can be fetched."""
    path = os.path.expanduser(name)
    if os.path.isdir(path):
        if not os.path.exists(os.path.join(path, "config.json")):
            raise CLIError(f"model folder {name!r} has no config.json; point --model_name_or_path at a saved model.")
        _check_weights(name, path)
        return
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1 or os.path.exists(path)
    if looks_local:
        raise CLIError(
            f"model path {name!r} does not exist; fix --model_name_or_path (or leave it unset for the tiny model)."
        )
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        from huggingface_hub import try_to_load_from_cache

        try:
            cached = try_to_load_from_cache(name, "config.json")
        except Exception:  # noqa: BLE001 - an invalid repo id is simply "not cached"
            cached = None
        if not isinstance(cached, str):
            raise CLIError(
                f"model {name!r} is not a local folder and not in the Hugging Face cache, and HF_HUB_OFFLINE is set; "
                "download it first or pass a local --model_name_or_path."
            )


def _check_weights(name: str, path: str) -> None:
    """A model folder needs weights, and safetensors files must have a readable header (checked without loading)."""
    files = os.listdir(path)
    weights = [f for f in files if f.endswith((".safetensors", ".bin", ".pt", ".pth", ".msgpack", ".h5"))]
    if not weights and not any(f.endswith(".index.json") for f in files):
        raise CLIError(
            f"model folder {name!r} has a config.json but no weights (*.safetensors or *.bin); point "
            "--model_name_or_path at a complete saved model."
        )
    from safetensors import safe_open

    for file in (f for f in weights if f.endswith(".safetensors")):
        try:
            with safe_open(os.path.join(path, file), framework="pt") as handle:
                handle.keys()
        except Exception as err:  # noqa: BLE001 - any header error means a corrupt or truncated file
            raise CLIError(
                f"model weights {os.path.join(name, file)!r} cannot be read ({' '.join(str(err).split())[:120]}); "
                "the file is corrupt or truncated: save or download the model again."
            ) from err


def check_reward_signature(name: str, func: Callable) -> None:
    """TRL calls a reward function with keywords: prompts=, completions=, completion_ids= and every dataset column;
    one that cannot take them fails only at the first training step, after the model loaded."""
    import inspect

    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return  # builtins and C callables: nothing to inspect
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params)
    missing = [n for n in ("prompts", "completions") if n not in names and not takes_kwargs]
    if missing or not takes_kwargs:
        raise CLIError(
            f"reward function {name!r} has the signature {inspect.signature(func)}; TRL calls it as "
            "f(prompts=..., completions=..., completion_ids=..., **dataset_columns): give it parameters "
            "prompts, completions and **kwargs."
        )


# ---------------------------------------------------------------------------------------------------- commands
def trainer_class(name: str):
    from .trainers.registry import trainer_class as registered

    return registered(name)


def run_train(script_args: TrainScriptArguments, training_args, model_args, started: float | None = None) -> dict:
    """Train, evaluate before/during/after, save the model, `metrics.json` and the plot. Returns the metrics."""
    started = time.perf_counter() if started is None else started
    from accelerate import PartialState
    from trl import get_peft_config, get_quantization_config

    state = PartialState()
    say = print if state.is_main_process else (lambda *a, **k: None)
    if is_builtin_task(script_args.dataset_name) and state.device.type == "cpu":
        import torch

        if "OMP_NUM_THREADS" not in os.environ:
            # The tiny model's matrices are too small for several threads to pay off; on a shared or small machine
            # they only contend. One thread is several times faster there (set OMP_NUM_THREADS to override).
            torch.set_num_threads(1)

    train, test, description = load_task(script_args, test="required" if script_args.eval_prompts > 0 else "none")
    reward_funcs = resolve_reward_funcs(default_reward_names(script_args))
    if test is not None:
        test = test.select(range(min(script_args.eval_prompts, len(test))))

    model_init_kwargs = dict(
        revision=model_args.model_revision,
        trust_remote_code=getattr(training_args, "trust_remote_code", None),
        attn_implementation=model_args.attn_implementation,
        dtype=model_args.dtype,
    )
    quantization_config = get_quantization_config(model_args)
    if quantization_config is not None:
        model_init_kwargs["quantization_config"] = quantization_config
    model_init_kwargs = {k: v for k, v in model_init_kwargs.items() if v is not None}
    if training_args.model_init_kwargs is not None:
        model_init_kwargs.update(training_args.model_init_kwargs)
    training_args.model_init_kwargs = model_init_kwargs

    say(
        f"[trl-basis] {script_args.trainer} on {description}; model {model_args.model_name_or_path}; "
        f"{training_args.max_steps} steps; output {training_args.output_dir}"
    )
    callback = HeldOutAccuracyCallback(
        test,
        reward_funcs,
        script_args.eval_samples,
        script_args.eval_points,
        script_args.eval_batch_size,
        training_args.seed,
        printer=say,
    )
    setup_start = time.perf_counter()
    try:
        trainer = trainer_class(script_args.trainer)(
            model=model_args.model_name_or_path,
            reward_funcs=reward_funcs,
            args=training_args,
            train_dataset=train,
            peft_config=get_peft_config(model_args),
            callbacks=[callback] if test is not None else None,
        )
        if hasattr(trainer, "prepare_reference_rewards"):
            # BASIS's offline stage would run at the start of train(); run it here so that it counts as setup and
            # a Ctrl-C during it is "before training started".
            trainer.prepare_reference_rewards()
    except ValueError as err:  # the trainers' own checks (e.g. too few informative prompts): one line, no trace
        raise CLIError(" ".join(str(err).split())) from err
    setup_seconds = time.perf_counter() - setup_start
    callback.trainer = trainer
    if not training_args.disable_tqdm:
        from transformers.trainer_callback import ProgressCallback

        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(CompactProgressCallback())

    train_start = time.perf_counter()
    interrupted = False
    try:
        trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    except KeyboardInterrupt:  # Ctrl-C: keep what was trained, and its metrics, instead of a traceback
        interrupted = True
        for cb in trainer.callback_handler.callbacks:  # on_train_end never ran: close the bar ourselves
            bar = getattr(cb, "training_bar", None)
            if bar is not None:
                bar.close()
                cb.training_bar = None
    train_seconds = time.perf_counter() - train_start

    trainer.save_model(training_args.output_dir)
    output_dir = training_args.output_dir
    points = sorted(callback.points, key=lambda p: p["step"])
    metrics = {
        "trainer": script_args.trainer,
        "interrupted": interrupted,
        "model": model_args.model_name_or_path,
        "dataset": description,
        "num_train_prompts": len(trainer.train_dataset) if hasattr(trainer.train_dataset, "__len__") else None,
        "num_eval_prompts": len(test) if test is not None else 0,
        "eval_samples": script_args.eval_samples,
        "num_processes": trainer.accelerator.num_processes,
        "deepspeed_zero_stage": trainer.accelerator.state.deepspeed_plugin.zero_stage
        if trainer.is_deepspeed_enabled
        else None,
        "max_steps": trainer.state.max_steps,
        "global_step": trainer.state.global_step,
        "before": points[0] if points else None,
        "after": points[-1] if points else None,
        "accuracy_points": points,
        "series": collect_series(trainer.state.log_history),
        "estimator_state": getattr(trainer, "_estimator_state", {}),
        "setup_seconds": setup_seconds,
        "train_seconds": train_seconds,
        "eval_seconds": callback.seconds,
        "output_dir": os.path.abspath(output_dir),
    }
    if state.is_main_process:
        files = {
            "model": os.path.abspath(output_dir),
            "metrics": os.path.abspath(os.path.join(output_dir, METRICS_FILE)),
        }
        metrics["files"] = files
        metrics["wall_seconds"] = time.perf_counter() - started
        # The metrics go to disk first: a plotting failure after a full run must not lose them.
        write_json_atomically(files["metrics"], metrics, indent=2)
        if script_args.plot:
            try:
                files["plot"] = os.path.abspath(plot_curves(metrics, os.path.join(output_dir, PLOT_FILE)))
            except Exception as err:  # noqa: BLE001 - any plotting error is only a warning
                print(
                    f"\n[trl-basis] warning: could not draw {PLOT_FILE} ({type(err).__name__}: {err}); the model "
                    f"and {METRICS_FILE} are saved.",
                    file=sys.stderr,
                )
            else:
                write_json_atomically(files["metrics"], metrics, indent=2)  # now listing the plot too
        say("")
        if metrics["before"] is not None and not interrupted:
            say(
                f"[trl-basis] held-out accuracy: {metrics['before']['accuracy']:.3f} before -> "
                f"{metrics['after']['accuracy']:.3f} after ({metrics['num_eval_prompts']} prompts x "
                f"{script_args.eval_samples} samples)"
            )
        say(
            f"[trl-basis] wall time {metrics['wall_seconds']:.0f}s (setup incl. reference stage {setup_seconds:.0f}s, "
            f"training {train_seconds:.0f}s of which held-out evaluation {callback.seconds:.0f}s)"
        )
        say(f"[trl-basis] model:   {files['model']}")
        say(f"[trl-basis] metrics: {files['metrics']}")
        if "plot" in files:
            say(f"[trl-basis] plot:    {files['plot']}")
    if interrupted:
        raise Interrupted(
            f"interrupted at step {trainer.state.global_step} of {trainer.state.max_steps}; the model and the metrics "
            f"so far are saved in {os.path.abspath(output_dir)}."
        )
    state.wait_for_everyone()
    return metrics


def run_estimate_references(script_args: ReferenceScriptArguments, training_args, model_args) -> str:
    """The offline BASIS stage alone: add the reference-reward column and `save_to_disk` it. Returns the path."""
    import datasets
    from accelerate import PartialState

    from .references import estimate_reference_rewards

    state = PartialState()
    train, test, description = load_task(script_args, test="optional")
    reward_names = default_reward_names(script_args)
    reward_funcs = resolve_reward_funcs(reward_names)
    if state.is_main_process:
        print(
            f"[trl-basis] reference rewards: {training_args.num_reference_samples} samples per prompt for "
            f"{len(train)} prompts of {description}; model {model_args.model_name_or_path}"
        )
    training_args.model_init_kwargs = {
        **{k: v for k, v in dict(dtype=model_args.dtype, revision=model_args.model_revision).items() if v is not None},
        **(training_args.model_init_kwargs or {}),
    }
    # The trainer behind the offline stage creates output_dir (and missing parents): remember what already existed.
    existing = nearest_existing(training_args.output_dir)
    try:
        with_refs = estimate_reference_rewards(model_args.model_name_or_path, reward_funcs, train, args=training_args)
    except ValueError as err:
        raise CLIError(" ".join(str(err).split())) from err
    created = os.path.abspath(training_args.output_dir)
    while created != existing and os.path.isdir(created) and not os.listdir(created):
        os.rmdir(created)  # only folders this run created, and only while empty: never the user's own
        created = os.path.dirname(created)
    splits = {script_args.dataset_train_split: with_refs}
    if test is not None:
        splits[script_args.dataset_test_split] = test
    path = os.path.abspath(script_args.save_path)
    if state.is_main_process:
        datasets.DatasetDict(splits).save_to_disk(path)
        with open(os.path.join(path, TASK_INFO_FILE), "w") as f:
            task = BUILTIN_DATASET if is_builtin_task(script_args.dataset_name) else None
            json.dump({"reward_funcs": reward_names, "source": description, "task": task}, f)
        column = training_args.reference_rewards_column
        rewards = with_refs[column]
        mean = sum(sum(r) / len(r) for r in rewards) / max(len(rewards), 1)
        informative = sum(1 for r in rewards if max(r) > min(r))
        print(f"[trl-basis] reference pass rate {mean:.3f}; {informative}/{len(rewards)} prompts have both outcomes")
        print(f"[trl-basis] saved to {path} (train on it with: trl-basis train --dataset_name {path})")
    state.wait_for_everyone()
    return path
