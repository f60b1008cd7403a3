"""The offline stage of BASIS: reference rewards per prompt (cached on disk by `trl_basis.reference_cache`).

`estimate_reference_rewards` is the public entry point (also `trl-basis estimate-references`). It runs the same
code the trainer runs when the reference column is missing: `N` completions per prompt from the reference (initial)
policy through TRL's own generation path (HF `generate`, or vLLM when `use_vllm=True`), scored with the reward
functions; each process samples its shard and the results are gathered.
"""

from __future__ import annotations

import copy

from datasets import Dataset


def estimate_reference_rewards(
    model,
    reward_funcs,
    train_dataset: Dataset,
    args=None,
    processing_class=None,
    **trainer_kwargs,
) -> Dataset:
    """Return `train_dataset` with the reference-reward column (`args.reference_rewards_column`) added.

    Samples `args.num_reference_samples` completions per prompt from `model` (the reference policy) with the
    generation settings of `args` (a `BASISConfig`; `use_vllm=True` uses TRL's vLLM path), scores them with
    `reward_funcs` (weighted by `args.reward_weights`) and caches the result under `args.reference_cache_dir`.
    It is `BASISTrainer.prepare_reference_rewards`, the trainer's own offline stage, on a trainer built from these
    arguments. Constant prompts are NOT filtered here (the trainer does that), so the result can be reused with other settings.
    Run it under `accelerate launch` to shard the sampling over processes.
    """
    from .trainers.basis_config import BASISConfig
    from .trainers.basis_trainer import BASISTrainer

    if args is None:  # no training step to match: generate 64 prompts per call
        args = BASISConfig(output_dir="trl_basis_references", report_to="none", reference_batch_size=64)
    # A shallow copy, not dataclasses.replace: re-running GRPOConfig.__post_init__ on a finished config fails
    # (generation_batch_size and steps_per_generation are both set by then).
    args = copy.copy(args)
    args.filter_constant_prompts = False
    args.basis_values = "reference"  # the reference rows themselves, whatever the training will do with them
    args.advantage_estimator = "basis"  # whose offline stage this is
    trainer = BASISTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=args,
        train_dataset=train_dataset,
        processing_class=processing_class,
        **trainer_kwargs,
    )
    return trainer.prepare_reference_rewards()
