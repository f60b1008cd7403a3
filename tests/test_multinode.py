"""Two simulated nodes of one process each (two `torchrun --nnodes 2 --node_rank R` on 127.0.0.1, gloo), each with
its own reference cache and its own output folder, as on a cluster whose nodes have their own home folders.

Every decision that changes which collectives run (cache hit or miss, valid or not, writable or not) and every piece
of restored estimator state is taken on the main process and shared, so whatever each node holds locally, every run
finishes, every rank's advantages for a global batch are identical, and they equal a one-process run's.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

RUNNER = Path(__file__).with_name("distributed_run.py")
pytestmark = [pytest.mark.distributed, pytest.mark.slow]
# 32 prompts, 4 reference samples each: two chunks of 16 on two processes, four of 8 on one.
BASIS = ["--trainer", "basis", "--offline", "--history", "--num-prompts", "32", "--steps", "2"]
MAXPO = ["--trainer", "maxpo", "--steps", "2"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_with_cache(cache: Path) -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", TRL_BASIS_CACHE=str(cache), PYTHONUNBUFFERED="1")


def single(out: Path, cache: Path, *args: str) -> dict:
    """The same run on one process."""
    out.mkdir(parents=True)
    cmd = [sys.executable, str(RUNNER), "--out", str(out), *args]
    proc = subprocess.run(cmd, env=env_with_cache(cache), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads((out / "rank0.json").read_text())


def two_nodes(
    out: Path, caches: tuple[Path, Path], node_args: tuple[list[str], list[str]], *args: str, fails: bool = False
) -> list[dict]:
    """Start node 0 and node 1 (one process each) at the same time; return each rank's report (none if `fails`)."""
    out.mkdir(parents=True)
    port, procs = free_port(), []
    for node in (0, 1):
        cmd = [
            *(sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1"),
            *("--node_rank", str(node), "--master_addr", "127.0.0.1", "--master_port", str(port)),
            *(str(RUNNER), "--out", str(out), *args, *node_args[node]),
        ]
        log = open(out / f"node{node}.log", "w")  # a file, not a pipe: a full pipe would stall one node's collectives
        procs.append(subprocess.Popen(cmd, env=env_with_cache(caches[node]), stdout=log, stderr=subprocess.STDOUT))
    try:
        codes = [p.wait(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    logs = [(out / f"node{node}.log").read_text()[-3000:] for node in (0, 1)]
    if fails:
        assert 0 not in codes, "the interrupted run did not stop"
        return []
    assert codes == [0, 0], f"node 0:\n{logs[0]}\nnode 1:\n{logs[1]}"
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


def assert_matches_single(multi: list[dict], reference: dict, first_step: int = 0) -> None:
    """Both ranks saw the same global batches as the 1-process run (from `first_step` on, after a resume), rank r's
    advantages are rows [r*n, (r+1)*n) of its advantages, and both ranks end with its estimator state."""
    expected = reference["records"][first_step:]
    assert len(expected) >= 1 and [len(rank["records"]) for rank in multi] == [len(expected)] * 2
    for step, ref in enumerate(expected):
        assert multi[0]["records"][step]["rewards"] == multi[1]["records"][step]["rewards"] == ref["rewards"]
        stitched = [a for rank in multi for a in rank["records"][step]["local_advantages"]]
        assert stitched == pytest.approx(ref["local_advantages"], abs=1e-6)
        assert any(abs(a) > 1e-3 for a in stitched)
    assert multi[0]["estimator_state"] == multi[1]["estimator_state"] == reference["estimator_state"]
    assert multi[0]["reference_rewards"] == multi[1]["reference_rewards"] == reference["reference_rewards"]
    for rank in multi:
        assert rank["changed"], "parameters did not change"


def copy_weights_to_node1(per_node: list[str], checkpoint: str = "checkpoint-1") -> None:
    """transformers 5.25's `save_pretrained` writes the weights on global rank 0 only, even with save_on_each_node
    (the Trainer still writes everything else on each node): bring node 0's weights over, as a copy step or a shared
    folder would on a cluster. Only the weights and their configs: nothing of the estimator's state."""
    source, target = Path(per_node[0]) / checkpoint, Path(per_node[1]) / checkpoint
    for name in ("model.safetensors", "config.json", "generation_config.json"):
        if not (target / name).exists():
            shutil.copy(source / name, target / name)


def entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.json")) if cache.exists() else []


def test_basis_on_two_nodes_with_their_own_caches_and_output_folders(tmp_path):
    reference = single(tmp_path / "single", tmp_path / "single-cache", *BASIS)
    assert reference["sampled"]
    c0, c1 = tmp_path / "cache0", tmp_path / "cache1"
    per_node = [str(tmp_path / f"out-node{n}") for n in (0, 1)]
    shared = str(tmp_path / "out-shared")
    save = ["--save-steps", "1"]

    # (a) Cold caches on both nodes, checkpoints saved on each node into its own output folder. Only the main
    # process's cache is written.
    assert reference["offline_batches"] == 4
    cold = two_nodes(
        tmp_path / "a",
        (c0, c1),
        (["--run-dir", per_node[0]], ["--run-dir", per_node[1]]),
        *BASIS,
        *save,
        "--save-on-each-node",
        "--exact-warnings",
    )
    assert [rank["sampled"] for rank in cold] == [True, True]
    assert [rank["offline_batches"] for rank in cold] == [2, 2]
    assert_matches_single(cold, reference)
    assert len(entries(c0)) == 1 and not entries(c1)
    # basis_exact's cost warning counts the global batch once (it is already global), and says so.
    warned = cold[0]["exact_warnings"]
    assert warned["512"] == [] and len(warned["1024"]) == 1 and "per process" not in warned["1024"][0]

    # (b) Node 0 warm, node 1 cold (the crash): both skip the stage. One shared output folder.
    warm_cold = two_nodes(tmp_path / "b", (c0, c1), (["--run-dir", shared], ["--run-dir", shared]), *BASIS, *save)
    assert [rank["sampled"] for rank in warm_cold] == [False, False]
    assert_matches_single(warm_cold, reference)

    # (d) A corrupt entry on node 0 only (node 1 cold): it is recomputed, never used, by every rank together.
    # Resumed from the shared output folder's checkpoint.
    corrupt = tmp_path / "cache-corrupt"
    shutil.copytree(c0, corrupt)
    entry = entries(corrupt)[0]
    entry.write_text(entry.read_text()[:-40])
    resume_shared = ["--run-dir", shared, "--resume", f"{shared}/checkpoint-1"]
    resumed = two_nodes(tmp_path / "d", (corrupt, tmp_path / "cache-empty"), (resume_shared, resume_shared), *BASIS)
    assert [rank["sampled"] for rank in resumed] == [True, True]
    assert_matches_single(resumed, reference, first_step=1)
    assert "ignoring the invalid reference-reward cache entry" in (tmp_path / "d" / "node0.log").read_text()

    # (c) Node 0 cold, node 1 warm; resumed from the checkpoints saved on each node, with the estimator's state file
    # missing on node 1 only: every rank restores node 0's state. The offline stage is first interrupted after its
    # first chunk (of two), then resumes from it.
    warm1, cold0 = tmp_path / "cache-warm1", tmp_path / "cache-cold0"
    shutil.copytree(c0, warm1)
    (Path(per_node[1]) / "checkpoint-1" / "trl_basis_state.json").unlink()
    copy_weights_to_node1(per_node)
    resume = tuple(["--run-dir", d, "--resume", f"{d}/checkpoint-1"] for d in per_node)
    two_nodes(tmp_path / "c-stopped", (cold0, warm1), resume, *BASIS, "--interrupt-offline-after", "1", fails=True)
    assert len(list(cold0.glob("*.partial/chunk-*.json"))) == 1 and not entries(cold0)
    cold_warm = two_nodes(tmp_path / "c", (cold0, warm1), resume, *BASIS)
    assert [rank["sampled"] for rank in cold_warm] == [True, True]
    assert [rank["offline_batches"] for rank in cold_warm] == [1, 1], "the saved chunk was sampled again"
    assert len(entries(cold0)) == 1 and not list(cold0.glob("*.partial"))
    assert_matches_single(cold_warm, reference, first_step=1)
    assert "could not be read" not in (tmp_path / "c" / "node1.log").read_text()


def test_maxpo_resumes_on_two_nodes_with_the_state_file_on_one(tmp_path):
    reference = single(tmp_path / "single", tmp_path / "cache", *MAXPO)
    per_node = [str(tmp_path / f"out-node{n}") for n in (0, 1)]
    caches = (tmp_path / "cache0", tmp_path / "cache1")
    saved = two_nodes(
        tmp_path / "a",
        caches,
        tuple(["--run-dir", d] for d in per_node),
        *MAXPO,
        *("--save-steps", "1", "--save-on-each-node"),
    )
    assert_matches_single(saved, reference)
    (Path(per_node[1]) / "checkpoint-1" / "trl_basis_state.json").unlink()
    copy_weights_to_node1(per_node)
    resume = tuple(["--run-dir", d, "--resume", f"{d}/checkpoint-1"] for d in per_node)
    resumed = two_nodes(tmp_path / "b", caches, resume, *MAXPO)
    assert_matches_single(resumed, reference, first_step=1)
