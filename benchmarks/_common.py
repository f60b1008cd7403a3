"""What the benchmarks train on: CPU training settings, the shipped tiny worlds and models, held-out accuracy,
sampling with log-probabilities.

Every benchmark runs on a shipped tiny model and the generated arithmetic task, offline, on CPU; importing this module
sets that environment up (offline hub, no W&B, the repository on `sys.path`). How a script runs (options, seeds,
timing, results files) is `_harness.py`; which trainer a method name means is `_methods.py`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

# GRPOConfig defaults to bf16 and gradient checkpointing; neither suits the tiny model on CPU.
CPU_TRAINING = dict(
    bf16=False,
    gradient_checkpointing=False,
    use_cpu=True,
    report_to="none",
    max_completion_length=8,
    logging_steps=1,
    save_strategy="no",
    disable_tqdm=True,
)


def tiny_world(num_train: int = 2000, num_test: int = 200, seed: int = 0, world: str | None = None, difficulties=None):
    """A shipped world's model path (`trl_basis.tasks.WORLDS`; None: level3), its arithmetic train/test splits and
    the reward function; `difficulties` restricts the task to some levels (train and test alike) instead of the
    world's own."""
    from trl_basis.tasks import arithmetic_reward, make_arithmetic_dataset, tiny_model_path

    task = dict(world=world) if difficulties is None else dict(difficulties=difficulties)
    data = make_arithmetic_dataset(num_train=num_train, num_test=num_test, seed=seed, **task)
    return tiny_model_path(world), data["train"], data["test"], arithmetic_reward


def load_tiny(path: str | None = None, world: str | None = None):
    """Model (eval mode) and tokenizer of a world's tiny model, or of a checkpoint folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trl_basis.tasks import tiny_model_path

    path = path or tiny_model_path(world)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path(world))
    return model, tokenizer


def scorer(model, tokenizer, reward, **sampling):
    """A `GRPOTrainer` that samples and scores `model` like the benchmarks' training runs (temperature 1, 8 tokens),
    for evaluating a model outside a run: every benchmark samples through the library's one path
    (`trl_basis.evaluation.sample_rewards`, TRL's per-batch generation)."""
    from trl_basis.evaluation import scoring_trainer

    settings = {k: v for k, v in CPU_TRAINING.items() if k not in ("logging_steps", "disable_tqdm")}
    return scoring_trainer(
        model, reward, processing_class=tokenizer, output_dir="/tmp/trl_basis_scorer", **settings, **sampling
    )


def sample_groups_with_logprobs(trainer, examples, group_size: int):
    """`group_size` completions of each prompt, sampled and scored by `trainer` through the library's one path
    (`_trl_bridge.sample_and_score`: TRL's per-batch generation, the trainer's sampler and rewards): rewards (P, B)
    and the summed completion log-probs (P, B) of `trainer.model`, with a graph, for a policy gradient by hand.

    The log-probs come from one forward of TRL's token ids at temperature 1: they are the sampling distribution's
    when the trainer samples at temperature 1 with no top-k/top-p (the benchmarks' setting; checked in
    tests/test_benchmarks_max_at_k.py).
    """
    from trl_basis.trainers import _trl_bridge

    repeated = [ex for ex in examples for _ in range(group_size)]
    tokens: list[dict] = []
    per_func = _trl_bridge.sample_and_score(trainer, repeated, group_size=group_size, batch_out=tokens)
    rewards = _trl_bridge.weighted_sum(per_func, trainer.reward_weights).double()
    batch = tokens[0]
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    attention = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    positions = (attention.cumsum(dim=1) - 1).clamp(min=0)
    prompt_len = batch["prompt_ids"].shape[1]
    logits = trainer.model(ids, attention_mask=attention, position_ids=positions).logits[:, prompt_len - 1 : -1]
    completion = batch["completion_ids"]
    token_logp = logits.float().log_softmax(dim=-1).gather(-1, completion.unsqueeze(-1)).squeeze(-1)
    shape = (len(examples), group_size)
    return rewards.view(shape), (token_logp * batch["completion_mask"]).sum(dim=1).view(shape)


def fresh_copy(model):
    """A plain copy of a (trained) model: a trainer's model has its forward wrapped by accelerate, so deepcopy
    would keep calling the original's forward."""
    copy_, _ = load_tiny(path=model.name_or_path)
    copy_.load_state_dict(model.state_dict())
    return copy_.eval()
