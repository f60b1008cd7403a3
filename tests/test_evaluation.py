"""`trl_basis.evaluation` and the main job's held-out evaluation: it samples like training."""

from __future__ import annotations

import itertools

import pytest
import torch
from _trainer_utils import arithmetic_train, prompt_reward, tiny_model_path

from trl_basis.evaluation import evaluate_pass_at_k, pass_at_k_curve, sample_rewards
from trl_basis.tasks import arithmetic_reward, make_arithmetic_dataset


@pytest.mark.slow
def test_generation_kwargs_reach_the_sampler():
    """top_k=1 makes every sample of a prompt the argmax continuation: all n rewards of a prompt agree, while the
    default sampler (temperature 1, no top-k) gives prompts with mixed rewards."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_path())
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path())
    data = make_arithmetic_dataset(num_train=1, num_test=32)["test"]
    kwargs = dict(max_new_tokens=8, seed=0, progress=False)
    free = sample_rewards(model, tokenizer, data, arithmetic_reward, 8, **kwargs)
    greedy = sample_rewards(model, tokenizer, data, arithmetic_reward, 8, generation_kwargs={"top_k": 1}, **kwargs)
    mixed = (free.min(dim=1).values != free.max(dim=1).values).sum()
    assert mixed > 5
    assert torch.equal(greedy.min(dim=1).values, greedy.max(dim=1).values)
    # Keys the function sets itself are not taken twice.
    sample_rewards(
        model,
        tokenizer,
        data.select(range(2)),
        arithmetic_reward,
        2,
        generation_kwargs={"max_new_tokens": 3},
        **kwargs,
    )


# ---------------------------------------------------------------------------------------------- evaluation helper
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
def test_evaluate_pass_at_k_samples_the_model():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trl_basis.tasks import arithmetic_reward

    model = AutoModelForCausalLM.from_pretrained(tiny_model_path())
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path())
    data = arithmetic_train(12, with_references=False)
    # A reward of the prompt alone: every sample of a prompt scores the same, so pass@k is known exactly.
    result = evaluate_pass_at_k(model, tokenizer, data, prompt_reward, num_samples=4, max_new_tokens=8)
    expected = sum(prompt_reward(None, None, data["answer"])) / 12
    assert result["rewards"].shape == (12, 4)
    assert all(v == pytest.approx(expected) for v in result["pass_at_k"].values())
    # With the real reward, pass@k is a non-decreasing curve in [0, 1].
    real = evaluate_pass_at_k(model, tokenizer, data, arithmetic_reward, num_samples=4, max_new_tokens=8)
    values = list(real["pass_at_k"].values())
    assert all(0 <= a <= b <= 1 for a, b in zip(values, values[1:]))
    assert set(real["rewards"].unique().tolist()) <= {0.0, 1.0}
