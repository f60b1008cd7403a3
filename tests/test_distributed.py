"""Multi-process runs on CPU (torchrun, gloo): the global-batch advantages do not depend on the process count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RUNNER = Path(__file__).with_name("distributed_run.py")
pytestmark = [pytest.mark.distributed, pytest.mark.slow]


def launch(out: Path, nproc: int, *args: str, timeout: int = 600) -> list[dict]:
    """Run `distributed_run.py` on `nproc` processes; return each rank's report."""
    if nproc == 1:
        cmd = [sys.executable, str(RUNNER)]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), str(RUNNER)]
    env = dict(os.environ, OMP_NUM_THREADS="1", DS_ACCELERATOR="cpu")
    proc = subprocess.run([*cmd, "--out", str(out), *args], env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(nproc)]


def assert_same_global_batch(multi: list[dict], single: dict) -> None:
    """Rank r's advantages are rows [r*n, (r+1)*n) of the 1-process advantages of the same global batch."""
    assert len(single["records"]) >= 1
    for step, reference in enumerate(single["records"]):
        assert multi[0]["records"][step]["rewards"] == reference["rewards"]  # same global batch
        stitched = [a for rank in multi for a in rank["records"][step]["local_advantages"]]
        assert stitched == pytest.approx(reference["local_advantages"], abs=1e-6)
        assert any(abs(a) > 1e-3 for a in stitched)
    for rank in multi:
        assert rank["changed"], "parameters did not change"


@pytest.mark.parametrize(
    "args",
    [
        ["--trainer", "basis"],
        ["--trainer", "maxpo"],  # 4 groups of 4: two whole groups per process
        ["--trainer", "maxpo", "--global-batch", "8", "--num-generations", "8"],  # one group spans both processes
    ],
    ids=["basis", "maxpo", "maxpo-group-spans-processes"],
)
def test_two_processes_match_one_process(tmp_path, args):
    multi = launch(tmp_path / "two", 2, *args)
    single = launch(tmp_path / "one", 1, *args)[0]
    assert_same_global_batch(multi, single)
