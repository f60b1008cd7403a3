"""Bad input and faults: each case gets a clear error naming the option and the fix, or a defined fallback, and
no computed work is lost. (More cases live next to the module they test: test_cli.py, test_basis_trainer.py.)"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from _trainer_utils import CPU, tiny_model_path

from trl_basis import BASISConfig, MaxPOConfig, MaxPOTrainer, cli  # noqa: F401 - cli is a submodule
from trl_basis.main_job import CLIError
from trl_basis.tasks import arithmetic_reward, make_arithmetic_dataset


# ------------------------------------------------------------------------------------------------ configs
@pytest.mark.parametrize("value", ["", "null", "None", "NONE", " none ", None])
def test_empty_or_null_reference_cache_dir_disables_the_cache(tmp_path, value):
    args = BASISConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=8, reference_cache_dir=value)
    assert args.reference_cache_dir is None


def test_a_real_reference_cache_dir_is_kept(tmp_path):
    args = BASISConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=8, reference_cache_dir="null-x")
    assert args.reference_cache_dir == "null-x"


@pytest.mark.parametrize("config_cls", [BASISConfig, MaxPOConfig])
def test_scale_rewards_warns_and_names_advantage_scaling(tmp_path, config_cls):
    kwargs = dict(CPU, output_dir=str(tmp_path), per_device_train_batch_size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        config_cls(**kwargs)  # the default: no warning
    with pytest.warns(UserWarning, match="advantage_scaling"):
        config_cls(**kwargs, scale_rewards="batch")


@pytest.mark.parametrize("k", [2.5, "4", True])
def test_non_integer_max_k_names_the_option(tmp_path, k):
    with pytest.raises(ValueError, match="max_k must be a whole number"):
        MaxPOConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=8, num_generations=8, max_k=k)


# ------------------------------------------------------------------------------------------------ MaxPO sizes
@pytest.mark.parametrize("rows", [0, 3])
def test_maxpo_refuses_a_dataset_smaller_than_one_generation_batch(tmp_path, rows):
    """It used to 'train' 0 steps and exit 0. The check runs before the model loads (a bogus model path proves it)."""
    data = make_arithmetic_dataset(num_train=max(rows, 1), num_test=2)["train"].select(range(rows))
    args = MaxPOConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=32, num_generations=8)
    with pytest.raises(ValueError, match=r"fewer than one generation batch of 4 prompts.*0 steps"):
        MaxPOTrainer(str(tmp_path / "no-model"), arithmetic_reward, args=args, train_dataset=data)


# ------------------------------------------------------------------------------------------------ estimators
def test_calibrate_beta_accepts_rewards_that_require_grad():
    from trl_basis.advantages import beta_grid, calibrate_beta, reference_values

    betas = beta_grid()
    g = torch.Generator().manual_seed(0)
    rewards = (torch.rand(16, generator=g) < 0.5).double()
    table = reference_values((torch.rand(16, 8, generator=g) < 0.4).double(), betas)
    expected = calibrate_beta(rewards, table, betas)
    got = calibrate_beta(rewards.clone().requires_grad_(True), table, betas)
    assert got.beta == expected.beta
    torch.testing.assert_close(got.baseline, expected.baseline)


# ------------------------------------------------------------------------------------------------ CLI
@pytest.mark.parametrize("steps", ["-5", "0"])
def test_cli_refuses_a_max_steps_that_trains_nothing(steps):
    with pytest.raises(CLIError, match=f"max_steps must be a positive number.*got {steps}"):
        cli.parse("train", ["--max_steps", steps])


def test_cli_reward_funcs_as_a_yaml_string_is_one_name(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("reward_funcs: arithmetic\ntask_difficulties: 3\n")
    script_args, _, _ = cli.parse("train", ["--config", str(config)])
    assert script_args.reward_funcs == ["arithmetic"] and script_args.task_difficulties == [3]


@pytest.mark.slow
def test_estimate_references_removes_only_the_folder_it_created(tmp_path, monkeypatch):
    """`os.removedirs` used to delete the user's own empty parent folders too."""
    monkeypatch.chdir(tmp_path)
    parent = tmp_path / "project" / "runs"
    parent.mkdir(parents=True)  # the user's own, empty
    stage = parent / "stage"
    args = ["--task_num_train", "16", "--num_reference_samples", "2", "--reference_batch_size", "16"]
    args += ["--reference_cache_dir", "null", "--output_dir", str(stage), "--save_path", str(tmp_path / "refs")]
    assert cli.main(["estimate-references", *args]) == 0
    assert parent.is_dir() and not stage.exists()
    stage.mkdir()  # a folder that existed before the run stays, even empty
    assert cli.main(["estimate-references", *args]) == 0
    assert stage.is_dir()


