"""`trl_basis/_quiet.py`: no warnings the user cannot act on (transformers' gradient_checkpointing renames triggered
by TRL's own defaults, DeepSpeed's CPU notice), and DeepSpeed as an optional extra."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
import torch

from trl_basis import cli
from trl_basis.cli import CLIError

CONFIG = "dict(output_dir='/tmp/trl_basis_quiet', use_cpu=True, bf16=False, report_to='none')"


def _python(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "DS_ACCELERATOR")}
    env["HF_HUB_OFFLINE"] = "1"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.slow
def test_no_gradient_checkpointing_deprecation_from_trl_defaults():
    control = _python(f"from trl import GRPOConfig\nGRPOConfig(**{CONFIG})")
    assert "`gradient_checkpointing` is deprecated" in control.stderr  # what a plain TRL user sees
    quiet = _python(f"from trl_basis import MaxPOConfig\nMaxPOConfig(**{CONFIG})")
    assert quiet.returncode == 0, quiet.stderr
    assert "gradient_checkpointing" not in quiet.stderr, quiet.stderr


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="the optional deepspeed extra")
@pytest.mark.skipif(torch.cuda.is_available(), reason="DeepSpeed prints its CPU notice only without a GPU")
def test_no_deepspeed_cpu_notice():
    code = "from deepspeed.accelerator import get_accelerator\nget_accelerator()"
    control = _python(code)
    assert "Setting accelerator to CPU" in control.stdout + control.stderr
    quiet = _python("import trl_basis\n" + code)
    assert quiet.returncode == 0, quiet.stderr
    assert "Setting accelerator to CPU" not in quiet.stdout + quiet.stderr


def test_deepspeed_without_the_extra_is_one_line_naming_it(monkeypatch, tmp_path):
    """The package is not installed here (the extra is optional): `--deepspeed` says how to get it."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "deepspeed" else real(name, *a))
    config = tmp_path / "ds.json"
    config.write_text('{"zero_optimization": {"stage": 2}, "train_batch_size": "auto"}')
    with pytest.raises(CLIError, match=r"--deepspeed needs the deepspeed package.*trl_basis\[deepspeed\]"):
        cli.parse("train", ["--deepspeed", str(config), "--output_dir", str(tmp_path / "out")])
