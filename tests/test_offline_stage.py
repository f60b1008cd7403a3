"""BASIS's offline stage on one process: it leaves the training random streams alone (a warm cache trains exactly like
a cold one) and saves its work chunk by chunk (an interrupted stage resumes from its completed chunks)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from _trainer_utils import CPU, arithmetic_train, snapshot, tiny_model_path

from trl_basis import BASISConfig, BASISTrainer

pytestmark = pytest.mark.slow


def completion_reward(completions, **kwargs) -> list[float]:
    """A reward in {0, .25, .5, .75, 1} of the sampled text: other samples (other random draws) get other rewards."""
    texts = [c if isinstance(c, str) else "".join(m["content"] for m in c) for c in completions]
    return [int(hashlib.sha256(t.encode()).hexdigest(), 16) % 5 / 4 for t in texts]


def config(tmp_path: Path, cache: Path, **overrides) -> BASISConfig:
    kwargs = dict(
        CPU,
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=8,
        gradient_accumulation_steps=1,
        max_steps=3,
        num_reference_samples=2,
        reference_batch_size=8,
        filter_constant_prompts=False,
        reference_cache_dir=str(cache),
        disable_tqdm=True,
    )
    kwargs.update(overrides)
    return BASISConfig(**kwargs)


def test_a_warm_cache_trains_exactly_like_a_cold_one(tmp_path):
    """The offline stage draws from the random streams only when it samples; it must leave them as it found them, so
    the same seeded command gives the same rewards, β, loss and weights whether the cache is cold or warm."""
    data = arithmetic_train(32, with_references=False)
    cache = tmp_path / "cache"

    def run() -> tuple[list[tuple[float, float, float]], dict[str, torch.Tensor], list[list[float]]]:
        trainer = BASISTrainer(tiny_model_path(), completion_reward, args=config(tmp_path, cache), train_dataset=data)
        trainer.train()
        logs = [(e["reward"], e["basis/temperature"], e["loss"]) for e in trainer.state.log_history if "loss" in e]
        return logs, snapshot(trainer.model), trainer.train_dataset["reference_rewards"]

    cold_logs, cold_weights, cold_refs = run()
    assert len(list(cache.glob("*.json"))) == 1, "the cold run did not write its cache entry"
    warm_logs, warm_weights, warm_refs = run()
    assert warm_refs == cold_refs
    assert len(cold_logs) == 3
    assert warm_logs == cold_logs
    for name, weight in cold_weights.items():
        assert torch.equal(weight, warm_weights[name]), f"{name} differs between the cold-cache and warm-cache runs"


class Interrupted(Exception):
    """Stands in for a crash or a Ctrl-C in the middle of the offline stage."""


def test_an_interrupted_offline_stage_resumes_from_its_completed_chunks(tmp_path, capsys):
    data = arithmetic_train(32, with_references=False)  # 4 chunks of 8 prompts x 2 samples
    calls: list[int] = []
    stop_after: list[int | None] = [None]

    def reward(completions, **kwargs) -> list[float]:
        if stop_after[0] is not None and len(calls) >= stop_after[0]:
            raise Interrupted
        calls.append(len(completions))
        return completion_reward(completions)

    def offline_stage(cache: Path) -> list[list[float]]:
        args = config(tmp_path, cache)
        trainer = BASISTrainer(tiny_model_path(), reward, args=args, train_dataset=data)
        return trainer.prepare_reference_rewards()["reference_rewards"]

    uninterrupted = offline_stage(tmp_path / "other-cache")
    assert calls == [16] * 4

    cache = tmp_path / "cache"
    calls.clear()
    stop_after[0] = 3  # stopped at 75% of the stage
    with pytest.raises(Interrupted):
        offline_stage(cache)
    chunks = sorted(cache.glob("*.partial/*.json"))
    assert len(chunks) == 3, "the completed chunks were not saved"
    assert not list(cache.glob("*.json")), "an incomplete stage must not leave a cache entry"

    calls.clear()
    stop_after[0] = None
    assert offline_stage(cache) == uninterrupted  # each chunk's sampling is seeded: resuming changes nothing
    assert calls == [16], "the resumed stage sampled again what the interrupted one had saved"
    assert len(list(cache.glob("*.json"))) == 1 and not list(cache.glob("*.partial"))

    # A damaged chunk is validated like a cache entry: reported, recomputed, never used.
    calls.clear()
    stop_after[0] = 2
    with pytest.raises(Interrupted):
        offline_stage(tmp_path / "cache2")
    first, second = sorted((tmp_path / "cache2").glob("*.partial/*.json"))
    first.write_text(first.read_text()[:-20])
    entry = json.loads(second.read_text())
    entry["reference_rewards"][0] = [0.5]  # a row of another length than num_reference_samples
    second.write_text(json.dumps(entry))
    capsys.readouterr()
    calls.clear()
    stop_after[0] = None
    assert offline_stage(tmp_path / "cache2") == uninterrupted
    assert calls == [16] * 4
    err = capsys.readouterr().err
    assert err.count("ignoring the invalid offline-stage chunk") == 2


def test_the_default_reference_batch_never_generates_more_at_once_than_training(tmp_path, monkeypatch):
    """reference_batch_size=None: an offline generation call holds at most the sequences of a training generation
    call (per_device_train_batch_size × steps_per_generation), so the stage's peak memory stays below a step's."""
    from trl_basis.trainers import _trl_bridge

    args = config(tmp_path, tmp_path / "cache", reference_batch_size=None, num_reference_samples=3, max_steps=1)
    per_call = args.per_device_train_batch_size * args.steps_per_generation
    assert args.reference_batch_size == per_call // 3 == 2
    trainer = BASISTrainer(tiny_model_path(), completion_reward, args=args, train_dataset=arithmetic_train(16, False))
    sizes: list[int] = []
    score = _trl_bridge.sample_and_score

    def counted(trainer, examples, *rest, **options):
        sizes.append(len(examples))
        return score(trainer, examples, *rest, **options)

    monkeypatch.setattr(_trl_bridge, "sample_and_score", counted)
    assert len(trainer.prepare_reference_rewards()["reference_rewards"][0]) == 3
    assert sizes == [6] * 8 and max(sizes) <= per_call
