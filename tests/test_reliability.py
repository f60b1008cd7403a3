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
