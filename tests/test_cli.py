"""`trl-basis` / `python -m trl_basis`: parsing, every example config, one-line errors on bad input, the main job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from trl_basis import cli
from trl_basis.cli import CLIError
from trl_basis.tasks import tiny_model_path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _in_a_fresh_folder(tmp_path, monkeypatch):
    """Relative output folders (`outputs/...`) resolve in a fresh folder: a run the user made in the checkout (which
    `trl-basis train` then refuses to overwrite) never changes what these tests see."""
    monkeypatch.chdir(tmp_path)


def run_cli(
    *args: str,
    cwd: Path,
    timeout: int = 600,
    launcher: list[str] | None = None,
    env: dict[str, str] | None = None,
):
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore", **(env or {}))
    cmd = [*(launcher or [sys.executable]), "-m", "trl_basis", *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return proc, time.perf_counter() - start


# ---------------------------------------------------------------------------------------------------- parsing
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_config_parses(path):
    script_args, training_args, model_args = cli.parse(
        "train", ["--config", str(path), "--model_name_or_path", tiny_model_path()], check_model_path=False
    )
    expected = {"basis": "BASISConfig", "maxpo": "MaxPOConfig", "grpo": "GRPOConfig"}[script_args.trainer]
    assert type(training_args).__name__ == expected
    assert training_args.max_steps > 0 and training_args.output_dir
    if path.name.startswith("qwen"):  # GSM8K with LoRA and the math-verify reward
        original = cli.read_yaml(["--config", str(path)])[1]
        assert original["model_name_or_path"].startswith("Qwen/")
        assert model_args.use_peft and model_args.lora_target_modules
        assert script_args.dataset_name == "openai/gsm8k" and script_args.dataset_config == "main"
        assert script_args.reward_funcs == ["math_verify"]
        assert training_args.bf16


def test_yaml_then_flags_then_defaults(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("trainer: maxpo\nmax_k: 2\nlearning_rate: 1.0e-4\nenv:\n  TRL_BASIS_TEST_ENV: 'yes'\n")
    script_args, args, _ = cli.parse(
        "train", ["--config", str(config), "--max_k", "3", "--model_name_or_path", tiny_model_path()]
    )
    assert script_args.trainer == "maxpo" and type(args).__name__ == "MaxPOConfig"
    assert args.max_k == 3  # the flag wins over the YAML
    assert args.learning_rate == 1e-4  # the YAML wins over the CLI's defaults
    assert args.max_completion_length == 8 and args.report_to == []  # the built-in task's defaults
    assert os.environ.pop("TRL_BASIS_TEST_ENV") == "yes"


def test_dashed_flags_and_equals_signs():
    _, args, model_args = cli.parse(
        "train", ["--trainer=maxpo", "--max-steps", "7", "--model-name-or-path", tiny_model_path()]
    )
    assert type(args).__name__ == "MaxPOConfig" and args.max_steps == 7
    assert model_args.model_name_or_path == tiny_model_path()


def test_output_dir_defaults():
    assert cli.parse("train", ["--trainer", "grpo"])[1].output_dir == os.path.join("outputs", "trl-basis-tiny-grpo")
    other = ["--dataset_name", "my/data", "--model_name_or_path", tiny_model_path(), "--trainer", "maxpo"]
    assert cli.parse("train", other)[1].output_dir == os.path.join("outputs", "tiny_model-maxpo")
    assert cli.parse("train", [*other, "--output_dir", "x"])[1].output_dir == "x"


def test_no_arguments_means_basis_on_the_tiny_task_on_cpu():
    script_args, args, model_args = cli.parse("train", [])
    assert script_args.trainer == "basis" and type(args).__name__ == "BASISConfig"
    assert script_args.dataset_name is None and script_args.reward_funcs is None
    assert not args.gradient_checkpointing
    if not torch.cuda.is_available():
        assert args.use_cpu and not args.bf16
    assert (
        args.learning_rate == 5e-5
        and args.max_steps == 300
        and args.output_dir == os.path.join("outputs", "trl-basis-tiny")
    )
    assert model_args.model_name_or_path == tiny_model_path()
    assert script_args.task_difficulties == [3] and script_args.task_num_train == 1000


def test_world_picks_the_model_levels_and_output_folder():
    script_args, args, model_args = cli.parse("train", ["--world", "mixed"])
    assert model_args.model_name_or_path == tiny_model_path("mixed")
    assert script_args.task_difficulties == [3, 4]
    assert args.output_dir == os.path.join("outputs", "trl-basis-tiny-mixed")
    script_args, _, model_args = cli.parse("train", ["--world", "hard", "--trainer", "maxpo"])
    assert model_args.model_name_or_path == tiny_model_path("mixed") and script_args.task_difficulties == [4]
    with pytest.raises(cli.CLIError, match="world"):
        cli.parse("train", ["--world", "tiny"])


def test_tiny_basis_example_is_the_no_argument_run():
    _, example, _ = cli.parse("train", ["--config", str(ROOT / "examples" / "tiny_basis.yaml")])
    _, default, _ = cli.parse("train", [])
    for key in (
        "max_steps",
        "per_device_train_batch_size",
        "learning_rate",
        "lr_scheduler_type",
        "warmup_steps",
        "max_completion_length",
        "num_reference_samples",
        "reference_batch_size",
        "output_dir",
        "seed",
        "scale_rewards",
        "gradient_checkpointing",
        "temperature",
    ):
        assert getattr(example, key) == getattr(default, key), key
    script_example, _, _ = cli.parse("train", ["--config", str(ROOT / "examples" / "tiny_basis.yaml")])
    script_default, _, _ = cli.parse("train", [])
    for key in ("task_num_train", "task_num_test", "task_seed", "task_difficulties", "eval_prompts", "eval_samples"):
        assert getattr(script_example, key) == getattr(script_default, key), key


def test_estimate_references_accepts_a_training_yaml():
    script_args, args, _ = cli.parse(
        "estimate-references",
        ["--config", str(ROOT / "examples" / "tiny_basis.yaml"), "--model_name_or_path", tiny_model_path()],
    )
    assert type(args).__name__ == "BASISConfig" and script_args.save_path


# ---------------------------------------------------------------------------------------------------- bad input
def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


BAD_INPUTS = {
    "unknown-trainer-flag": (lambda tmp: ["train", "--trainer", "ppo"], "'ppo'"),
    "unknown-trainer-yaml": (lambda tmp: ["train", "--config", _write(tmp / "t.yaml", "trainer: dpo\n")], "'dpo'"),
    "unknown-yaml-key": (
        lambda tmp: ["train", "--config", _write(tmp / "k.yaml", "learning_rat: 1.0e-4\n")],
        "learning_rat",
    ),
    "key-of-another-trainer": (
        lambda tmp: ["train", "--config", _write(tmp / "m.yaml", "trainer: grpo\nmax_k: 2\n")],
        "max_k",
    ),
    "unknown-flag": (lambda tmp: ["train", "--max_stepz", "3"], "--max_stepz"),
    "bad-value": (lambda tmp: ["train", "--max_steps", "many"], "many"),
    "missing-model-path": (lambda tmp: ["train", "--model_name_or_path", str(tmp / "no_such_model")], "no_such_model"),
    "missing-config-file": (lambda tmp: ["train", "--config", str(tmp / "nope.yaml")], "nope.yaml"),
    "unknown-command": (lambda tmp: ["fine-tune"], "fine-tune"),
    "missing-question-column": (
        lambda tmp: ["train", "--dataset_name", _write(tmp / "d.jsonl", '{"problem": "1+1", "answer": "2"}\n')],
        "question",
    ),
    "missing-answer-column": (
        lambda tmp: [
            "train",
            "--dataset_name",
            _write(tmp / "d.jsonl", '{"question": "1+1", "solution": "2"}\n'),
            "--eval_prompts",
            "0",
        ],
        "answer",
    ),
    "missing-test-split": (
        lambda tmp: ["train", "--dataset_name", _write(tmp / "d.jsonl", '{"question": "1+1", "answer": "2"}\n')],
        "'test'",
    ),
    "unknown-reward": (lambda tmp: ["train", "--reward_funcs", "no_such_module.reward"], "no_such_module"),
    "streaming": (lambda tmp: ["train", "--dataset_streaming", "true"], "dataset_streaming"),
    "maxpo-k-too-large": (lambda tmp: ["train", "--trainer", "maxpo", "--max_k", "8"], "max_k=8"),
}


def _bad_args(name: str, tmp_path: Path) -> tuple[list[str], str]:
    make_args, bad_thing = BAD_INPUTS[name]
    args = make_args(tmp_path)
    return args, bad_thing


def _assert_one_line(stderr: str, bad_thing: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("trl-basis: error: ") and bad_thing in lines[0], lines[0]


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_gives_one_line_before_any_model_loads(tmp_path, monkeypatch, capsys, name):
    from trl_basis.scripts import train as train_script

    def no_model(*args, **kwargs):
        raise AssertionError("bad input reached the point where the model loads")

    monkeypatch.setattr(train_script, "trainer_class", no_model)
    monkeypatch.chdir(tmp_path)
    args, bad_thing = _bad_args(name, tmp_path)
    assert cli.main(args) == 2
    _assert_one_line(capsys.readouterr().err, bad_thing)
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("name", ["unknown-yaml-key", "missing-model-path", "missing-question-column"])
def test_bad_input_fails_fast_in_a_real_process(tmp_path, name):
    args, bad_thing = _bad_args(name, tmp_path)
    proc, seconds = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    _assert_one_line(proc.stderr, bad_thing)
    assert "Traceback" not in proc.stderr and "Loading weights" not in proc.stdout + proc.stderr
    assert not (tmp_path / "outputs").exists()
    assert seconds < 120, f"took {seconds:.0f}s"  # imports only: about 10 s on 2 cores (more when they are busy)


def test_parse_errors_are_cli_errors():
    with pytest.raises(CLIError, match="did you mean --learning_rate"):
        cli.parse("train", ["--learning-rat", "1"])
    with pytest.raises(CLIError, match="unknown option --basis_beta_num .renamed --basis_temperature_num."):
        cli.parse("train", ["--basis_beta_num", "10"])
    with pytest.raises(CLIError, match="unknown option --advantage_scaling"):  # 0.2 dropped it: docs/migration.md
        cli.parse("train", ["--advantage_scaling", "none"])


def test_help_lists_commands():
    assert cli.main(["--help"]) == 0


# ---------------------------------------------------------------------------------------------------- the main job
REDUCED = [
    "--max_steps",
    "3",
    "--task_num_train",
    "192",
    "--per_device_train_batch_size",
    "16",
    "--eval_prompts",
    "24",
    "--eval_samples",
    "4",
    "--eval_points",
    "1",
]


def check_outputs(out: Path, trainer: str, steps: int) -> dict:
    for name in ("model.safetensors", "config.json", "metrics.json", "training_curves.png"):
        assert (out / name).is_file(), name
    png = (out / "training_curves.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 10_000
    import matplotlib.image

    assert matplotlib.image.imread(str(out / "training_curves.png")).ndim == 3
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["trainer"] == trainer and metrics["global_step"] == steps
    for when in ("before", "after"):
        assert 0.0 <= metrics[when]["accuracy"] <= 1.0
    assert metrics["before"]["step"] == 0 and metrics["after"]["step"] == steps
    assert [p["step"] for p in metrics["accuracy_points"]] == sorted({0, round(steps / 2), steps})
    assert metrics["series"]["steps"] == list(range(1, steps + 1))
    assert len(metrics["series"]["reward"]) == steps and metrics["wall_seconds"] > 0
    return metrics


@pytest.mark.slow
def test_main_job_without_arguments_reduced(tmp_path):
    """`trl-basis train` with its defaults, only shorter: writes the model, metrics.json and the plot."""
    out = tmp_path / "outputs" / "trl-basis-tiny"
    proc, _ = run_cli("train", *REDUCED, "--reference_cache_dir", str(tmp_path / "cache"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = check_outputs(out, "basis", 3)
    assert len(metrics["series"]["temperature"]) == 3 and all(
        0.01 <= b <= 5.0 for b in metrics["series"]["temperature"]
    )
    assert metrics["estimator_state"]["temperature"] == pytest.approx(metrics["series"]["temperature"])
    assert "[held-out] before training" in proc.stdout and str(out / "training_curves.png") in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("trainer", ["maxpo", "grpo"])
def test_main_job_other_trainers(tmp_path, trainer):
    out = tmp_path / "run"
    proc, _ = run_cli("train", "--trainer", trainer, *REDUCED, "--output_dir", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = check_outputs(out, trainer, 3)
    card = (out / "README.md").read_text()  # the model card, with the held-out numbers just measured
    assert f"trained with **{ {'maxpo': 'MaxPO', 'grpo': 'GRPO'}[trainer] }**" in card
    assert f"| pass@1 | {metrics['before']['accuracy']:.3f} | {metrics['after']['accuracy']:.3f} |" in card
    assert "the built-in arithmetic task" in card and f"`{tiny_model_path()}`" in card
    if trainer == "maxpo":
        assert metrics["series"]["k"] == [4, 4, 4] and len(metrics["series"]["max_at_k"]) == 3
        # MaxPO's own target, pass@K at its K = 4, beside pass@1: in the summary, the card and metrics.json
        before, after = metrics["before"]["pass_at_k"]["4"], metrics["after"]["pass_at_k"]["4"]
        assert metrics["target_k"] == 4 and f"| pass@4 | {before:.3f} | {after:.3f} |" in card
        assert f"pass@4 (the trainer's K) {before:.3f} -> {after:.3f}" in proc.stdout
    else:
        assert metrics["target_k"] is None and "(the trainer's K)" not in proc.stdout
        assert f"| pass@4 | {metrics['before']['pass_at_k']['4']:.3f} |" in card  # pass@eval_samples


@pytest.mark.slow
def test_estimate_references_then_train_on_the_saved_dataset(tmp_path):
    saved = tmp_path / "refs"
    proc, _ = run_cli(
        "estimate-references",
        "--task_num_train",
        "48",
        "--num_reference_samples",
        "4",
        "--reference_cache_dir",
        str(tmp_path / "cache"),
        "--save_path",
        str(saved),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (tmp_path / "outputs").exists(), "the offline stage left its work folder behind"
    from datasets import load_from_disk

    data = load_from_disk(str(saved))
    assert set(data) == {"train", "test"} and len(data["train"]) == 48
    assert all(len(r) == 4 for r in data["train"]["reference_rewards"])
    info = json.loads((saved / "trl_basis_task.json").read_text())
    assert info["reward_funcs"] == ["arithmetic"] and info["task"] == "arithmetic"
    # The saved dataset keeps the built-in task's defaults and reward.
    script_args, args, _ = cli.parse("train", ["--dataset_name", str(saved)])
    assert args.max_completion_length == 8 and script_args.reward_funcs is None

    # num_reference_samples=0: training must use the saved column (it may not sample references again).
    out = tmp_path / "run"
    proc, _ = run_cli(
        "train",
        "--dataset_name",
        str(saved),
        "--num_reference_samples",
        "0",
        "--filter_constant_prompts",
        "false",
        "--max_steps",
        "2",
        "--per_device_train_batch_size",
        "8",
        "--eval_prompts",
        "8",
        "--eval_samples",
        "2",
        "--eval_points",
        "0",
        "--plot",
        "false",
        "--output_dir",
        str(out),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["global_step"] == 2 and metrics["num_train_prompts"] == 48
    assert not (out / "training_curves.png").exists()


@pytest.mark.slow
@pytest.mark.distributed
def test_main_job_on_two_cpu_processes(tmp_path):
    """`accelerate launch --config_file accelerate_configs/cpu_multiprocess.yaml -m trl_basis train`."""
    launcher = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(ROOT / "accelerate_configs" / "cpu_multiprocess.yaml"),
        "--main_process_port",
        "29517",
    ]
    out = tmp_path / "run"
    proc, _ = run_cli(
        "train",
        *REDUCED,
        "--per_device_train_batch_size",
        "8",  # the global batch stays 16 prompts
        "--reference_cache_dir",
        str(tmp_path / "cache"),
        "--output_dir",
        str(out),
        launcher=launcher,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = check_outputs(out, "basis", 3)
    assert metrics["num_processes"] == 2 and metrics["deepspeed_zero_stage"] is None


@pytest.mark.parametrize("steps", ["-5", "0"])
def test_cli_refuses_a_max_steps_that_trains_nothing(steps):
    with pytest.raises(CLIError, match=f"max_steps must be a positive number.*got {steps}"):
        cli.parse("train", ["--max_steps", steps])


def test_cli_reward_funcs_as_a_yaml_string_is_one_name(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("reward_funcs: arithmetic\ntask_difficulties: 3\n")
    script_args, _, _ = cli.parse("train", ["--config", str(config)])
    assert script_args.reward_funcs == ["arithmetic"] and script_args.task_difficulties == [3]


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


@pytest.mark.parametrize("left", ["metrics.json", "model.safetensors", "adapter_config.json", "checkpoint-5"])
def test_an_output_dir_with_a_previous_run_is_refused(tmp_path, capsys, left):
    out = tmp_path / "run"
    out.mkdir()
    cli.parse("train", ["--output_dir", str(out)])  # an empty folder is fine
    (out / left).mkdir() if left.startswith("checkpoint") else (out / left).write_text("{}")
    with pytest.raises(CLIError, match=r"already holds a run .*--output_dir, or --overwrite_output_dir true"):
        cli.parse("train", ["--output_dir", str(out)])
    assert cli.main(["train", "--output_dir", str(out)]) == 2
    _assert_one_line(capsys.readouterr().err, left)
    _, args, _ = cli.parse("train", ["--output_dir", str(out), "--overwrite_output_dir", "true"])
    assert args.output_dir == str(out)


def test_the_default_output_dir_is_not_overwritten_either(tmp_path):
    """The README's multi-process example once replaced the main job's model and metrics without a word."""
    (tmp_path / "outputs" / "trl-basis-tiny").mkdir(parents=True)
    (tmp_path / "outputs" / "trl-basis-tiny" / "metrics.json").write_text("{}")
    with pytest.raises(CLIError, match="outputs/trl-basis-tiny"):
        cli.parse("train", [])
    assert cli.parse("train", ["--output_dir", "outputs/two-processes"])[1].output_dir == "outputs/two-processes"


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
    with pytest.raises(CLIError, match="already holds a run"):  # "false": a new run, over the checkpoints
        cli.parse("train", ["--output_dir", str(out), "--resume_from_checkpoint", "false"])
    fresh = ["--output_dir", str(out), "--resume_from_checkpoint", "false", "--overwrite_output_dir", "true"]
    assert cli.parse("train", fresh)[1].resume_from_checkpoint is None


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
        # A run started in the background by a non-interactive shell inherits SIGINT ignored, and Python then never
        # raises KeyboardInterrupt: give the child the default disposition, as a terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
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
    # Interrupt once a training step was logged (a fixed delay after the first evaluation is too short on a loaded
    # machine: the run was then still before its first step).
    code, stdout, stderr = _run_until(args, "[train] step", tmp_path, delay=0.5)
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
    # No cache entry; only the chunks of the interrupted stage (kept so that a rerun resumes), each one whole (a
    # chunk being written when the SIGKILL came stays a temporary, which the loader never reads).
    leftovers = [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []
    assert all(p.parent.name.endswith(".partial") and p.name.startswith("chunk-") for p in leftovers), leftovers
    for chunk in (p for p in leftovers if p.suffix == ".json"):
        assert len(json.loads(chunk.read_text())["reference_rewards"]) > 0


# ---------------------------------------------------------------------------------------------------- estimator by name
def test_the_estimator_picks_the_trainer_unless_the_trainer_is_given(tmp_path):
    from trl_basis import BASISConfig, MaxPOConfig

    script_args, args, _ = cli.parse("train", ["--advantage_estimator", "rloo"])
    assert script_args.trainer == "maxpo" and isinstance(args, MaxPOConfig) and args.advantage_estimator == "rloo"
    script_args, args, _ = cli.parse("train", ["--advantage_estimator", "reinforce_pp"])
    assert (
        script_args.trainer == "basis" and isinstance(args, BASISConfig) and args.advantage_estimator == "reinforce_pp"
    )
    config = tmp_path / "run.yaml"
    config.write_text("advantage_estimator: pkpo\n")
    script_args, args, _ = cli.parse("train", ["--config", str(config)])
    assert script_args.trainer == "maxpo" and isinstance(args, MaxPOConfig) and args.advantage_estimator == "pkpo"
    with pytest.raises(CLIError, match="advantage_estimator='rloo' is not a registered one-completion"):
        cli.parse("train", ["--trainer", "basis", "--advantage_estimator", "rloo"])  # --trainer wins


def test_an_unknown_estimator_is_one_line(capsys):
    assert cli.main(["train", "--advantage_estimator", "no_such_estimator"]) == 2
    _assert_one_line(capsys.readouterr().err, "advantage_estimator='no_such_estimator'")


@pytest.mark.slow
def test_an_estimator_registered_at_run_time_trains_by_name(tmp_path):
    from trl_basis.advantages import ESTIMATORS, register_estimator

    @register_estimator("test_mean_baseline", group=False)
    def mean_baseline(rewards, batch, state, args):
        """Reward minus the batch mean."""
        state["calls"] = state.get("calls", 0) + 1
        return rewards - rewards.nanmean(), {"test_mean_baseline/calls": float(state["calls"])}

    out = tmp_path / "run"
    argv = ["train", "--advantage_estimator", "test_mean_baseline", "--max_steps", "2", "--task_num_train", "64"]
    argv += ["--per_device_train_batch_size", "16", "--eval_prompts", "8", "--eval_samples", "2", "--eval_points"]
    argv += ["0", "--save_strategy", "steps", "--save_steps", "2", "--plot", "false", "--output_dir", str(out)]
    try:
        assert cli.main(argv) == 0
    finally:
        del ESTIMATORS["test_mean_baseline"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["trainer"] == "basis" and metrics["global_step"] == 2
    history = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())["log_history"]
    assert [h["test_mean_baseline/calls"] for h in history if "test_mean_baseline/calls" in h] == [1.0, 2.0]