@pytest.mark.slow
def test_a_plotting_failure_keeps_the_metrics(tmp_path, monkeypatch, capsys):
    from trl_basis import main_job

    def broken_plot(*args, **kwargs):
        raise RuntimeError("no display")

    monkeypatch.setattr(main_job, "plot_curves", broken_plot)
    out = tmp_path / "run"
    argv = ["train", "--max_steps", "2", "--task_num_train", "64", "--per_device_train_batch_size", "16"]
    argv += ["--eval_prompts", "8", "--eval_samples", "2", "--eval_points", "0", "--output_dir", str(out)]
    argv += ["--reference_cache_dir", "null"]
    assert cli.main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["global_step"] == 2 and "plot" not in metrics["files"]
    assert not (out / "training_curves.png").exists() and (out / "model.safetensors").is_file()
    assert "could not draw training_curves.png (RuntimeError: no display)" in capsys.readouterr().err
    assert Path(tiny_model_path()).is_dir()  # the shipped model was only read


# ------------------------------------------------------------------------------------------------ reference rewards
@pytest.mark.parametrize(
    ("rows", "fragment"),
    [
        ([[0.0, 1.0], "01"], "row 1 of column 'refs' is '01' (str), not a list"),
        ([[0.0, 1.0], 0.5], "row 1 of column 'refs' is 0.5 (float), not a list"),
        ([[0.0, 1.7]], "row 0 of column 'refs' holds 1.7, outside [0, 1]"),
        ([[-0.2, 1.0]], "holds -0.2, outside [0, 1]"),
        ([[0.0, "1"]], "holds '1' (str), not a number"),
        ([[0.0, True]], "holds True (bool), not a number"),
        ([[]], "row 0 of column 'refs' has no reference reward"),
        ("abc", "must hold one list of rewards per prompt"),
    ],
)
def test_bad_reference_rewards_get_one_line_naming_column_and_row(rows, fragment):
    from trl_basis.reference_cache import check_reference_rewards

    with pytest.raises(ValueError, match="num_reference_samples") as info:
        check_reference_rewards(rows, "refs")
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_missing_samples_and_ragged_rows_are_valid_reference_rewards():
    from trl_basis.reference_cache import reference_rewards_problem

    assert reference_rewards_problem([[0.0, None, 1.0], [float("nan"), 1.0], [1]], "refs") is None


def test_basis_refuses_a_bad_reference_column_before_the_model_loads(tmp_path):
    from trl_basis import BASISTrainer

    data = make_arithmetic_dataset(num_train=16, num_test=2)["train"]
    data = data.add_column("reference_rewards", [[0.0, 1.7]] + [[0.0, 1.0]] * 15)
    args = BASISConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=8, num_reference_samples=0)
    with pytest.raises(ValueError, match="row 0 of column 'reference_rewards' holds 1.7, outside"):
        BASISTrainer(str(tmp_path / "no-model"), arithmetic_reward, args=args, train_dataset=data)


@pytest.mark.slow
def test_basis_uses_none_and_ragged_reference_rows_as_missing_samples(tmp_path):
    """Rows with None and rows of different lengths are missing samples: the value table treats them like NaN."""
    from trl_basis import BASISTrainer
    from trl_basis.advantages import beta_grid, reference_values

    data = make_arithmetic_dataset(num_train=16, num_test=2)["train"]
    rows = [[0.0, 1.0, None], [1.0, 0.0]] * 8
    trainer = BASISTrainer(
        tiny_model_path(),
        arithmetic_reward,
        args=BASISConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=8, max_steps=1),
        train_dataset=data.add_column("reference_rewards", rows),
    )
    table = trainer._value_table(rows[:2])
    nan = float("nan")
    expected = reference_values(torch.tensor([[0.0, 1.0, nan], [0.0, 1.0, nan]]), beta_grid())
    torch.testing.assert_close(table, expected)


