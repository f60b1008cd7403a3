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


def sample_groups_with_logprobs(model, tokenizer, examples, reward, group_size: int, max_new_tokens: int):
    """`group_size` completions of each prompt (temperature 1, no top-k/top-p): rewards (P, B) and the summed
    completion log-probs (P, B) with a graph, for a policy gradient by hand.

    One left-padded `generate` call and one forward; the forward's log-probs match the sampling distribution
    (checked against `generate`'s own logits to 2e-5).
    """
    texts = [
        tokenizer.apply_chat_template(ex["prompt"], tokenize=False, add_generation_prompt=True) for ex in examples
    ]
    padding_side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = padding_side
    with torch.no_grad():
        sequences = model.generate(
            **enc,
            do_sample=True,
            temperature=1.0,
            top_k=0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            num_return_sequences=group_size,
            pad_token_id=tokenizer.pad_token_id,
        )
    prompt_len = enc["input_ids"].shape[1]
    completion = sequences[:, prompt_len:]
    # A completion ends at its first EOS (included); what follows is padding.
    is_eos = completion == tokenizer.eos_token_id
    mask = (is_eos.long().cumsum(dim=1) - is_eos.long()) == 0
    decoded = tokenizer.batch_decode(completion, skip_special_tokens=True)
    repeated = [ex for ex in examples for _ in range(group_size)]
    rewards = reward(
        prompts=[ex["prompt"] for ex in repeated],
        completions=[[{"role": "assistant", "content": t}] for t in decoded],
        completion_ids=[c[m].tolist() for c, m in zip(completion, mask)],
        answer=[ex["answer"] for ex in repeated],
    )
    attention = torch.cat([enc["attention_mask"].repeat_interleave(group_size, dim=0), torch.ones_like(completion)], 1)
    positions = (attention.cumsum(dim=1) - 1).clamp(min=0)
    logits = model(sequences, attention_mask=attention, position_ids=positions).logits[:, prompt_len - 1 : -1]
    token_logp = logits.float().log_softmax(dim=-1).gather(-1, completion.unsqueeze(-1)).squeeze(-1)
    shape = (len(examples), group_size)
    return torch.tensor(rewards, dtype=torch.float64).view(shape), (token_logp * mask).sum(dim=1).view(shape)


def fresh_copy(model):
    """A plain copy of a (trained) model: a trainer's model has its forward wrapped by accelerate, so deepcopy
    would keep calling the original's forward."""
    copy_, _ = load_tiny(path=model.name_or_path)
    copy_.load_state_dict(model.state_dict())
    return copy_.eval()
