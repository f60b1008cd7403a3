"""README.md's "Use from Python" snippet runs as written (only shortened to 2 steps), prints the held-out accuracy
before and after training (with pass@K for MaxPO), and leaves a model card where it saves the model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_snippet() -> str:
    text = README.read_text()
    start = text.index("```python\nfrom trl_basis import BASISConfig, BASISTrainer, MaxPOConfig, MaxPOTrainer")
    return text[start + len("```python\n") : text.index("```\n", start + 10)]


@pytest.mark.slow
def test_the_python_snippet_prints_accuracy_before_and_after(tmp_path):
    code = python_snippet()
    assert code.count("max_steps=30") == 1
    code = code.replace("max_steps=30", "max_steps=2")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRL_BASIS_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[held-out]")]
    before, after = "[held-out] before training", "[held-out] after training"
    assert [line.split(",")[0] for line in lines] == [before, after, before, after]  # BASIS, then MaxPO
    assert all("200 prompts x 8 samples" in line and "pass@8" in line for line in lines)
    assert "pass@4" in lines[3]  # MaxPO's K, beside pass@1
    card = (tmp_path / "maxpo-tiny" / "README.md").read_text()
    assert "trained with **MaxPO**" in card and "@article{takashiro2026maxpo" in card
