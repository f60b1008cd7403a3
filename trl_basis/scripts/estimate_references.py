"""`trl-basis estimate-references`: BASIS's offline stage alone, saved with `save_to_disk` for later runs.

Shaped like TRL's scripts: `make_parser()` and `main(script_args, training_args, model_args)`. The saved folder holds
the training split with the reference-reward column (and the held-out split when the source has one) plus
`trl_basis_task.json`; train on it with `trl-basis train --dataset_name <save_path>`.
"""

from __future__ import annotations

import json
import os

from .._io import removing_new_empty_folders
from ..data import BUILTIN_DATASET, TASK_INFO_FILE, default_reward_names, is_builtin_task, load_task
from ..models import model_init_kwargs
from ..reward_registry import resolve_reward_funcs
from .arguments import ReferenceScriptArguments


def make_parser(parser_class=None):
    """The `TrlParser` (or `parser_class`): `ReferenceScriptArguments`, `BASISConfig` (its generation and
    offline-stage options) and TRL's `ModelConfig`."""
    from trl import ModelConfig, TrlParser

    from ..trainers.basis_config import BASISConfig

    types = (ReferenceScriptArguments, BASISConfig, ModelConfig)
    return (parser_class or TrlParser)(types, prog="trl-basis estimate-references")


def main(script_args: ReferenceScriptArguments, training_args, model_args) -> str:
    """Add the reference-reward column to the training split and `save_to_disk` it. Returns the saved path."""
    import datasets
    from accelerate import PartialState

    from ..references import estimate_reference_rewards

    state = PartialState()
    train, test, description = load_task(script_args, test="optional")
    reward_names = default_reward_names(script_args)
    reward_funcs = resolve_reward_funcs(reward_names)
    if state.is_main_process:
        print(
            f"[trl-basis] reference rewards: {training_args.num_reference_samples} samples per prompt for "
            f"{len(train)} prompts of {description}; model {model_args.model_name_or_path}"
        )
    training_args.model_init_kwargs = model_init_kwargs(training_args, model_args)
    # The trainer behind the offline stage creates output_dir (and missing parents): removed again when left empty.
    with removing_new_empty_folders(training_args.output_dir):
        with_refs = estimate_reference_rewards(model_args.model_name_or_path, reward_funcs, train, args=training_args)
    splits = {script_args.dataset_train_split: with_refs}
    if test is not None:
        splits[script_args.dataset_test_split] = test
    path = os.path.abspath(script_args.save_path)
    if state.is_main_process:
        datasets.DatasetDict(splits).save_to_disk(path)
        with open(os.path.join(path, TASK_INFO_FILE), "w") as f:
            task = BUILTIN_DATASET if is_builtin_task(script_args.dataset_name) else None
            json.dump({"reward_funcs": reward_names, "source": description, "task": task}, f)
        report(with_refs[training_args.reference_rewards_column], path)
    state.wait_for_everyone()
    return path


def report(rewards: list[list[float]], path: str) -> None:
    mean = sum(sum(r) / len(r) for r in rewards) / max(len(rewards), 1)
    informative = sum(1 for r in rewards if max(r) > min(r))
    print(f"[trl-basis] reference pass rate {mean:.3f}; {informative}/{len(rewards)} prompts have both outcomes")
    print(f"[trl-basis] saved to {path} (train on it with: trl-basis train --dataset_name {path})")


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())
