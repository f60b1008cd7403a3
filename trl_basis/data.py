"""The data of a run: the built-in arithmetic task, or a dataset from the Hub, a data file or a saved folder, mapped to
TRL's conversational `prompt` plus an `answer` column (what `trl-basis train` and `estimate-references` load).

Every function raises `ValueError` with a one-line message that names the option to change.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from ._quiet import no_dataset_progress_bars, quiet_map
from .reward_registry import REWARD_FUNCS

if TYPE_CHECKING:
    from .scripts.arguments import DataArguments

BUILTIN_DATASET = "arithmetic"
#: Written by `trl-basis estimate-references` next to a saved dataset: the task and the reward functions it used.
TASK_INFO_FILE = "trl_basis_task.json"
#: Training defaults of the built-in task on its tiny model (`trl-basis train` uses them when no --dataset_name is
#: given): a few minutes on 2 CPU cores. Per trainer, then shared; e.g. `BASISConfig(**TASK_SHARED_DEFAULTS,
#: **TASK_DEFAULTS["basis"], output_dir=...)`.
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


def is_builtin_dataset(name: str | None) -> bool:
    return name is None or name == BUILTIN_DATASET


def is_builtin_task(name: str | None) -> bool:
    """The built-in task, or a dataset that `trl-basis estimate-references` saved from it (same defaults apply)."""
    return is_builtin_dataset(name) or saved_task_info(name).get("task") == BUILTIN_DATASET


def load_task(args: DataArguments, test: str = "required") -> tuple[Any, Any | None, str]:
    """`(train, held-out or None, description)`, both with `prompt` and `answer` columns.

    `test` is `"required"` (a missing held-out split is an error), `"optional"` or `"none"`. Raises `ValueError` on bad
    input (a missing split or column), before any model loads.
    """
    if is_builtin_dataset(args.dataset_name):
        from .tasks import DIFFICULTY_LEVELS, make_arithmetic_dataset

        if args.task_num_train < 1 or args.task_num_test < 1:
            raise ValueError("task_num_train and task_num_test must be >= 1.")
        unknown = sorted(set(args.task_difficulties) - set(DIFFICULTY_LEVELS))
        if unknown or not args.task_difficulties:
            raise ValueError(
                f"task_difficulties must be levels among {sorted(DIFFICULTY_LEVELS)}; got {args.task_difficulties}."
            )
        from .tasks.worlds import get_world

        levels = tuple(args.task_difficulties)
        # The world's own levels: its held-out split (a multi-level world's is the union of its levels' splits, which
        # its model never trained on); other levels: a plain split of those levels.
        world = getattr(args, "world", None)
        world = world if world is not None and levels == get_world(world).difficulties else None
        data = make_arithmetic_dataset(
            args.task_num_train, args.task_num_test, seed=args.task_seed, difficulties=levels, world=world
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
            raise ValueError(
                f"dataset {args.dataset_name!r} has no split {args.dataset_train_split!r} (splits: {splits}); "
                "set --dataset_train_split."
            )
        train = _to_prompt_answer(data[args.dataset_train_split], args, args.dataset_train_split)
        if test == "required" and args.dataset_test_split not in data:
            raise ValueError(
                f"dataset {args.dataset_name!r} has no split {args.dataset_test_split!r} for the held-out "
                f"evaluation (splits: {splits}); set --dataset_test_split, or --eval_prompts 0 to skip it."
            )
        held_out = None
        if test != "none" and args.dataset_test_split in data:
            held_out = _to_prompt_answer(data[args.dataset_test_split], args, args.dataset_test_split)
        description = f"{args.dataset_name}" + (f" ({args.dataset_config})" if args.dataset_config else "")
    if args.max_train_samples is not None:
        if args.max_train_samples < 1:
            raise ValueError(f"max_train_samples must be >= 1; got {args.max_train_samples}.")
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
        raise ValueError(
            f"{path} is not valid JSON ({type(err).__name__}); delete it, or re-create the folder with "
            "trl-basis estimate-references."
        ) from err
    if not isinstance(info, dict):
        raise ValueError(
            f"{path} must hold a JSON object; delete it or re-create the folder with estimate-references."
        )
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
            raise ValueError(
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
        raise ValueError(
            f"could not load dataset {name!r}: {first} (check --dataset_name/--dataset_config, or use the built-in "
            "task by leaving dataset_name unset)"
        ) from err
    if isinstance(data, datasets.Dataset):
        data = datasets.DatasetDict({args.dataset_train_split: data})
    empty = [split for split, part in data.items() if len(part) == 0]
    if args.dataset_train_split in empty:
        raise ValueError(f"dataset {name!r} split {args.dataset_train_split!r} has no rows; check --dataset_name.")
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
        raise ValueError(
            f"dataset {args.dataset_name!r} split {split!r} has no answer column {args.answer_column!r} "
            f"(columns: {columns}); set --answer_column."
        )
    if "prompt" not in columns and args.question_column not in columns:
        raise ValueError(
            f"dataset {args.dataset_name!r} split {split!r} has no question column {args.question_column!r} and no "
            f"'prompt' column (columns: {columns}); set --question_column."
        )
    if "{question}" not in args.prompt_template:
        raise ValueError(f"prompt_template must contain '{{question}}'; got {args.prompt_template!r}.")
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
