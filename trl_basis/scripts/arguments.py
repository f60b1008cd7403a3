"""The script arguments of `trl-basis train` and `trl-basis estimate-references` (TRL's `ScriptArguments` style).

They are parsed together with the trainer's config class and TRL's `ModelConfig` by `TrlParser`
(`trl_basis.scripts.train.make_parser`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from trl import ScriptArguments

from ..tasks.worlds import DEFAULT_WORLD, WORLDS, get_world
from ..trainers.registry import TRAINERS

#: Options that take a list; a YAML scalar there means a list of one.
LIST_OPTIONS = ("reward_funcs", "task_difficulties")


def scalar_as_list(value):
    """A YAML scalar where a list belongs (`reward_funcs: arithmetic`) is a list of one, not of its letters."""
    return [value] if isinstance(value, str | int) and not isinstance(value, bool) else value


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
        world (`str`, *optional*, defaults to `"level3"`):
            Shipped tiny world of the built-in task (`trl_basis.tasks.WORLDS`): `level3` (the level-3 model on
            level 3), `mixed` (a model trained further on levels 3-4, pass rates from near 0 to near 1) or `hard` (the mixed
            model on level 4). Sets the default model and `task_difficulties`.
        task_difficulties (`list[int]` or `None`, *optional*, defaults to `None`):
            Difficulty levels (1-6) of the built-in task; `None`: the world's levels (level 3 for `level3`), where
            its model is partly right on most prompts.
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
        for name in LIST_OPTIONS:
            setattr(self, name, scalar_as_list(getattr(self, name)))
        if self.task_difficulties is None:
            self.task_difficulties = list(get_world(self.world).difficulties)


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
        overwrite_output_dir (`bool`, *optional*, defaults to `False`):
            Train even when `output_dir` already holds a model, `metrics.json` or checkpoints, replacing them. Without
            it such a folder is refused (unless resuming from one of its checkpoints), so that a second run never
            silently replaces the first one's results.
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
