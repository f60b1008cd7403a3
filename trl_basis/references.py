"""The offline stage of BASIS: reference rewards per prompt, with an on-disk cache.

`estimate_reference_rewards` is the public entry point (also `trl-basis estimate-references`). It runs the same
code the trainer runs when the reference column is missing: `N` completions per prompt from the reference (initial)
policy through TRL's own generation path (HF `generate`, or vLLM when `use_vllm=True`), scored with the reward
functions; each process samples its shard and the results are gathered.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from typing import Any

from datasets import Dataset


def reference_cache_key(fields: dict[str, Any], prompts: list[Any]) -> str:
    """Hash of everything the reference rewards depend on: model, data, reward functions and sampling settings."""
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode())
    for prompt in prompts:
        digest.update(json.dumps(prompt, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:32]


def model_fingerprint(model: Any) -> dict[str, Any]:
    """Identity of a model for the cache: its name or path, its config and, for a local folder, its weight files."""
    config = getattr(model, "config", None)
    name = getattr(config, "_name_or_path", None) or str(model)
    fingerprint: dict[str, Any] = {"name": name}
    if config is not None:
        fingerprint["config"] = hashlib.sha256(config.to_json_string().encode()).hexdigest()
    if os.path.isdir(name):  # retraining weights in place must not hit a stale cache
        fingerprint["files"] = sorted(
            (f, os.path.getsize(os.path.join(name, f)), int(os.path.getmtime(os.path.join(name, f))))
            for f in os.listdir(name)
            if f.endswith((".safetensors", ".bin"))
        )
    return fingerprint


def load_cached_rewards(cache_dir: str | None, key: str, num_rows: int) -> list[list[float]] | None:
    """The cached `(P, N)` reference rewards for `key`, or None when absent or of the wrong size."""
    if cache_dir is None:
        return None
    path = os.path.join(os.path.expanduser(cache_dir), f"{key}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        rewards = json.load(f)["reference_rewards"]
    return rewards if len(rewards) == num_rows else None


def save_cached_rewards(
    cache_dir: str | None, key: str, rewards: list[list[float]], meta: dict[str, Any]
) -> str | None:
    """Write the reference rewards atomically (a crash never leaves a truncated cache entry)."""
    if cache_dir is None:
        return None
    folder = os.path.expanduser(cache_dir)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{key}.json")
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump({"meta": meta, "reference_rewards": rewards}, f, default=str)
    os.replace(tmp, path)
    return path


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
    Constant prompts are NOT filtered here (the trainer does that), so the result can be reused with other settings.
    Run it under `accelerate launch` to shard the sampling over processes.
    """
    from .trainers.basis_config import BASISConfig
    from .trainers.basis_trainer import BASISTrainer

    args = BASISConfig(output_dir="trl_basis_references", report_to="none") if args is None else args
    # A shallow copy, not dataclasses.replace: re-running GRPOConfig.__post_init__ on a finished config fails
    # (generation_batch_size and steps_per_generation are both set by then).
    args = copy.copy(args)
    args.filter_constant_prompts = False
    trainer = BASISTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=args,
        train_dataset=train_dataset,
        processing_class=processing_class,
        **trainer_kwargs,
    )
    return trainer.train_dataset
