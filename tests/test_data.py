"""`trl_basis/data.py`: the built-in task and external datasets, mapped to `prompt` + `answer`, with one-line errors."""

from __future__ import annotations

import json

import pytest


def test_a_data_folder_cannot_choose_which_code_runs(tmp_path):
    from trl_basis.data import TASK_INFO_FILE, default_reward_names
    from trl_basis.scripts.arguments import TrainScriptArguments

    folder = tmp_path / "data"
    folder.mkdir()
    (folder / TASK_INFO_FILE).write_text(json.dumps({"reward_funcs": ["evil_module.reward"]}))
    with pytest.raises(ValueError, match=r"not built in; trl-basis does not import code named by a data folder"):
        default_reward_names(TrainScriptArguments(dataset_name=str(folder)))
    # The user's own flag is trusted; built-in names from the metadata are fine.
    assert default_reward_names(TrainScriptArguments(dataset_name=str(folder), reward_funcs=["x.y"])) == ["x.y"]
    (folder / TASK_INFO_FILE).write_text(json.dumps({"reward_funcs": ["arithmetic"]}))
    assert default_reward_names(TrainScriptArguments(dataset_name=str(folder))) == ["arithmetic"]
    (folder / TASK_INFO_FILE).write_text("{corrupt")
    with pytest.raises(ValueError, match="is not valid JSON"):
        default_reward_names(TrainScriptArguments(dataset_name=str(folder)))


def test_prompt_datasets_need_an_answer_column_only_for_the_built_in_rewards(tmp_path):
    from trl_basis.data import load_task
    from trl_basis.scripts.arguments import TrainScriptArguments

    data = tmp_path / "data.jsonl"
    data.write_text('{"prompt": "1+2="}\n{"prompt": "3+4="}\n')
    custom = TrainScriptArguments(dataset_name=str(data), reward_funcs=["my.reward"], eval_prompts=0)
    train, _, _ = load_task(custom, test="none")
    assert train.column_names == ["prompt"]
    with pytest.raises(ValueError, match="has no answer column 'answer'"):
        load_task(TrainScriptArguments(dataset_name=str(data), eval_prompts=0), test="none")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="could not load dataset .*: the file is empty"):
        load_task(TrainScriptArguments(dataset_name=str(empty), eval_prompts=0), test="none")


def test_bad_task_difficulties_name_the_option():
    with pytest.raises(ValueError, match=r"task_difficulties must be levels among \[1, 2, 3, 4, 5, 6\]; got \[9\]"):
        from trl_basis.data import load_task
        from trl_basis.scripts.arguments import TrainScriptArguments

        load_task(TrainScriptArguments(task_difficulties=[9]))


@pytest.mark.parametrize("world", ["level3", "mixed", "hard"])
def test_the_built_in_task_of_a_world_holds_out_the_worlds_own_split(world):
    """`trl-basis train --world W` evaluates on W's held-out split (for a multi-level world, the union of its levels'
    own splits, which its model never trained on), not on a plain split of the same levels."""
    from trl_basis.data import load_task
    from trl_basis.scripts.arguments import TrainScriptArguments
    from trl_basis.tasks import make_arithmetic_dataset

    train, held_out, _ = load_task(TrainScriptArguments(world=world, task_num_train=300, task_num_test=60))
    expected = make_arithmetic_dataset(num_train=300, num_test=60, world=world)
    assert held_out["prompt"] == expected["test"]["prompt"]
    assert train["prompt"] == expected["train"]["prompt"]
    # Other levels than the world's: a plain split of those levels.
    _, custom, _ = load_task(TrainScriptArguments(world=world, task_difficulties=[3, 4], task_num_test=60))
    plain = make_arithmetic_dataset(num_train=1000, num_test=60, difficulties=(3, 4))["test"]
    assert (custom["prompt"] == plain["prompt"]) == (world != "mixed")
