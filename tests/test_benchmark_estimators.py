"""Smoke test of the estimator benchmark: `--quick` runs and prints its table (no timing assertions)."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "estimators.py"


@pytest.mark.slow
def test_estimators_benchmark_quick():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "calibrate_beta" in proc.stdout and "maxpo_advantages" in proc.stdout
    assert "| threads |" in proc.stdout or "|---" in proc.stdout
