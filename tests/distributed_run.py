"""Entry point of the multi-process tests: `torchrun --nproc_per_node 2 tests/distributed_run.py ...`.

Trains BASIS or MaxPO for a few steps with the prompt-only reward of `_trainer_utils` and writes, per rank,
`rank{r}.json` with what each generation batch gathered and the advantages this rank's loss received (before TRL's
shuffle), so the test can compare against a 1-process run over the same global batch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

from _trainer_utils import (  # noqa: E402
    CPU,
    arithmetic_train,
    changed,
    position_reward,
    recording,
    snapshot,
    tiny_model_path,
)


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
    cli = parser.parse_args()

    from trl_basis import BASISConfig, BASISTrainer, MaxPOConfig, MaxPOTrainer

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    common = dict(
        CPU,
        output_dir=os.path.join(cli.out, "run"),
        per_device_train_batch_size=cli.global_batch // world,
        gradient_accumulation_steps=1,
        max_steps=cli.steps,
        deepspeed=cli.deepspeed,
    )
    if cli.save_steps:
        common.update(save_strategy="steps", save_steps=cli.save_steps)
    if cli.trainer == "basis":
        cls, args = BASISTrainer, BASISConfig(**common)
    else:
        cls, args = MaxPOTrainer, MaxPOConfig(**common, num_generations=cli.num_generations, max_k=2)
    peft_config = None
    if cli.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    trainer = recording(cls)(
        tiny_model_path(), [position_reward], args=args, train_dataset=arithmetic_train(64), peft_config=peft_config
    )
    before = snapshot(trainer.accelerator.unwrap_model(trainer.model))
    trainer.train(resume_from_checkpoint=cli.resume)
    after_model = trainer.accelerator.unwrap_model(trainer.model)
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
        "changed": changed(before, after_model),
        "estimator_state": trainer._estimator_state,
        "global_step": trainer.state.global_step,
    }
    with open(os.path.join(cli.out, f"rank{rank}.json"), "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main()
