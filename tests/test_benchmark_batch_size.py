"""Smoke test of benchmarks/basis_batch_size.py (the measurement behind BASIS's small-batch warning)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "basis_batch_size.py"


@pytest.mark.slow
def test_batch_size_benchmark_quick():
    results = SCRIPT.parent / "results" / "basis_batch_size.md"
    before = results.stat().st_mtime_ns if results.exists() else None
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| global batch B | BASIS MSE" in proc.stdout and "| 32 |" in proc.stdout
    assert (results.stat().st_mtime_ns if results.exists() else None) == before  # --quick writes nothing
