"""DeepSpeed ZeRO-2 / ZeRO-3 on CPU (2 processes, gloo, DS_ACCELERATOR=cpu) with both trainers.

Each run goes through `distributed_run.py` (torchrun) with a DeepSpeed config passed as `deepspeed=` in the training
arguments. Checked: DeepSpeed really runs (stage and process count reported by the trainer), parameters change, the
advantages equal a 1-process run without DeepSpeed over the same global batch (the runner's `position_reward` does not
depend on the sampled completions), checkpoints carry the estimator state (`trl_basis_state.json`) and a resumed run
starts from it, LoRA trains only the adapter under ZeRO-3, and ZeRO-3 generation works with and without
`ds3_gather_for_generation`.

Two things are needed for DeepSpeed on a machine without GPUs (the runner and `trl-basis train` do both): accelerate
drops DeepSpeed when `use_cpu=True`, and with no GPU it picks no process-group backend, so accelerate's state is set
up for DeepSpeed on gloo before the training arguments (`use_configured_state`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from test_distributed import assert_same_global_batch, launch

pytest.importorskip("deepspeed", reason="the optional extra: pip install -e '.[deepspeed]' (CI installs it)")
pytestmark = [pytest.mark.distributed, pytest.mark.slow]


def zero_config(stage: int) -> dict:
    zero = {"stage": stage, "overlap_comm": False, "contiguous_gradients": True}
    if stage == 3:
        zero.update(stage3_gather_16bit_weights_on_model_save=True)
    return {
        "zero_optimization": zero,
        "train_micro_batch_size_per_gpu": "auto",
        "train_batch_size": "auto",
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "bf16": {"enabled": False},
        "fp16": {"enabled": False},
        "zero_allow_untested_optimizer": True,
    }


@pytest.fixture(scope="module")
def ds_configs(tmp_path_factory) -> dict[int, str]:
    folder = tmp_path_factory.mktemp("ds_configs")
    paths = {}
    for stage in (2, 3):
        path = folder / f"zero{stage}.json"
        path.write_text(json.dumps(zero_config(stage)))
        paths[stage] = str(path)
    return paths


@pytest.fixture(scope="module")
def single_runs(tmp_path_factory):
    """1-process runs without DeepSpeed, computed once per argument set and shared by the tests."""
    cache: dict[tuple[str, ...], dict] = {}

    def get(*args: str) -> dict:
        if args not in cache:
            out = tmp_path_factory.mktemp("single")
            cache[args] = launch(out, 1, *args)[0]
        return cache[args]

    return get


TRAINER_ARGS = {
    "basis": ["--trainer", "basis"],
    # K anneals from 3 to 1, so the saved K history is not constant.
    "maxpo": ["--trainer", "maxpo", "--max-k", "3", "--max-k-final", "1", "--steps", "3"],
}
HISTORY_KEY = {"basis": "temperature", "maxpo": "k"}


def steps_of(args: list[str]) -> int:
    return int(args[args.index("--steps") + 1]) if "--steps" in args else 2


@pytest.mark.parametrize("trainer", ["basis", "maxpo"])
@pytest.mark.parametrize("stage", [2, 3])
def test_zero_matches_one_process_and_resumes(tmp_path: Path, ds_configs, single_runs, stage, trainer):
    args = TRAINER_ARGS[trainer]
    steps = steps_of(args)
    first = launch(tmp_path / "first", 2, *args, "--deepspeed", ds_configs[stage], "--save-steps", "1")
    for rank in first:
        assert rank["zero_stage"] == stage and rank["num_processes"] == 2, "DeepSpeed did not run"
        assert rank["global_step"] == steps
    assert_same_global_batch(first, single_runs(*args))

    # Every checkpoint holds the estimator state of the steps before it.
    key = HISTORY_KEY[trainer]
    history = first[0]["estimator_state"][key]
    assert len(history) == steps
    for step in range(1, steps + 1):
        checkpoint = tmp_path / "first" / "run" / f"checkpoint-{step}"
        saved = json.loads((checkpoint / "trl_basis_state.json").read_text())
        assert saved[key] == pytest.approx(history[:step])

    # Resume from the first checkpoint: the calibration state is restored, then extended by the remaining steps,
    # which see the same batches (and so the same rewards and advantages) as the uninterrupted run.
    checkpoint = str(tmp_path / "first" / "run" / "checkpoint-1")
    resumed = launch(tmp_path / "resumed", 2, *args, "--deepspeed", ds_configs[stage], "--resume", checkpoint)
    for rank in resumed:
        assert rank["zero_stage"] == stage and rank["global_step"] == steps
        assert rank["estimator_state"][key][:1] == pytest.approx(history[:1])
        assert len(rank["estimator_state"][key]) == steps
        assert rank["changed"], "parameters did not change after resuming"
    assert len(resumed[0]["records"]) == steps - 1
    for rank in range(2):
        for later, original in zip(resumed[rank]["records"], first[rank]["records"][1:]):
            assert later["rewards"] == original["rewards"]
            assert later["local_advantages"] == pytest.approx(original["local_advantages"], abs=1e-6)
    if trainer == "maxpo":  # K depends only on the step: the resumed run continues the anneal exactly
        assert resumed[0]["estimator_state"]["k"] == history


def test_lora_under_zero3(tmp_path: Path, ds_configs, single_runs):
    multi = launch(tmp_path / "lora", 2, "--trainer", "basis", "--lora", "--deepspeed", ds_configs[3])
    for rank in multi:
        assert rank["zero_stage"] == 3
        assert rank["changed"] and all("lora_" in name for name in rank["changed"]), rank["changed"]
    assert_same_global_batch(multi, single_runs("--trainer", "basis", "--lora"))


def test_zero3_generation_without_gathering(tmp_path: Path, ds_configs, single_runs):
    """`ds3_gather_for_generation=False`: generation runs on the sharded model (both ranks in lockstep)."""
    multi = launch(tmp_path / "nogather", 2, "--trainer", "maxpo", "--deepspeed", ds_configs[3], "--no-ds3-gather")
    assert all(rank["zero_stage"] == 3 for rank in multi)
    assert_same_global_batch(multi, single_runs("--trainer", "maxpo"))


def test_main_job_under_zero3(tmp_path: Path, ds_configs):
    """`torchrun --nproc_per_node 2 -m trl_basis train --deepspeed zero3.json`: the held-out evaluation gathers the
    ZeRO-3 shards for generation on both ranks, and rank 0 writes the outputs."""
    from test_cli import REDUCED, check_outputs, run_cli

    out = tmp_path / "run"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533"]
    proc, _ = run_cli(
        "train",
        *REDUCED,
        "--per_device_train_batch_size",
        "8",
        "--deepspeed",
        ds_configs[3],
        "--reference_cache_dir",
        str(tmp_path / "cache"),
        "--output_dir",
        str(out),
        launcher=launcher,
        env={"DS_ACCELERATOR": "cpu"},
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = check_outputs(out, "basis", 3)
    assert metrics["deepspeed_zero_stage"] == 3 and metrics["num_processes"] == 2