# ------------------------------------------------------------------------------------------------ the cache
def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"reference_rewards": [[0.0, 1.0], [1.0', "cannot be read (JSONDecodeError)"),
        ("garbage", "cannot be read (JSONDecodeError)"),
        ("", "cannot be read (JSONDecodeError)"),
        ('{"rewards": []}', "cannot be read (KeyError)"),
        ("[[0.0, 1.0], [1.0, 0.0]]", "must hold one list of rewards per prompt"),
        ('{"reference_rewards": [[7.0, -2.0], [0.0, 3.0]]}', "holds 7.0, outside [0, 1]"),
        ('{"reference_rewards": [[0.0, 1.0]]}', "it holds 1 prompts, not 2"),
        ('{"reference_rewards": [0.5, 0.5]}', "is 0.5 (float), not a list"),
    ],
)
def test_an_invalid_cache_entry_is_reported_and_never_used(tmp_path, capsys, content, reason):
    from trl_basis.reference_cache import load_cached_rewards

    _write(tmp_path / "key.json", content)
    assert load_cached_rewards(str(tmp_path), "key", 2) is None
    err = capsys.readouterr().err.strip()
    assert err.startswith("[trl_basis] warning: ignoring the invalid reference-reward cache entry")
    assert reason in err and err.endswith("recomputing it.") and "\n" not in err


def test_a_valid_cache_entry_round_trips(tmp_path):
    from trl_basis.reference_cache import load_cached_rewards, save_cached_rewards

    save_cached_rewards(str(tmp_path / "c"), "key", [[0.0, 1.0], [1.0, None]], {"meta": 1})
    got = load_cached_rewards(str(tmp_path / "c"), "key", 2)
    assert got[0] == [0.0, 1.0] and got[1][0] == 1.0 and got[1][1] != got[1][1]  # None comes back as NaN
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["key.json"]  # no temporary left behind


def test_the_cache_key_covers_every_column_the_rewards_read():
    from trl_basis.reference_cache import reference_cache_key

    rows = [{"prompt": [{"role": "user", "content": "1+2="}], "answer": "3"}]
    changed = [{"prompt": [{"role": "user", "content": "1+2="}], "answer": "4"}]
    assert reference_cache_key({"m": 1}, rows) != reference_cache_key({"m": 1}, changed)
    assert reference_cache_key({"m": 1}, rows) == reference_cache_key({"m": 1}, [dict(rows[0])])


def test_the_model_fingerprint_holds_revision_and_commit():
    from transformers import AutoConfig

    from trl_basis.reference_cache import model_fingerprint

    class Model:
        config = AutoConfig.from_pretrained(tiny_model_path())

    Model.config._commit_hash = "abc123"
    fingerprint = model_fingerprint(Model(), revision="v2")
    assert fingerprint["revision"] == "v2" and fingerprint["commit"] == "abc123"
    assert model_fingerprint(Model(), revision="v3") != fingerprint


def test_an_unusable_cache_dir_is_a_warning_not_a_crash(tmp_path, capsys):
    from trl_basis.reference_cache import cache_is_writable, save_cached_rewards

    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert not cache_is_writable(str(a_file))
    assert "is not usable" in capsys.readouterr().err
    assert save_cached_rewards(str(a_file), "key", [[1.0]], {}) is None
    assert "could not write the reference-reward cache entry" in capsys.readouterr().err


