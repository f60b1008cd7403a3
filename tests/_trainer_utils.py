"""Shared pieces of the trainer tests: a CPU config, a prompt-only reward, recording trainers.

The reward depends on the prompt only (through its answer), so a 1-process and a 2-process run over the same global
batch see exactly the same rewards whatever the sampled completions are, and their advantages can be compared
exactly. `recording(cls)` subclasses a trainer to record what the loss actually receives; it calls the real methods.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import torch

from trl_basis.tasks import make_arithmetic_dataset, tiny_model_path

CPU = dict(
    bf16=False,
    gradient_checkpointing=False,
    use_cpu=True,
    report_to="none",
    max_completion_length=8,
    logging_steps=1,
    learning_rate=2e-4,
    save_strategy="no",
    seed=0,
)


def prompt_reward(prompts, completions, answer, **kwargs) -> list[float]:
    """A reward in {0, .25, .5, .75, 1} that is a fixed function of the problem's answer."""
    return [int(hashlib.sha256(a.encode()).hexdigest(), 16) % 5 / 4 for a in answer]


def position_reward(prompts, completions, answer, **kwargs) -> list[float]:
    """A reward of the problem's answer and the row's position in the GLOBAL batch modulo 4.

    It varies inside a group (consecutive rows of one prompt) yet does not depend on the sampled completions, so a
    1-process and a multi-process run over the same global batch get the same rewards.
    """
    offset = int(os.environ.get("RANK", "0")) * len(answer)
    keys = [f"{a}/{(offset + i) % 4}" for i, a in enumerate(answer)]
    return [int(hashlib.sha256(k.encode()).hexdigest(), 16) % 5 / 4 for k in keys]


def synthetic_references(num_rows: int, n: int = 8, seed: int = 0) -> list[list[float]]:
    """Reference rewards with varied pass rates (never constant), for tests that skip the offline stage."""
    g = torch.Generator().manual_seed(seed)
    rates = torch.rand(num_rows, generator=g) * 0.8 + 0.1
    refs = (torch.rand(num_rows, n, generator=g) < rates.unsqueeze(1)).double()
    refs[:, 0], refs[:, 1] = 0.0, 1.0  # each prompt keeps both outcomes: never filtered as constant
    return refs.tolist()


def arithmetic_train(num_rows: int = 64, with_references: bool = True, seed: int = 0, difficulties=(1, 2, 3, 4, 5, 6)):
    ds = make_arithmetic_dataset(num_train=num_rows, num_test=8, seed=seed, difficulties=difficulties)["train"]
    if with_references:
        ds = ds.add_column("reference_rewards", synthetic_references(len(ds)))
    return ds


def recording(trainer_cls):
    """Subclass of `trainer_cls` that records, per generation batch, the global rewards TRL gathered, the columns,
    the advantages of this process (before TRL shuffles them) and every `inputs["advantages"]` the loss receives."""

    class Recording(trainer_cls):
        def __init__(self, *args, **kwargs):
            self.records: list[dict[str, Any]] = []
            self.loss_advantages: list[torch.Tensor] = []
            super().__init__(*args, **kwargs)

        def _generate_and_score_completions(self, inputs):
            output = super()._generate_and_score_completions(inputs)
            if self.model.training:
                self.records.append(
                    {
                        "rewards_per_func": self._last_rewards_per_func.cpu().clone(),
                        "columns": self._last_columns,
                        "local_advantages": output["advantages"].cpu().clone(),
                        "local_answers": [x["answer"] for x in inputs],
                    }
                )
            return output

        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            self._last_rewards_per_func = rewards_per_func
            self._last_columns = self._gathered.columns if self._gathered is not None else {}
            return rewards_per_func

        def _compute_loss(self, model, inputs):
            self.loss_advantages.append(inputs["advantages"].detach().cpu().clone())
            return super()._compute_loss(model, inputs)

    Recording.__name__ = f"Recording{trainer_cls.__name__}"
    return Recording


def snapshot(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def changed(before: dict[str, torch.Tensor], model) -> list[str]:
    return [n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())]


__all__ = [
    "CPU",
    "arithmetic_train",
    "changed",
    "position_reward",
    "prompt_reward",
    "recording",
    "snapshot",
    "tiny_model_path",
]
