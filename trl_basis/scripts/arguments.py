"""The script arguments of `trl-basis train` and `trl-basis estimate-references` (TRL's `ScriptArguments` style),
parsed with the trainer's config class and TRL's `ModelConfig`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from trl import ScriptArguments

from .._cli_spec import LIST_OPTIONS
from ..tasks.worlds import DEFAULT_WORLD, WORLDS, get_world
from ..trainers.registry import TRAINERS


@dataclass
class DataArguments(ScriptArguments):
    """Dataset and reward options of both commands, besides TRL's (`dataset_name`, `dataset_config`, the splits).

    Parameters:
        dataset_name (`str` or `None`, defaults to `None`): `None` or `"arithmetic"`: the built-in tiny arithmetic
            task (`trl_basis.tasks`). Else a Hub dataset (`"openai/gsm8k"` with `dataset_config: main`), a local file
            or folder (`datasets.load_dataset`), or a folder from `save_to_disk` (`trl-basis estimate-references`).
        question_column, answer_column (`str`, default `"question"`, `"answer"`): the question (made a chat prompt
            unless there is a `prompt` column) and the reference answer (the rewards' `answer`).
        system_prompt (`str` or `None`), prompt_template (`str`, default `"{question}"`): system and user messages.
        max_train_samples (`int` or `None`): keep only the first N training rows.
        reward_funcs (`list[str]` or `None`): `arithmetic`, `math_verify` or dotted import paths (`None`: `arithmetic`
            for the built-in task, else `math_verify`); a single name (a YAML scalar) is a list of one.
        task_num_train, task_num_test, task_seed (`int`, default `1000`, `200`, `0`): the built-in task's size, seed.
        world (`str`, default `"level3"`): shipped tiny world of the built-in task (`trl_basis.tasks.WORLDS`): its
            model (the default model) and levels (`level3`; `mixed`: levels 3-4, pass rates from near 0 to near 1;
            `hard`: level 4).
        task_difficulties (`list[int]` or `None`): levels (1-6) of the built-in task; `None`: the world's.
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
    world: str = field(
        default=DEFAULT_WORLD,
        metadata={
            "help": "Shipped tiny world of the built-in task: its model (the default model) and its levels.",
            "choices": list(WORLDS),
        },
    )
    task_difficulties: list[int] | None = field(
        default=None,
        metadata={"help": "Difficulty levels (1-6) of the built-in task; default: the world's levels."},
    )

    def __post_init__(self):
        for name in LIST_OPTIONS:  # a YAML scalar is a list of one, not a list of its letters
            value = getattr(self, name)
            if isinstance(value, str | int) and not isinstance(value, bool):
                setattr(self, name, [value])
        if self.task_difficulties is None:
            self.task_difficulties = list(get_world(self.world).difficulties)
        if self.dataset_streaming:
            raise ValueError(
                "dataset_streaming is not supported by trl-basis (BASIS's offline stage and the held-out evaluation "
                "need a map-style dataset); remove it, or use max_train_samples to train on part of a large dataset."
            )


@dataclass
class TrainScriptArguments(DataArguments):
    """Options of `trl-basis train` besides the trainer's config and TRL's `ModelConfig`.

    Parameters:
        trainer (`str`, default `"basis"`): `basis`, `maxpo` or `grpo` (TRL's GRPOTrainer, for comparison). Picks the
            config class, hence which options exist.
        eval_prompts, eval_samples (`int`, default `200`, `8`): held-out prompts scored before, during and after
            training (`0`: no evaluation), and completions per prompt (accuracy is pass@1; pass@k up to this k).
        eval_points, eval_batch_size (`int`, default `4`, `256`): evaluations during training; completions per
            `generate` call.
        plot (`bool`, default `True`): draw `training_curves.png` in the output directory.
        overwrite_output_dir (`bool`, default `False`): train even when `output_dir` holds a model, `metrics.json` or
            checkpoints, replacing them; else such a folder is refused (unless resuming from it).
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
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Replace the model, metrics.json and checkpoints already in output_dir (else refused)."},
    )

    def __post_init__(self):
        super().__post_init__()
        if self.trainer not in TRAINERS:
            raise ValueError(f"unknown trainer {self.trainer!r}; use one of {', '.join(TRAINERS)}.")
        for name in ("eval_prompts", "eval_points"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0; got {getattr(self, name)}.")
        if self.eval_samples < 1 or self.eval_batch_size < 1:
            raise ValueError("eval_samples and eval_batch_size must be >= 1.")


@dataclass
class ReferenceScriptArguments(DataArguments):
    """Options of `trl-basis estimate-references` besides `BASISConfig` and TRL's `ModelConfig`.

    Parameters:
        save_path (`str`, default `"outputs/reference_rewards"`): folder for the dataset with the reference-reward
            column (`save_to_disk`; train on it with `trl-basis train --dataset_name <save_path>`).
    """

    save_path: str = field(
        default=os.path.join("outputs", "reference_rewards"),
        metadata={"help": "Folder for the dataset with the reference-reward column (datasets.save_to_disk)."},
    )
