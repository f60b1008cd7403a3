"""Sampling-based evaluation: unbiased pass@k / max@k curves for a model on a prompt set.

Uses plain Hugging Face `generate` (no trainer needed), so it works on any causal LM: the tiny model on CPU in the
tests and notebooks, a Qwen model on a GPU. Under `accelerate launch` each process samples its shard of prompts.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from accelerate import PartialState
from accelerate.utils import gather_object
from tqdm.auto import tqdm

from .advantages import max_at_k


@torch.no_grad()
def sample_rewards(
    model,
    tokenizer,
    dataset,
    reward_funcs: Callable | Sequence[Callable],
    num_samples: int,
    *,
    reward_weights: Sequence[float] | None = None,
    max_new_tokens: int = 256,
    temperature: float = 1.0,
    top_p: float = 1.0,
    batch_size: int = 64,
    seed: int | None = 0,
    progress: bool = True,
    generation_kwargs: dict[str, Any] | None = None,
) -> torch.Tensor:
    """Rewards `(P, num_samples)` of `num_samples` sampled completions for each of the P rows of `dataset`.

    `dataset` rows hold a `prompt` (conversational, as TRL expects, or a plain string) and whatever columns the
    reward functions take as keyword arguments (e.g. `answer`). Reward functions have TRL's signature
    `(prompts, completions, completion_ids, **columns) -> list[float | None]`; `None` becomes NaN. The weighted sum
    over reward functions is returned (NaN where all returned None). `generation_kwargs` go to `generate` on top of
    `temperature` and `top_p` (e.g. `top_k`, `min_p`, `repetition_penalty`): pass the training sampler's, so that
    a model's own `generation_config` defaults do not silently change the sampler between training and evaluation.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1; got {num_samples}.")
    reward_funcs = [reward_funcs] if callable(reward_funcs) else list(reward_funcs)
    weights = torch.tensor(reward_weights if reward_weights is not None else [1.0] * len(reward_funcs))
    if len(weights) != len(reward_funcs):
        raise ValueError(f"reward_weights has {len(weights)} entries for {len(reward_funcs)} reward functions.")
    if "prompt" not in dataset.column_names:
        raise ValueError(f"The dataset needs a 'prompt' column; it has {dataset.column_names}.")
    if seed is not None:
        torch.manual_seed(seed)

    state = PartialState()
    rows = list(range(len(dataset)))
    with state.split_between_processes(rows) as my_rows:
        local = _sample_rows(
            model,
            tokenizer,
            dataset,
            list(my_rows),
            reward_funcs,
            weights,
            num_samples,
            max_new_tokens=max_new_tokens,
            sampling={"temperature": temperature, "top_p": top_p, **(generation_kwargs or {})},
            batch_size=batch_size,
            progress=progress and state.is_local_main_process,
        )
    gathered = gather_object([local]) if state.num_processes > 1 else [local]
    return torch.cat([torch.as_tensor(g, dtype=torch.float64).view(-1, num_samples) for g in gathered])


def _sample_rows(
    model,
    tokenizer,
    dataset,
    rows,
    reward_funcs,
    weights,
    n,
    *,
    max_new_tokens,
    sampling,
    batch_size,
    progress,
) -> list[list[float]]:
    was_training = model.training
    model.eval()
    padding_side, tokenizer.padding_side = tokenizer.padding_side, "left"  # generation continues on the right
    out: list[list[float]] = []
    prompts_per_call = max(1, batch_size // n)
    try:
        for start in tqdm(range(0, len(rows), prompts_per_call), disable=not progress, desc="sampling"):
            examples = [dataset[i] for i in rows[start : start + prompts_per_call]]
            out.extend(_sample_batch(model, tokenizer, examples, reward_funcs, weights, n, max_new_tokens, sampling))
    finally:
        tokenizer.padding_side = padding_side
        model.train(was_training)
    return out


def _sample_batch(model, tokenizer, examples, reward_funcs, weights, n, max_new_tokens, sampling):
    prompts = [ex["prompt"] for ex in examples]
    conversational = isinstance(prompts[0], list)
    texts = [
        tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) if conversational else p
        for p in prompts
    ]
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    own = ("max_new_tokens", "num_return_sequences")  # set here, from the arguments
    generated = model.generate(
        **enc,
        **{"do_sample": True, "pad_token_id": tokenizer.pad_token_id},
        **{key: value for key, value in sampling.items() if key not in own},
        max_new_tokens=max_new_tokens,
        num_return_sequences=n,
    )
    completion_ids = generated[:, enc["input_ids"].shape[1] :]
    texts = tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
    completions = [[{"role": "assistant", "content": t}] for t in texts] if conversational else texts
    repeated = [ex for ex in examples for _ in range(n)]
    columns = {key: [ex[key] for ex in repeated] for key in examples[0] if key != "prompt"}
    ids = [c[c != tokenizer.pad_token_id].tolist() for c in completion_ids]
    per_func = torch.stack(
        [
            torch.tensor(
                [
                    torch.nan if r is None else float(r)
                    for r in _call_reward(func, [ex["prompt"] for ex in repeated], completions, ids, columns)
                ],
                dtype=torch.float64,
            )
            for func in reward_funcs
        ],
        dim=1,
    )
    rewards = (per_func * weights.double()).nansum(dim=1)
    rewards[torch.isnan(per_func).all(dim=1)] = torch.nan
    return rewards.view(len(examples), n).tolist()


def _call_reward(func, prompts, completions, completion_ids, columns: dict[str, list[Any]]):
    params = inspect.signature(func).parameters
    accepts_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in columns.items() if accepts_all or k in params}
    return func(prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs)


def pass_at_k_curve(rewards: torch.Tensor, k_max: int) -> dict[int, float]:
    """Mean unbiased max@k over prompts for k = 1..k_max from `(P, n)` rewards (pass@k for 0/1 rewards).

    Prompts with a missing (NaN) sample are skipped.
    """
    if not 1 <= k_max <= rewards.shape[1]:
        raise ValueError(f"k_max must be in [1, n={rewards.shape[1]}]; got {k_max}. Sample more completions.")
    rewards = rewards[~torch.isnan(rewards).any(dim=1)]
    return {k: max_at_k(rewards, k).mean().item() for k in range(1, k_max + 1)}


def evaluate_pass_at_k(
    model,
    tokenizer,
    dataset,
    reward_funcs: Callable | Sequence[Callable],
    *,
    num_samples: int = 16,
    k_max: int | None = None,
    **sampling_kwargs,
) -> dict[str, Any]:
    """Sample `num_samples` completions per prompt and report unbiased pass@k (= max@k) for k = 1..k_max.

    Returns `{"pass_at_k": {k: value}, "rewards": (P, n) tensor}`; `pass_at_k[1]` is the mean reward.
    """
    k_max = num_samples if k_max is None else k_max
    if not 1 <= k_max <= num_samples:
        raise ValueError(f"k_max must be in [1, num_samples={num_samples}]; got {k_max}.")
    rewards = sample_rewards(model, tokenizer, dataset, reward_funcs, num_samples, **sampling_kwargs)
    return {"pass_at_k": pass_at_k_curve(rewards, k_max), "rewards": rewards}