@pytest.mark.slow
def test_offline_stage_recomputes_when_answers_change_and_survives_an_unusable_cache(tmp_path, capsys):
    """Same model, same prompts, other answers: the cache must not be reused. And a cache path that is a file
    costs a warning, not the sampled work."""
    from trl_basis import BASISTrainer

    calls = []

    def counting_reward(prompts, completions, answer, **kwargs):
        calls.append(len(prompts))
        return arithmetic_reward(prompts, completions, answer, **kwargs)

    data = make_arithmetic_dataset(num_train=16, num_test=2)["train"]
    wrong = data.map(lambda row: {"answer": str(int(row["answer"]) + 1)})

    def build(dataset, cache):
        args = BASISConfig(
            **CPU,
            output_dir=str(tmp_path / "out"),
            per_device_train_batch_size=8,
            num_reference_samples=2,
            reference_batch_size=16,
            reference_cache_dir=cache,
            filter_constant_prompts=False,
        )
        trainer = BASISTrainer(tiny_model_path(), counting_reward, args=args, train_dataset=dataset)
        trainer.prepare_reference_rewards()
        return trainer

    cache = str(tmp_path / "cache")
    right = build(data, cache).train_dataset["reference_rewards"]
    sampled = len(calls)
    build(data, cache)
    assert len(calls) == sampled  # same data: the cache was used
    off = build(wrong, cache).train_dataset["reference_rewards"]
    assert len(calls) > sampled  # other answers: recomputed, not the first run's rewards
    assert sum(map(sum, off)) < sum(map(sum, right))  # the model rarely writes the off-by-one "answer"

    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    trainer = build(data, str(a_file))
    assert len(trainer.train_dataset["reference_rewards"]) == 16
    assert "is not usable" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ checkpoints
@pytest.mark.slow
@pytest.mark.parametrize("content", ["{truncated", None])
def test_resume_with_a_corrupt_or_missing_state_file_warns_and_restores_the_rest(tmp_path, content):
    from _trainer_utils import arithmetic_train, prompt_reward

    from trl_basis import BASISTrainer
    from trl_basis.trainers._trl_bridge import ESTIMATOR_STATE_FILE

    def build():
        args = BASISConfig(
            **dict(CPU, save_strategy="steps"),
            output_dir=str(tmp_path / "out"),
            per_device_train_batch_size=16,
            max_steps=2,
            save_steps=1,
        )
        return BASISTrainer(tiny_model_path(), [prompt_reward], args=args, train_dataset=arithmetic_train(64))

    build().train()
    checkpoint = tmp_path / "out" / "checkpoint-1"
    state = checkpoint / ESTIMATOR_STATE_FILE
    assert json.loads(state.read_text())["beta"]  # written, and valid JSON
    if content is None:
        state.unlink()
    else:
        state.write_text(content)
    resumed = build()
    with pytest.warns(UserWarning, match=f"{ESTIMATOR_STATE_FILE} could not be read.*restarts empty"):
        resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.state.global_step == 2 and len(resumed._estimator_state["beta"]) == 1


