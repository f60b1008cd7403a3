"""`trl_basis.evaluation`: one generate-and-score path (TRL's per-batch path) for evaluation and the offline stage."""

from __future__ import annotations

import itertools

import pytest
import torch
from _trainer_utils import CPU, arithmetic_train, prompt_reward, tiny_model_path

from trl_basis import BASISConfig, BASISTrainer
from trl_basis.evaluation import (
    evaluate_pass_at_k,
    held_out_accuracy,
    pass_at_k_curve,
    sample_rewards,
    scoring_trainer,
)
from trl_basis.tasks import arithmetic_reward, make_arithmetic_dataset

SCORING = dict(use_cpu=True, bf16=False, max_completion_length=8, per_device_train_batch_size=8)


@pytest.mark.slow
def test_the_training_sampler_reaches_the_evaluation(tmp_path):
    """top_k=1 in the trainer's config makes every sample of a prompt the argmax continuation: all n rewards of a
    prompt agree, while the default sampler (temperature 1, no top-k) gives prompts with mixed rewards."""
    data = make_arithmetic_dataset(num_train=1, num_test=32)["test"]
    free = scoring_trainer(tiny_model_path(), arithmetic_reward, output_dir=str(tmp_path), **SCORING)
    greedy = scoring_trainer(tiny_model_path(), arithmetic_reward, output_dir=str(tmp_path), top_k=1, **SCORING)
    free_rewards, greedy_rewards = sample_rewards(free, data, 8), sample_rewards(greedy, data, 8)
    assert (free_rewards.min(dim=1).values != free_rewards.max(dim=1).values).sum() > 5
    assert torch.equal(greedy_rewards.min(dim=1).values, greedy_rewards.max(dim=1).values)
    # Seeded per chunk: the same call twice gives the same rewards.
    assert torch.equal(sample_rewards(free, data, 8), free_rewards)


def brute_force_max_at_k(row: list[float], k: int) -> float:
    subsets = list(itertools.combinations(row, k))
    return sum(max(s) for s in subsets) / len(subsets)


def test_pass_at_k_curve_against_brute_force():
    rewards = torch.tensor(
        [[0, 1, 0, 0, 1, 0], [0.2, 0.9, 0.5, 0.5, 0.1, 0.0], [1, 1, 1, 1, 1, 1]], dtype=torch.float64
    )
    curve = pass_at_k_curve(rewards, 6)
    for k in range(1, 7):
        expected = sum(brute_force_max_at_k(row, k) for row in rewards.tolist()) / 3
        assert curve[k] == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError, match="k_max"):
        pass_at_k_curve(rewards, 7)


@pytest.mark.slow
def test_evaluate_pass_at_k_samples_the_model(tmp_path):
    data = arithmetic_train(12, with_references=False)
    # num_generations_eval = 8 (GRPO's) does not divide 4 samples per prompt: the pass groups by the 4 instead.
    trainer = scoring_trainer(tiny_model_path(), prompt_reward, output_dir=str(tmp_path), **SCORING)
    # A reward of the prompt alone: every sample of a prompt scores the same, so pass@k is known exactly.
    result = evaluate_pass_at_k(trainer, data, num_samples=4)
    expected = sum(prompt_reward(None, None, data["answer"])) / 12
    assert result["rewards"].shape == (12, 4)
    assert all(v == pytest.approx(expected) for v in result["pass_at_k"].values())
    # Another reward for the evaluation only: pass@k is a non-decreasing curve in [0, 1].
    real = evaluate_pass_at_k(trainer, data, num_samples=4, reward_funcs=arithmetic_reward)
    values = list(real["pass_at_k"].values())
    assert all(0 <= a <= b <= 1 for a, b in zip(values, values[1:]))
    assert set(real["rewards"].unique().tolist()) <= {0.0, 1.0}
    assert trainer.reward_funcs == [prompt_reward]  # the trainer's own functions are back


@pytest.mark.slow
def test_the_offline_stage_and_the_evaluation_are_one_sampling_path(tmp_path):
    """The reference column BASIS's offline stage writes is exactly `sample_rewards` with its seed key: the same
    function samples and scores both."""
    args = BASISConfig(
        **CPU,
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        num_reference_samples=3,
        filter_constant_prompts=False,
        reference_cache_dir=None,
    )
    data = arithmetic_train(16, with_references=False)
    trainer = BASISTrainer(tiny_model_path(), arithmetic_reward, args=args, train_dataset=data)
    offline = trainer.prepare_reference_rewards()["reference_rewards"]
    again = sample_rewards(
        trainer, data, 3, prompts_per_call=args.reference_batch_size, seed=args.seed, seed_key="reference"
    )
    assert again.tolist() == offline


@pytest.mark.slow
def test_an_evaluation_leaves_no_trace_in_training(tmp_path):
    """Metrics, completion logs and random streams are as they were: evaluating mid-run changes nothing."""
    args = BASISConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=8, max_steps=1)
    trainer = BASISTrainer(tiny_model_path(), prompt_reward, args=args, train_dataset=arithmetic_train(16))
    trainer.train()
    logs = {k: list(v) for k, v in trainer._logs.items() if not isinstance(v, dict)}
    metrics = {mode: dict(values) for mode, values in trainer._metrics.items()}
    rng = torch.get_rng_state()
    result = held_out_accuracy(trainer, make_arithmetic_dataset(num_train=1, num_test=4)["test"], arithmetic_reward)
    assert 0.0 <= result["accuracy"] <= result["pass_at_k"]["8"] <= 1.0
    assert {k: list(v) for k, v in trainer._logs.items() if not isinstance(v, dict)} == logs
    assert {mode: dict(values) for mode, values in trainer._metrics.items()} == metrics
    assert torch.equal(torch.get_rng_state(), rng)
    assert trainer.model.training
