"""Entry point of the multi-process tests: `torchrun --nproc_per_node 2 tests/distributed_run.py ...`.

Trains BASIS or MaxPO for a few steps with the prompt-only reward of `_trainer_utils` and writes, per rank,
`rank{r}.json` with what each generation batch gathered and the advantages this rank's loss received (before TRL's
shuffle), so the test can compare against a 1-process run over the same global batch. `--deepspeed CONFIG` runs under
DeepSpeed (on CPU: set DS_ACCELERATOR=cpu), `--save-steps`/`--resume` checkpoint and resume, `--lora` adds an adapter.
`--offline` drops the reference column so that BASIS runs its offline stage (cached under `TRL_BASIS_CACHE`), and
`--run-dir`/`--save-on-each-node` place the checkpoints as the multi-node tests need.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

import torch  # noqa: E402
from _trainer_utils import (  # noqa: E402
    CPU,
    arithmetic_train,
    position_reward,
    recording,
    snapshot,
    tiny_model_path,
)


def full_snapshot(trainer, model) -> dict[str, torch.Tensor]:
    """Every parameter of the unwrapped model, gathered first when DeepSpeed ZeRO-3 partitions them."""
    model = trainer.accelerator.unwrap_model(model)
    plugin = trainer.accelerator.state.deepspeed_plugin if trainer.is_deepspeed_enabled else None
    if plugin is None or plugin.zero_stage != 3:
        return snapshot(model)
    import deepspeed

    params = dict(model.named_parameters())
    with deepspeed.zero.GatheredParameters(list(params.values())):
        return {name: p.detach().clone() for name, p in params.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trainer", choices=["basis", "maxpo"], required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--global-batch", type=int, default=16)
    parser.add_argument("--num-generations", type=int, default=4, help="MaxPO group size")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--lora", action="store_true")
    parser.add_argument("--deepspeed", default=None)
    parser.add_argument("--save-steps", type=int, default=0)
    parser.add_argument("--resume", default=None)
    parser.add_argument("--max-k", type=int, default=2, help="MaxPO K")
    parser.add_argument("--max-k-final", type=int, default=None, help="MaxPO: anneal K to this value")
    parser.add_argument("--no-ds3-gather", action="store_true", help="ds3_gather_for_generation=False")
    parser.add_argument("--num-prompts", type=int, default=64)
    parser.add_argument("--offline", action="store_true", help="BASIS: sample the reference rewards (4 per prompt)")
    parser.add_argument("--history", action="store_true", help="BASIS: basis_history=True (state that matters)")
    parser.add_argument("--run-dir", default=None, help="output_dir (default: OUT/run)")
    parser.add_argument("--save-on-each-node", action="store_true")
    parser.add_argument("--exact-warnings", action="store_true", help="report basis_exact's cost warnings")
    parser.add_argument("--interrupt-offline-after", type=int, default=None, help="stop after N offline batches")
    cli = parser.parse_args()

    from trl_basis import BASISConfig, BASISTrainer, MaxPOConfig, MaxPOTrainer

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    common = dict(
        CPU,
        output_dir=cli.run_dir or os.path.join(cli.out, "run"),
        save_on_each_node=cli.save_on_each_node,
        per_device_train_batch_size=cli.global_batch // world,
        gradient_accumulation_steps=1,
        max_steps=cli.steps,
        deepspeed=cli.deepspeed,
        ds3_gather_for_generation=not cli.no_ds3_gather,
    )
    if cli.deepspeed and not torch.cuda.is_available():
        # DeepSpeed without a GPU: accelerate drops DeepSpeed when use_cpu=True and picks no process-group backend
        # without a GPU, so set its state up for DeepSpeed on gloo first and let the trainer reuse it.
        from accelerate import PartialState

        os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
        PartialState(backend="gloo")
        del os.environ["ACCELERATE_USE_DEEPSPEED"]
        common.update(use_cpu=False, accelerator_config={"use_configured_state": True})
    if cli.save_steps:
        common.update(save_strategy="steps", save_steps=cli.save_steps)
    if cli.trainer == "basis":
        # 4 samples per prompt: with position_reward, sample j of every prompt gets the reward of position j mod 4,
        # whatever the number of processes and chunks, so 1- and 2-process stages give the same reference rewards.
        offline = dict(num_reference_samples=4, reference_batch_size=8, filter_constant_prompts=False)
        cls, args = BASISTrainer, BASISConfig(**common, **offline, basis_history=cli.history)
    else:
        cls, args = (
            MaxPOTrainer,
            MaxPOConfig(**common, num_generations=cli.num_generations, max_k=cli.max_k, max_k_final=cli.max_k_final),
        )
    peft_config = None
    if cli.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    data = arithmetic_train(cli.num_prompts, with_references=not cli.offline)
    trainer = recording(cls)(
        tiny_model_path(), [position_reward], args=args, train_dataset=data, peft_config=peft_config
    )
    sampled, batches = [], []
    if cli.offline:  # record whether this rank ran the offline stage's sampling (a cache miss) or not (a hit)
        from trl_basis.trainers import _trl_bridge

        sample, score = trainer._sample_reference_rewards, _trl_bridge.sample_and_score
        trainer._sample_reference_rewards = lambda *a, **k: sampled.append(True) or sample(*a, **k)

        def counted_score(trainer, examples, *rest, **options):
            if cli.interrupt_offline_after is not None and len(batches) >= cli.interrupt_offline_after:
                raise RuntimeError("simulated interruption of the offline stage")
            batches.append(len(examples))
            return score(trainer, examples, *rest, **options)

        _trl_bridge.sample_and_score = counted_score  # the one sampling path, counted in this process
    before = full_snapshot(trainer, trainer.model)
    trainer.train(resume_from_checkpoint=cli.resume)
    after = full_snapshot(trainer, trainer.model_wrapped)
    report = {
        "world": world,
        "records": [
            {
                "rewards": r["rewards_per_func"][:, 0].tolist(),
                "local_advantages": r["local_advantages"].tolist(),
                "local_answers": r["local_answers"],
            }
            for r in trainer.records
        ],
        "changed": [name for name in after if not torch.equal(before[name], after[name])],
        "estimator_state": trainer._estimator_state,
        "sampled": bool(sampled),
        "offline_batches": len(batches),
        "reference_rewards": list(trainer.train_dataset["reference_rewards"]) if cli.trainer == "basis" else None,
        "global_step": trainer.state.global_step,
        "num_processes": trainer.accelerator.num_processes,
        "zero_stage": trainer.accelerator.state.deepspeed_plugin.zero_stage if trainer.is_deepspeed_enabled else None,
    }
    if cli.exact_warnings:  # last: a new config resets accelerate's state, which the report reads above
        report["exact_warnings"] = exact_warnings(common)
    with open(os.path.join(cli.out, f"rank{rank}.json"), "w") as f:
        json.dump(report, f)


def exact_warnings(common: dict) -> dict[int, list[str]]:
    """basis_exact's cost warnings per global generation batch size (a per-process batch times the processes)."""
    import warnings

    from trl_basis import BASISConfig

    world = int(os.environ.get("WORLD_SIZE", "1"))
    found = {}
    for global_batch in (512, 1024):
        kwargs = dict(common, per_device_train_batch_size=global_batch // world, basis_exact=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            BASISConfig(**kwargs)
        found[global_batch] = [str(w.message) for w in caught if "basis_exact" in str(w.message)]
    return found


if __name__ == "__main__":
    main()