# ------------------------------------------------------------------------------------------------ security
def test_reward_modules_never_shadow_installed_packages(tmp_path, monkeypatch):
    """The working folder goes LAST on sys.path: a stray matplotlib.py there is not what `import matplotlib` finds."""
    import sys

    from trl_basis.main_job import resolve_reward_funcs

    (tmp_path / "my_rewards.py").write_text(
        "def score(prompts, completions, **kw):\n    return [1.0] * len(prompts)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    (func,) = resolve_reward_funcs(["my_rewards.score"])
    assert func.__name__ == "score" and sys.path[-1] == str(tmp_path)
    assert all(sys.path.index(p) < sys.path.index(str(tmp_path)) for p in sys.path if "site-packages" in p)


def test_a_data_folder_cannot_choose_which_code_runs(tmp_path):
    from trl_basis.main_job import TASK_INFO_FILE, TrainScriptArguments, default_reward_names

    folder = tmp_path / "data"
    folder.mkdir()
    (folder / TASK_INFO_FILE).write_text(json.dumps({"reward_funcs": ["evil_module.reward"]}))
    with pytest.raises(CLIError, match=r"not built in; trl-basis does not import code named by a data folder"):
        default_reward_names(TrainScriptArguments(dataset_name=str(folder)))
    # The user's own flag is trusted; built-in names from the metadata are fine.
    assert default_reward_names(TrainScriptArguments(dataset_name=str(folder), reward_funcs=["x.y"])) == ["x.y"]
    (folder / TASK_INFO_FILE).write_text(json.dumps({"reward_funcs": ["arithmetic"]}))
    assert default_reward_names(TrainScriptArguments(dataset_name=str(folder))) == ["arithmetic"]
    (folder / TASK_INFO_FILE).write_text("{corrupt")
    with pytest.raises(CLIError, match="is not valid JSON"):
        default_reward_names(TrainScriptArguments(dataset_name=str(folder)))


def test_no_pickle_loading_and_no_eval_in_the_package():
    """torch.load only with weights_only=True, no pickle, no eval/exec on data, trust_remote_code never forced on."""
    import re

    package = Path(__file__).resolve().parents[1] / "trl_basis"
    for path in package.rglob("*.py"):
        text = path.read_text()
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, (path, call)
        assert not re.search(r"\b(pickle|dill|cloudpickle)\b", text), path
        assert not re.search(r"(?<![\w.])(eval|exec)\(", text), path
        assert "trust_remote_code=True" not in text, path


# ------------------------------------------------------------------------------------------------ TRL pin
def test_the_trl_hook_points_exist_and_a_renamed_one_names_the_supported_range():
    from trl import GRPOTrainer

    from trl_basis.trainers._trl_bridge import SUPPORTED_TRL, check_trl_hooks

    check_trl_hooks(GRPOTrainer)  # the installed release has every hook, with the expected parameters

    class Renamed(GRPOTrainer):
        def _calculate_rewards(self, inputs, prompts, completions):  # a release that dropped a parameter
            return None

    with pytest.raises(ImportError, match=r"needs trl>=1\.16,<1\.17: GRPOTrainer\._calculate_rewards takes"):
        check_trl_hooks(Renamed)
    setup_cfg = (Path(__file__).resolve().parents[1] / "setup.cfg").read_text()
    assert f"trl{SUPPORTED_TRL.replace('1.16', '1.16.0')}" in setup_cfg.replace(" ", "")


# ------------------------------------------------------------------------------------------------ CLI: one line, early
@pytest.mark.parametrize(
    ("yaml_text", "fragment"),
    [
        ("max_steps: 1.5\n", "option 'max_steps' in {path} must be an integer; got 1.5 (float)"),
        ("learning_rate: [1, 2]\n", "option 'learning_rate' in {path} must be a number; got [1, 2] (list)"),
        (
            "per_device_train_batch_size: null\n",
            "'per_device_train_batch_size' in {path} must be an integer; got None",
        ),
        ("save_strategy: no\n", "YAML reads an unquoted no/yes/on/off as false/true: quote it"),
        ("use_peft: 3\n", "option 'use_peft' in {path} must be true or false"),
    ],
)
def test_yaml_values_of_the_wrong_type_name_the_option(tmp_path, yaml_text, fragment):
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    with pytest.raises(CLIError) as info:
        cli.parse("train", ["--config", str(path)])
    assert fragment.format(path=path) in str(info.value)


def test_a_folder_or_a_binary_file_as_config(tmp_path):
    with pytest.raises(CLIError, match="is a folder; pass a YAML file"):
        cli.parse("train", ["--config", str(tmp_path)])
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(CLIError, match="is not UTF-8 text"):
        cli.parse("train", ["--config", str(binary)])


def _copy_tiny_model(tmp_path) -> Path:
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_path(), folder)
    return folder


def test_a_model_folder_without_weights_or_with_corrupt_weights(tmp_path):
    folder = _copy_tiny_model(tmp_path)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:1000])  # truncated
    with pytest.raises(CLIError, match="cannot be read .* corrupt or truncated"):
        cli.parse("train", ["--model_name_or_path", str(folder)])
    weights.unlink()
    with pytest.raises(CLIError, match="has a config.json but no weights"):
        cli.parse("train", ["--model_name_or_path", str(folder)])


@pytest.mark.skipif(__import__("importlib").util.find_spec("bitsandbytes") is not None, reason="bitsandbytes present")
def test_load_in_4bit_without_bitsandbytes():
    with pytest.raises(CLIError, match="--load_in_4bit needs the bitsandbytes package"):
        cli.parse("train", ["--load_in_4bit", "true"])


def test_output_and_save_paths_that_are_files(tmp_path):
    a_file = tmp_path / "f"
    a_file.write_text("x")
    with pytest.raises(CLIError, match="output_dir .* is a file; pass a folder"):
        cli.parse("train", ["--output_dir", str(a_file)])
    with pytest.raises(CLIError, match="save_path .* is a file; pass a folder"):
        cli.parse("estimate-references", ["--save_path", str(a_file)])
    with pytest.raises(CLIError, match="cannot be written"):
        cli.parse("train", ["--output_dir", str(a_file / "sub")])


