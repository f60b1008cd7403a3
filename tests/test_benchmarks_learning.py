"""Smoke tests of the learning-efficiency and max@K benchmarks: each runs with `--quick` and prints its tables.

No timing assertions: the scripts' own numbers are only meaningful in their full runs (see benchmarks/results/).
`--quick` writes nothing under benchmarks/results/.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
RESULTS = BENCHMARKS / "results"


def own_results(script: str) -> dict[Path, int]:
    """Modification times of the results files this script writes in a full run."""
    stem = script.removesuffix(".py")
    return {p: p.stat().st_mtime_ns for p in RESULTS.glob(f"{stem}*")} if RESULTS.is_dir() else {}


def run_quick(script: str, *extra: str) -> str:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", WANDB_MODE="disabled")
    before = own_results(script)
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", *extra],
        cwd=BENCHMARKS,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert own_results(script) == before, "--quick must not write or overwrite the results files"
    return proc.stdout


@pytest.mark.slow
def test_learning_efficiency_quick():
    out = run_quick("learning_efficiency.py")
    assert "| method | final accuracy (mean ± s.e.) |" in out
    for method in ("BASIS@1", "GRPO@8", "GRPO@4", "GRPO@2", "RLOO@8", "REINFORCE++@1", "SPO@1", "GRPO@8 x64p"):
        assert f"| {method} |" in out, method
    assert "| step |" in out  # the per-evaluation curve table


@pytest.mark.slow
def test_max_at_k_quick(tmp_path):
    out = run_quick("max_at_k.py", "--plot-prefix", str(tmp_path / "quick"))
    assert "| checkpoint | K | estimator | tr Cov (total variance) |" in out
    for estimator in ("l2o", "pkpo", "pkpo_loo", "pkpo_loo_minus_one", "grpo"):
        assert f"| {estimator}" in out, estimator
    assert "| model | seeds | pass@1 |" in out
    for model in ("base model", "MaxPO K=4 (l2o)", "MaxPO K=8 (l2o)", "PKPO K=4 (pkpo_loo)", "GRPO (grpo)"):
        assert f"| {model} |" in out, model
    assert (tmp_path / "quick_pass_at_k.png").stat().st_size > 0
    assert (tmp_path / "quick_variance.png").stat().st_size > 0


def test_the_gradient_variance_samples_through_the_one_path_with_trls_log_probs(monkeypatch):
    """`_common.sample_groups_with_logprobs` samples with the scoring trainer (the library's path) and its log-probs
    are TRL's training log-probs of the same tokens, with a graph for the policy gradient."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import torch
    from _common import load_tiny, sample_groups_with_logprobs, scorer, tiny_world

    from trl_basis.trainers import _trl_bridge

    _, train, _, reward = tiny_world(num_train=8, num_test=4)
    model, tokenizer = load_tiny()
    sampler = scorer(model, tokenizer, reward)
    torch.manual_seed(0)
    rewards, logps = sample_groups_with_logprobs(sampler, [train[i] for i in range(3)], group_size=4)
    assert rewards.shape == logps.shape == (3, 4) and logps.requires_grad and (logps < 0).all()
    assert set(rewards.flatten().tolist()) <= {0.0, 1.0}
    # The same draw again, with TRL's own per-token log-probs of the tokens it sampled (temperature 1).
    torch.manual_seed(0)
    tokens: list[dict] = []
    again = _trl_bridge.sample_and_score(
        sampler, [train[i] for i in range(3) for _ in range(4)], group_size=4, batch_out=tokens
    )
    assert torch.equal(again.view(3, 4).double(), rewards)
    batch = tokens[0]
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    with torch.no_grad():
        trl_logps = sampler._get_per_token_logps_and_entropies(
            sampler.model, ids, mask, batch["completion_ids"].shape[1]
        )[0]
    expected = (trl_logps * batch["completion_mask"]).sum(dim=1).view(3, 4)
    torch.testing.assert_close(logps.detach(), expected, atol=1e-5, rtol=0)
