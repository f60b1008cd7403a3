"""`trl_basis.evaluation` and the main job's held-out evaluation: it samples like training."""

from __future__ import annotations

import torch
from _trainer_utils import CPU, tiny_model_path

from trl_basis import BASISConfig
from trl_basis.evaluation import sample_rewards
from trl_basis.main_job import training_sampler
from trl_basis.tasks import arithmetic_reward, make_arithmetic_dataset


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


def test_the_main_job_evaluates_with_the_training_sampler(tmp_path):
    args = BASISConfig(
        **CPU,
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        top_k=20,
        min_p=0.05,
        repetition_penalty=1.1,
        generation_kwargs={"typical_p": 0.9},
    )
    assert training_sampler(args) == {"top_k": 20, "min_p": 0.05, "repetition_penalty": 1.1, "typical_p": 0.9}