def test_resume_from_checkpoint_paths(tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(CLIError, match="is not a folder; pass a checkpoint"):
        cli.parse("train", ["--output_dir", str(out), "--resume_from_checkpoint", str(tmp_path / "nope")])
    with pytest.raises(CLIError, match="true, but output_dir .* has no complete checkpoint"):
        cli.parse("train", ["--output_dir", str(out), "--resume_from_checkpoint", "true"])
    incomplete = out / "checkpoint-5"
    incomplete.mkdir(parents=True)
    with pytest.raises(CLIError, match="has no trainer_state.json: it is incomplete"):
        cli.parse("train", ["--output_dir", str(out), "--resume_from_checkpoint", str(incomplete)])
    with pytest.raises(CLIError, match="has no complete checkpoint"):
        cli.parse("train", ["--output_dir", str(out), "--resume_from_checkpoint", "true"])
    (incomplete / "trainer_state.json").write_text("{}")
    _, args, _ = cli.parse("train", ["--output_dir", str(out), "--resume_from_checkpoint", "true"])
    assert args.resume_from_checkpoint == str(incomplete)  # "true": the latest checkpoint, not a folder "true"
    (out / "checkpoint-10").mkdir()  # a later one, half-written: skipped, and said so
    _, args, _ = cli.parse("train", ["--output_dir", str(out), "--resume_from_checkpoint", "true"])
    assert args.resume_from_checkpoint == str(incomplete)
    assert "checkpoint-10 is incomplete" in capsys.readouterr().err
    _, args, _ = cli.parse("train", ["--output_dir", str(out), "--resume_from_checkpoint", "false"])
    assert args.resume_from_checkpoint is None


def test_a_reward_function_with_the_wrong_signature(tmp_path, monkeypatch):
    import sys

    from trl_basis.main_job import resolve_reward_funcs

    (tmp_path / "bad_rewards.py").write_text("def score(completions):\n    return [1.0]\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [*sys.path, str(tmp_path)])
    with pytest.raises(CLIError, match=r"has the signature \(completions\); TRL calls it as .* \*\*kwargs"):
        resolve_reward_funcs(["bad_rewards.score"])


def test_prompt_datasets_need_an_answer_column_only_for_the_built_in_rewards(tmp_path):
    from trl_basis.main_job import TrainScriptArguments, load_task

    data = tmp_path / "data.jsonl"
    data.write_text('{"prompt": "1+2="}\n{"prompt": "3+4="}\n')
    custom = TrainScriptArguments(dataset_name=str(data), reward_funcs=["my.reward"], eval_prompts=0)
    train, _, _ = load_task(custom, test="none")
    assert train.column_names == ["prompt"]
    with pytest.raises(CLIError, match="has no answer column 'answer'"):
        load_task(TrainScriptArguments(dataset_name=str(data), eval_prompts=0), test="none")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(CLIError, match="could not load dataset .*: the file is empty"):
        load_task(TrainScriptArguments(dataset_name=str(empty), eval_prompts=0), test="none")


def test_basis_exact_at_a_large_batch_warns_of_its_cost(tmp_path):
    with pytest.warns(UserWarning, match=r"basis_exact=True costs O\(G·B²\)"):
        BASISConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=1024, basis_exact=True)


def test_maxpo_without_a_prompt_column_is_refused_before_the_model_loads(tmp_path):
    from datasets import Dataset

    data = Dataset.from_dict({"question": ["1+2="] * 8, "answer": ["3"] * 8})
    args = MaxPOConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=8, num_generations=8)
    with pytest.raises(ValueError, match="train_dataset has no 'prompt' column"):
        MaxPOTrainer(str(tmp_path / "no-model"), arithmetic_reward, args=args, train_dataset=data)


@pytest.mark.slow
def test_an_infinite_reward_names_its_function(tmp_path):
    def broken_reward(prompts, completions, **kwargs):
        return [float("inf")] * len(prompts)

    data = make_arithmetic_dataset(num_train=16, num_test=2)["train"]
    args = MaxPOConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=16, num_generations=4, max_k=2)
    trainer = MaxPOTrainer(tiny_model_path(), [arithmetic_reward, broken_reward], args=args, train_dataset=data)
    with pytest.raises(ValueError, match=r"reward function\(s\) \['broken_reward'\] returned an infinite reward"):
        trainer.train()


