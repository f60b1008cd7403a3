"""`trl_basis/scripts/`: the TRL-shaped scripts behind `trl-basis train` and `trl-basis estimate-references`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _trainer_utils import tiny_model_path

from trl_basis import cli


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
    from trl_basis import reporting  # writes metrics.json, then the plot, for scripts.train

    def broken_plot(*args, **kwargs):
        raise RuntimeError("no display")

    monkeypatch.setattr(reporting, "plot_curves", broken_plot)
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


def test_the_scripts_pick_their_parser_from_the_trainer_flag_or_the_yaml(tmp_path):
    from trl_basis import MaxPOConfig
    from trl_basis.cli import trainer_name
    from trl_basis.scripts.train import make_parser

    config = tmp_path / "run.yaml"
    config.write_text("trainer: maxpo\nmax_k: 2\n")
    assert trainer_name(["--config", str(config)]) == "maxpo"
    assert trainer_name(["--config", str(config), "--trainer", "grpo"]) == "grpo"
    assert trainer_name(["--trainer=grpo"]) == "grpo"
    assert trainer_name([]) == "basis"
    parser = make_parser(trainer_name(["--config", str(config)]))
    script_args, training_args, _ = parser.parse_args_and_config(
        ["--config", str(config), "--output_dir", str(tmp_path / "out"), "--use_cpu", "true", "--bf16", "false"]
    )
    assert script_args.trainer == "maxpo" and isinstance(training_args, MaxPOConfig) and training_args.max_k == 2
