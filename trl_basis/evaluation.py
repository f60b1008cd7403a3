"""Sampling-based evaluation through the trainer's own generate-and-score path.

Every sample the library draws outside a training step (BASIS's offline stage, held-out pass@k, the benchmarks)
goes through `sample_rewards`, which calls TRL's per-batch path (`trl_basis.trainers._trl_bridge.sample_and_score`):
the same chat template, sampler, vLLM/paged generation, tools, environments and DeepSpeed unwrapping as training.
Under `accelerate launch` every process samples its share of the prompts in lockstep.

With a bare model instead of a trainer, `scoring_trainer(model, reward_funcs, ...)` builds the smallest
`GRPOTrainer` that samples like a training run would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from ._rng import derived_seed, preserved_random_state
from .advantages import max_at_k

__all__ = ["evaluate_pass_at_k", "held_out_accuracy", "pass_at_k_curve", "sample_rewards", "scoring_trainer"]


def sample_rewards(
    trainer,
    dataset,
    num_samples: int,
    *,
    reward_funcs: Callable | Sequence[Callable] | None = None,
    reward_weights: Sequence[float] | None = None,
    prompts_per_call: int | None = None,
    seed: int | None = 0,
    seed_key: str = "sample",
    done: dict[int, list[float]] | None = None,
    save_chunk: Callable[[list[int], list[list[float]]], None] | None = None,
    check: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
    desc: str = "sampling",
) -> torch.Tensor:
    """Weighted rewards `(P, num_samples)` of `num_samples` completions for each of the P rows of `dataset`.

    Rows are sampled in chunks of `prompts_per_call` prompts per process (each repeated `num_samples` times, default:
    one training generation batch of sequences), every process its contiguous block of each chunk. Each process's
    generation in a chunk is seeded by (`seed`, `seed_key`, the chunk's first prompt, its rank), so the rewards do
    not depend on what ran before, and every random stream training uses is restored afterwards. `reward_funcs` /
    `reward_weights` replace the trainer's own for these passes (NaN where all functions returned None). Rows in
    `done` are not sampled again, `save_chunk(indices, rows)` receives each completed chunk (BASIS's resumable
    offline stage), and `check(rewards, rewards_per_func)` may refuse a chunk's rewards.
    """
    from transformers import set_seed

    from .trainers import _trl_bridge

    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1; got {num_samples}.")
    environment = getattr(trainer, "environment_factories", None) is not None  # reset() writes the prompt
    if "prompt" not in (dataset.column_names or []) and not environment:
        raise ValueError(f"The dataset needs a 'prompt' column; it has {dataset.column_names}.")
    funcs = [reward_funcs] if callable(reward_funcs) else (None if reward_funcs is None else list(reward_funcs))
    accelerator = trainer.accelerator
    world, rank = accelerator.num_processes, accelerator.process_index
    chunk = prompts_per_call or prompts_per_generation_call(trainer.args, num_samples)
    weights = trainer.reward_weights if funcs is None else torch.tensor(reward_weights or [1.0] * len(funcs))
    rows = dict(done or {})
    todo = [i for i in range(len(dataset)) if i not in rows]
    with (
        tqdm(total=len(dataset), initial=len(rows), desc=desc, disable=not accelerator.is_local_main_process) as bar,
        preserved_random_state(),
    ):
        for start in range(0, len(todo), world * chunk):
            block = todo[start : start + world * chunk]
            # Every process samples `chunk` prompts (padding with the block's last) so collectives stay in step.
            mine = [block[min(rank * chunk + j, len(block) - 1)] for j in range(chunk)]
            if seed is not None:
                set_seed(derived_seed(seed, seed_key, mine[0], rank))
            examples = [dataset[i] for i in mine for _ in range(num_samples)]
            per_func = _trl_bridge.sample_and_score(trainer, examples, funcs, reward_weights, group_size=num_samples)
            rewards = _trl_bridge.weighted_sum(per_func, weights).double().cpu()
            if check is not None:
                check(rewards, per_func)
            per_prompt = rewards.view(world * chunk, num_samples).tolist()
            # Row r * chunk + j of the gathered batch is process r's j-th prompt, block[r * chunk + j]; the rows past
            # the block's end are padding.
            fresh = {block[p]: per_prompt[p] for p in range(len(block))}
            rows.update(fresh)
            if save_chunk is not None:
                save_chunk(block, [fresh[i] for i in block])
            bar.update(len(block))
    return torch.tensor([rows[i] for i in range(len(dataset))], dtype=torch.float64)


def prompts_per_generation_call(args, num_samples: int) -> int:
    """Prompts per call, sampled `num_samples` times each, so that a call holds as many sequences as a training
    generation call (`per_device_train_batch_size × steps_per_generation`): never more memory than a step."""
    return max(1, args.per_device_train_batch_size * args.steps_per_generation // num_samples)


def pass_at_k_curve(rewards: torch.Tensor, k_max: int) -> dict[int, float]:
    """Mean unbiased max@k over prompts for k = 1..k_max from `(P, n)` rewards (pass@k for 0/1 rewards).

    Prompts with a missing (NaN) sample are skipped.
    """
    if not 1 <= k_max <= rewards.shape[1]:
        raise ValueError(f"k_max must be in [1, n={rewards.shape[1]}]; got {k_max}. Sample more completions.")
    rewards = rewards[~torch.isnan(rewards).any(dim=1)]
    return {k: max_at_k(rewards, k).mean().item() for k in range(1, k_max + 1)}


def evaluate_pass_at_k(
    trainer, dataset, *, num_samples: int = 16, k_max: int | None = None, **sampling: Any
) -> dict[str, Any]:
    """Sample `num_samples` completions per prompt of `dataset` with `trainer` and report unbiased pass@k (= max@k)
    for k = 1..k_max. `sampling` goes to `sample_rewards` (e.g. `reward_funcs`, `seed`, `prompts_per_call`).

    Returns `{"pass_at_k": {k: value}, "rewards": (P, n) tensor}`; `pass_at_k[1]` is the mean reward.
    """
    k_max = num_samples if k_max is None else k_max
    if not 1 <= k_max <= num_samples:
        raise ValueError(f"k_max must be in [1, num_samples={num_samples}]; got {k_max}.")
    rewards = sample_rewards(trainer, dataset, num_samples, desc="evaluating", **sampling)
    return {"pass_at_k": pass_at_k_curve(rewards, k_max), "rewards": rewards}


def held_out_accuracy(trainer, dataset, reward_funcs=None, num_samples: int = 8, seed: int = 0, **sampling) -> dict:
    """pass@1 (mean reward) and pass@k (k = 1..num_samples, keys as strings) of `dataset` for the trainer's current
    model, sampled with its training sampler; `reward_funcs` (default: the trainer's) score the completions, weighted
    by the trainer's `reward_weights` when there are as many of them (else by `reward_weights` in `sampling`, or 1)."""
    funcs = [reward_funcs] if callable(reward_funcs) else reward_funcs
    if funcs is not None and "reward_weights" not in sampling and len(funcs) == len(trainer.reward_weights):
        sampling["reward_weights"] = trainer.reward_weights.tolist()
    result = evaluate_pass_at_k(
        trainer, dataset, num_samples=num_samples, reward_funcs=funcs, seed=seed, seed_key="eval", **sampling
    )
    curve = result["pass_at_k"]
    return {"accuracy": curve[1], "pass_at_k": {str(k): v for k, v in curve.items()}}


def scoring_trainer(model, reward_funcs, processing_class=None, args=None, **config: Any):
    """The smallest `GRPOTrainer` that samples and scores like a training run: for evaluating a bare model.

    `config` goes to `GRPOConfig` (e.g. `max_completion_length`, `temperature`, `per_device_train_batch_size`);
    on CPU pass `use_cpu=True, bf16=False`. No dataset is needed and nothing is trained.
    """
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    if args is None:
        config.setdefault("output_dir", "trl_basis_scoring")
        config.setdefault("report_to", "none")
        config.setdefault("save_strategy", "no")
        args = GRPOConfig(**config)
    placeholder = Dataset.from_dict({"prompt": [""] * args.generation_batch_size})
    return GRPOTrainer(model, reward_funcs, args=args, train_dataset=placeholder, processing_class=processing_class)