@pytest.mark.slow
def test_resume_with_another_estimator_setting_is_refused(tmp_path):
    data = make_arithmetic_dataset(num_train=32, num_test=2)["train"]

    def build(k):
        args = MaxPOConfig(
            **dict(CPU, save_strategy="steps"),
            output_dir=str(tmp_path / "out"),
            per_device_train_batch_size=16,
            num_generations=4,
            max_k=k,
            max_steps=2,
            save_steps=1,
        )
        return MaxPOTrainer(tiny_model_path(), arithmetic_reward, args=args, train_dataset=data)

    build(2).train()
    with pytest.raises(ValueError, match="max_k=2 in the checkpoint but 3 now"):
        build(3).train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-1"))
    build(2).train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-1"))  # the same settings resume


# ------------------------------------------------------------------------------------------------ Ctrl-C
def _run_until(args: list[str], marker: str, cwd: Path, delay: float):
    """Start `trl-basis`, wait for `marker` on its output, then send SIGINT after `delay` seconds."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore")
    proc = subprocess.Popen(
        [sys.executable, "-m", "trl_basis", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if marker in line:
            break
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    return proc.returncode, "".join(seen) + out, err


@pytest.mark.slow
def test_ctrl_c_during_training_saves_the_model_and_metrics(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--max_steps", "2000", "--task_num_train", "128", "--eval_prompts", "8", "--eval_samples", "2"]
    args += ["--eval_points", "0", "--output_dir", str(out), "--reference_cache_dir", "null"]
    code, stdout, stderr = _run_until(args, "[held-out] before training", tmp_path, delay=3.0)
    assert code == 130, stderr[-2000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("trl-basis: error: interrupted at step") and str(out) in last
    assert "Traceback" not in stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted"] is True and 0 < metrics["global_step"] < 2000
    assert (out / "model.safetensors").is_file()


@pytest.mark.slow
def test_ctrl_c_before_training_exits_cleanly(tmp_path):
    args = ["train", "--task_num_train", "2000", "--output_dir", str(tmp_path / "run"), "--reference_cache_dir"]
    args += [str(tmp_path / "cache")]
    code, _, stderr = _run_until(args, "[trl-basis] basis on", tmp_path, delay=2.0)
    assert code == 130 and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("trl-basis: error: interrupted before training started")
    assert not list((tmp_path / "cache").glob("*.json"))  # no partial cache entry


def test_an_interrupted_cache_write_leaves_no_entry(tmp_path, monkeypatch):
    """Written through a temporary file and a rename: a crash (here Ctrl-C) in the middle leaves nothing behind."""
    from trl_basis import reference_cache as references

    def half_then_interrupt(obj, f, **kwargs):
        f.write('{"reference_rewards": [[0.0, 1')
        raise KeyboardInterrupt

    monkeypatch.setattr(references.json, "dump", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        references.save_cached_rewards(str(tmp_path), "key", [[0.0, 1.0]], {})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_sigkill_during_the_offline_stage_leaves_no_cache_entry(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    cache = tmp_path / "cache"
    args = ["estimate-references", "--task_num_train", "3000", "--reference_cache_dir", str(cache)]
    args += ["--save_path", str(tmp_path / "refs")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "trl_basis", *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
    )
    for line in proc.stdout:
        if "[trl-basis] reference rewards" in line:
            break
    time.sleep(4.0)  # sampling 3000 x 8 completions takes far longer
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not cache.exists() or list(cache.iterdir()) == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"basis_history_discount": 0.0}, r"basis_history_discount must be in \(0, 1\]"),
        ({"basis_history_discount": 1.5}, r"basis_history_discount must be in \(0, 1\]"),
        ({"basis_history_weight": -1.0}, "basis_history_weight must be > 0"),
    ],
)
def test_bad_history_options_name_the_option(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        BASISConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=8, basis_history=True, **overrides)


def test_bad_task_difficulties_name_the_option():
    with pytest.raises(CLIError, match=r"task_difficulties must be levels among \[1, 2, 3, 4, 5, 6\]; got \[9\]"):
        from trl_basis.main_job import TrainScriptArguments, load_task

        load_task(TrainScriptArguments(task_difficulties=[9]))
