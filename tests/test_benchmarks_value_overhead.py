"""Smoke tests of benchmarks/value_mse.py and benchmarks/overhead.py: `--quick` runs finish and print their tables.

No timing or accuracy assertions: the quick settings are far too small for meaningful numbers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def run_quick(script: str, *args: str) -> str:
    """Run `benchmarks/<script> --quick [args]` in a subprocess; return its stdout. Fails on a non-zero exit code."""
    before = {p.name: p.stat().st_mtime_ns for p in RESULTS.glob("*")} if RESULTS.exists() else {}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 0, f"{script} --quick failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    after = {p.name: p.stat().st_mtime_ns for p in RESULTS.glob("*")} if RESULTS.exists() else {}
    assert after == before, f"{script} --quick wrote into benchmarks/results"
    return proc.stdout


def table_rows(stdout: str) -> list[list[str]]:
    """Cells of every markdown table row printed (header and separator rows included)."""
    return [
        [c.strip() for c in line.strip().strip("|").split("|")] for line in stdout.splitlines() if line.startswith("|")
    ]


@pytest.mark.slow
def test_value_mse_quick_prints_the_estimator_table():
    stdout = run_quick("value_mse.py")
    rows = table_rows(stdout)
    first_cells = [r[0] for r in rows]
    expected = [
        "REINFORCE++ (leave-one-out batch mean)",
        "group mean, G = 2",
        "group mean, G = 4",
        "group mean, G = 8",
        "BASIS initial v(beta_t)",
        "BASIS refined, fallback zero",
        "BASIS refined, fallback initial",
        "BASIS refined, fallback zero, exact",
        "BASIS refined, fallback initial, exact",
    ]
    for name in expected:
        assert name in first_cells, f"row {name!r} missing from:\n{stdout}"
    mse_header = next(r for r in rows if r[0] == "estimator")
    assert mse_header[1:] == ["MSE, step 0", "MSE, step 2"]
    for row in rows:
        if row[0] in expected:
            assert all(float(v) == float(v) for v in row[1:]), row  # numbers, not NaN
    per_checkpoint = [r for r in rows if r[0] in ("0", "2")]
    assert len(per_checkpoint) == 2 and all(r[-1] in ("yes", "no") for r in per_checkpoint)
    assert "plot: " in stdout


@pytest.mark.slow
def test_value_mse_merges_seeds_into_means_and_standard_errors(tmp_path):
    import json
    import statistics

    dumps = [str(tmp_path / f"seed{seed}.json") for seed in (0, 1)]
    for seed, dump in zip((0, 1), dumps, strict=True):
        run_quick("value_mse.py", "--seed", str(seed), "--dump", dump)
    stdout = run_quick("value_mse.py", "--merge", *reversed(dumps))  # order of the files does not matter
    runs = [json.load(open(dump))["runs"][0] for dump in dumps]
    assert [run["seed"] for run in runs] == [0, 1]
    group8 = [run["results"]["0"]["mse"]["group8"] for run in runs]
    assert runs[0]["results"] != runs[1]["results"]  # the seed really changes the run
    row = next(r for r in table_rows(stdout) if r[0] == "group mean, G = 8")
    se = statistics.stdev(group8) / 2**0.5
    assert row[1] == f"{statistics.mean(group8):.4f} ± {se:.4f}"
    assert "## Over 2 seeds (0, 1)" in stdout and "## Seed 0 in detail" in stdout


@pytest.mark.slow
def test_overhead_quick_prints_the_trainer_table():
    stdout = run_quick("overhead.py")
    rows = {r[0].split(" (")[0]: r for r in table_rows(stdout)}
    for name in ("GRPO", "MaxPO, K = 4", "BASIS", "BASIS exact"):
        assert name in rows, f"row {name!r} missing from:\n{stdout}"
        row = rows[name]
        assert int(row[1]) == 2  # timed steps after the warm-up
        assert float(row[2]) > 0 and float(row[4]) > 0  # wall and CPU seconds per step
        assert float(row[9]) > 0  # peak RSS
    assert rows["GRPO"][5] == "inline in TRL"
    for name in ("MaxPO, K = 4", "BASIS", "BASIS exact"):
        assert float(rows[name][5]) > 0 and float(rows[name][6]) >= 0 and rows[name][7].endswith("%")
