#!/usr/bin/env python
"""Train the tiny arithmetic model shipped in ``trl_basis/tasks/tiny_model/`` (from scratch, on CPU, seeded).

The model is a small ``Qwen2ForCausalLM`` with a character-level tokenizer and a ChatML chat template. It is trained
by supervised fine-tuning on the arithmetic task of :mod:`trl_basis.tasks.arithmetic` (prompt ``"12+345-6="``,
assistant turn = just the integer answer followed by ``<|im_end|>``), with the loss on the assistant tokens only,
and it is STOPPED EARLY on purpose so that it is only partly right: the point is to give GRPO-style trainers a model
whose per-prompt pass rates cover the whole [0, 1] range.

Stopping rule (deterministic given the seed): every ``--eval-every`` steps the model samples
``--eval-samples`` completions (temperature 1) for each of ``--eval-prompts`` validation problems (drawn with a
separate seed, disjoint from the test split); training stops at the first evaluation whose mean accuracy is at least
``--target-accuracy`` (or at ``--max-steps``).

Regenerate the shipped model (about 15-17 minutes on one free CPU core; it stops at step 5000 with the defaults)::

    HF_HUB_OFFLINE=1 python -m trl_basis.tasks.train_tiny_model --output-dir trl_basis/tasks/tiny_model

Then run ``python -m trl_basis.tasks.train_tiny_model --evaluate-only`` to print the accuracy report of the saved model
(the numbers quoted in docs/tiny_model.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from collections import Counter, defaultdict
from pathlib import Path

import torch

from .arithmetic import DIFFICULTY_LEVELS, make_arithmetic_dataset, make_arithmetic_problem
from .rewards import extract_final_integer

# The recipe of the models shipped beside it (a package module, so `python -m trl_basis.tasks.train_tiny_model`
# rebuilds them from an installed copy too); paths in its reports are relative to the checkout.
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT_DIR = Path(__file__).resolve().parent / "tiny_model"

PAD_TOKEN = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = [PAD_TOKEN, IM_START, IM_END]

# ChatML, as in Qwen2 (without the default system prompt). The `{% generation %}` markers let TRL's SFTTrainer
# (`assistant_only_loss=True`) and `return_assistant_tokens_mask=True` find the assistant tokens; they render nothing.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- generation -%}{{- message['content'] + '<|im_end|>' -}}{%- endgeneration -%}"
    "{{- '\\n' -}}"
    "{%- else -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


# --------------------------------------------------------------------------------------------------------------------
# Tokenizer and model
# --------------------------------------------------------------------------------------------------------------------
def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable-unicode map (the alphabet of byte-level BPE)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(printable, map(chr, chars), strict=True))


def build_tokenizer():
    """A character-level tokenizer: every printable ASCII character and ``\\n`` is one token, plus the specials.

    It is a byte-level BPE with no merges, so each character is its own token. Its pipeline is exactly the one
    ``Qwen2Tokenizer`` builds (NFC normalizer, Qwen2's split regex, byte-level pre-tokenizer and decoder), which
    matters: ``AutoTokenizer`` always loads a ``qwen2`` checkpoint as ``Qwen2Tokenizer`` (transformers 5 rebuilds
    that pipeline from the vocabulary whatever ``tokenizer.json`` says), so a tokenizer with any other pipeline
    would be silently changed on reload. ``Qwen2Tokenizer`` is a ``PreTrainedTokenizerFast`` (``TokenizersBackend``)
    subclass. Characters outside the vocabulary (non-ASCII) are dropped when encoding.
    """
    from transformers import AddedToken
    from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer

    byte_to_unicode = _bytes_to_unicode()
    chars = [byte_to_unicode[b] for b in [*range(32, 127), ord("\n")]]
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + chars)}
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=[],
        unk_token=None,
        bos_token=None,
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        extra_special_tokens=[IM_START],
        padding_side="left",
        model_max_length=128,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS], special_tokens=True)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_model(tokenizer, args):
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=args.hidden_size,
        intermediate_size=4 * args.hidden_size,
        num_hidden_layers=args.num_layers,
        num_attention_heads=args.num_heads,
        num_key_value_heads=args.num_heads,
        max_position_embeddings=128,
        tie_word_embeddings=True,
        rms_norm_eps=1e-6,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        use_cache=True,
    )
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        do_sample=True,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        max_new_tokens=8,
    )
    return model


# --------------------------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------------------------
def encode_example(tokenizer, question: str, answer: str) -> tuple[list[int], list[int]]:
    """Token ids of the rendered conversation and labels that are -100 except on ``answer<|im_end|>``."""
    prompt_ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], add_generation_prompt=True, tokenize=True, return_dict=False
    )
    answer_ids = tokenizer.encode(answer, add_special_tokens=False) + [tokenizer.eos_token_id]
    return list(prompt_ids) + answer_ids, [-100] * len(prompt_ids) + answer_ids


class ProblemStream:
    """An endless seeded stream of training problems (uniform over ``levels``), skipping held-out expressions."""

    def __init__(self, seed: int, exclude: set[str], levels=tuple(DIFFICULTY_LEVELS)):
        self.rng = random.Random(seed)
        self.exclude = exclude
        self.levels = sorted(levels)

    def __next__(self):
        while True:
            problem = make_arithmetic_problem(self.rng, self.rng.choice(self.levels))
            if problem.expression not in self.exclude:
                return problem


#: Data seeds whose test splits the SFT stream never visits (the main job, the benchmarks and the notebooks draw
#: their held-out prompts from the test split of one of these seeds).
HELD_OUT_SEEDS = (0, 1, 2)
#: Test splits hold distinct problems drawn FIRST, so a test split of any size up to this one, with the same seed and
#: levels, is a subset of it: excluding it covers every ``num_test <= HELD_OUT_POOL``.
HELD_OUT_POOL = 1000


def held_out_expressions(levels, validation_prompts: int, seed: int) -> set[str]:
    """Every expression the SFT stream must skip: the test splits of ``make_arithmetic_dataset`` (seeds
    ``HELD_OUT_SEEDS``, up to ``HELD_OUT_POOL`` prompts, on ``levels``, on each of them alone and on all levels) and
    the validation
    problems of the stopping rule (seed ``seed + 1``)."""
    expressions: set[str] = set()
    # The task's levels together, each alone (a world may test on one of them, e.g. the hard slice), and all levels.
    level_sets = {tuple(levels), tuple(DIFFICULTY_LEVELS), *((level,) for level in levels)}
    for data_seed in HELD_OUT_SEEDS:
        for lv in level_sets:
            expressions |= _test_expressions(HELD_OUT_POOL, data_seed, lv)
    return expressions | _test_expressions(validation_prompts, seed + 1, tuple(levels))


def _test_expressions(num: int, seed: int, levels: tuple[int, ...]) -> set[str]:
    test = make_arithmetic_dataset(num_train=0, num_test=num, seed=seed, difficulties=levels)["test"]
    return {p[-1]["content"].rstrip("=") for p in test["prompt"]}


def make_batch(tokenizer, problems) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    encoded = [encode_example(tokenizer, p.question, str(p.answer)) for p in problems]
    width = max(len(ids) for ids, _ in encoded)
    input_ids = torch.full((len(encoded), width), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full((len(encoded), width), -100, dtype=torch.long)
    attention_mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, (ids, labs) in enumerate(encoded):  # right padding for training
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(labs)] = torch.tensor(labs)
        attention_mask[row, : len(ids)] = 1
    return input_ids, attention_mask, labels


# --------------------------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------------------------
@torch.no_grad()
def sample_completions(model, tokenizer, questions, num_samples: int, max_new_tokens: int = 8, batch_size: int = 256):
    """``num_samples`` completions (temperature 1, no top-k/top-p) for each question, in question order."""
    model.eval()
    prompts = [
        tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True, tokenize=False)
        for q in questions
        for _ in range(num_samples)
    ]
    completions = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        enc = tokenizer(chunk, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
        out = model.generate(
            **enc,
            do_sample=True,
            temperature=1.0,
            top_k=0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        completions += tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return [completions[i * num_samples : (i + 1) * num_samples] for i in range(len(questions))]


def pass_rates(model, tokenizer, questions, answers, num_samples: int, seed: int) -> list[float]:
    torch.manual_seed(seed)
    samples = sample_completions(model, tokenizer, questions, num_samples)
    rates = []
    for outs, gold in zip(samples, answers, strict=True):
        rates.append(sum(extract_final_integer(o) == int(gold) for o in outs) / num_samples)
    return rates


PASS_RATE_BINS = ("0", "(0,0.25)", "[0.25,0.5)", "[0.5,0.75)", "[0.75,1)", "1")


def pass_rate_bin(rate: float) -> str:
    """The histogram bin (one of ``PASS_RATE_BINS``) of a per-prompt pass rate."""
    if rate <= 0.0:
        return PASS_RATE_BINS[0]
    if rate >= 1.0:
        return PASS_RATE_BINS[-1]
    return PASS_RATE_BINS[1 + min(3, int(rate * 4))]


def accuracy_report(model, tokenizer, dataset, num_samples: int, seed: int) -> dict:
    questions = [p[-1]["content"] for p in dataset["prompt"]]
    answers = list(dataset["answer"])
    difficulties = list(dataset["difficulty"])
    start = time.perf_counter()
    rates = pass_rates(model, tokenizer, questions, answers, num_samples, seed)
    sampling_seconds = time.perf_counter() - start
    by_level = defaultdict(list)
    for rate, level in zip(rates, difficulties, strict=True):
        by_level[level].append(rate)
    histogram = Counter(pass_rate_bin(rate) for rate in rates)
    low, high = spread_fractions(rates)
    return {
        "num_prompts": len(rates),
        "samples_per_prompt": num_samples,
        "mean_accuracy": sum(rates) / len(rates),
        "accuracy_by_difficulty": {int(k): sum(v) / len(v) for k, v in sorted(by_level.items())},
        "prompts_by_difficulty": {int(k): len(v) for k, v in sorted(by_level.items())},
        "pass_rate_histogram": {label: histogram[label] for label in PASS_RATE_BINS},
        # pass@n with n = num_samples: a prompt counts when any of its samples is right (exact for n samples).
        "pass_at_n_by_difficulty": {int(k): sum(r > 0 for r in v) / len(v) for k, v in sorted(by_level.items())},
        "fraction_low_band": low,
        "fraction_high_band": high,
        "fraction_all_wrong": sum(r == 0 for r in rates) / len(rates),
        "fraction_all_right": sum(r == 1 for r in rates) / len(rates),
        "sampling_seconds": sampling_seconds,
    }


@torch.no_grad()
def time_generation(model, tokenizer, dataset, batch_size: int = 64, repeats: int = 5, max_new_tokens: int = 8):
    """Median seconds to sample completions for a batch of ``batch_size`` test prompts."""
    model.eval()
    questions = [p[-1]["content"] for p in dataset["prompt"][:batch_size]]
    prompts = [
        tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True, tokenize=False)
        for q in questions
    ]
    enc = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        model.generate(**enc, do_sample=True, temperature=1.0, top_k=0, max_new_tokens=max_new_tokens)
        times.append(time.perf_counter() - start)
    times = sorted(times[1:])  # first call warms up
    return times[len(times) // 2]


# --------------------------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------------------------
#: Pass-rate bands of the "spread" stopping rule (the mixed world): hard prompts are rarely but sometimes solved,
#: easy ones usually but not always, so a one-rollout baseline has values near both ends of [0, 1] to share.
LOW_BAND = (0.0, 0.15)  # (low, high]: sometimes solved
HIGH_BAND = (0.75, 1.0)  # [low, high): usually solved


def spread_fractions(rates: list[float]) -> tuple[float, float]:
    """Fractions of prompts whose pass rate lies in ``LOW_BAND`` (exclusive of 0) and in ``HIGH_BAND`` (exclusive
    of 1)."""
    low = sum(LOW_BAND[0] < r <= LOW_BAND[1] for r in rates) / len(rates)
    high = sum(HIGH_BAND[0] <= r < HIGH_BAND[1] for r in rates) / len(rates)
    return low, high


def should_stop(accuracy: float, low: float, high: float, args) -> bool:
    """The stopping rule: mean accuracy reached ``--target-accuracy`` or, with ``--target-spread F``, at least a
    fraction F of the validation prompts lies in each band (``spread_fractions``). With ``--target-spread``, a run
    that never meets the rule keeps the evaluation with the largest min(low, high) fraction."""
    if args.target_spread is not None:
        return low >= args.target_spread and high >= args.target_spread
    return accuracy >= args.target_accuracy


def _display_path(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def _init_info(path: Path | None) -> dict | None:
    """What the run started from: the folder (relative to the repository) and the SHA-256 of its weights."""
    if path is None:
        return None
    import hashlib

    weights = Path(path) / "model.safetensors"
    return {"path": _display_path(Path(path)), "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}


def train(args) -> None:
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    tokenizer = build_tokenizer()
    if args.init_from is not None:  # continue from a shipped model (the mixed world starts from the level-3 one)
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(args.init_from)
    else:
        model = build_model(tokenizer, args)
    num_params = sum(p.numel() for p in model.parameters())
    print(f"model: {num_params:,} parameters, vocab {len(tokenizer)}", flush=True)

    # Held-out problems (the test splits the project evaluates on, and the validation set of the stopping rule)
    # are never trained on; tests/test_tasks.py replays the stream to check it.
    levels = tuple(args.levels)
    held_out = held_out_expressions(levels, args.eval_prompts, args.seed)
    validation = make_arithmetic_dataset(
        num_train=0, num_test=args.eval_prompts, seed=args.seed + 1, difficulties=levels
    )["test"]
    stream = ProblemStream(seed=args.seed + 2, exclude=held_out, levels=levels)

    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=0.01, betas=(0.9, 0.98))

    def lr_lambda(step: int) -> float:
        if step < args.warmup_steps:
            return (step + 1) / args.warmup_steps
        progress = min(1.0, (step - args.warmup_steps) / max(1, args.max_steps - args.warmup_steps))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
    val_questions = [p[-1]["content"] for p in validation["prompt"]]
    val_answers = list(validation["answer"])
    history = []
    best_spread: tuple[float, int, dict | None] = (-1.0, 0, None)
    start = time.perf_counter()
    stopped_at = args.max_steps
    for step in range(1, args.max_steps + 1):
        model.train()
        input_ids, attention_mask, labels = make_batch(tokenizer, [next(stream) for _ in range(args.batch_size)])
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if step % args.log_every == 0:
            print(f"step {step:5d}  loss {loss.item():.4f}  {time.perf_counter() - start:7.1f}s", flush=True)
        if step % args.eval_every == 0:
            # Seed the sampling with the step so the rule does not depend on the training RNG state.
            rng_state = torch.get_rng_state()
            rates = pass_rates(model, tokenizer, val_questions, val_answers, args.eval_samples, seed=args.seed + step)
            torch.set_rng_state(rng_state)
            acc = sum(rates) / len(rates)
            by_level = defaultdict(list)
            for rate, level in zip(rates, validation["difficulty"], strict=True):
                by_level[level].append(rate)
            by_level = {level: round(sum(v) / len(v), 3) for level, v in sorted(by_level.items())}
            low, high = spread_fractions(rates)
            history.append(
                {
                    "step": step,
                    "loss": loss.item(),
                    "val_accuracy": acc,
                    "val_by_difficulty": by_level,
                    "val_low_fraction": low,
                    "val_high_fraction": high,
                }
            )
            print(
                f"step {step:5d}  validation sampled accuracy {acc:.3f}  by difficulty {by_level}  "
                f"low {low:.3f}  high {high:.3f}",
                flush=True,
            )
            if should_stop(acc, low, high, args):
                stopped_at = step
                break
            if args.target_spread is not None and min(low, high) > best_spread[0]:
                # Keep the most spread model so far: used if no evaluation meets the rule by --max-steps.
                best_spread = (min(low, high), step, {k: v.detach().clone() for k, v in model.state_dict().items()})
    else:
        if best_spread[2] is not None:  # the rule was never met: keep the evaluation closest to it
            model.load_state_dict(best_spread[2])
            stopped_at = best_spread[1]
    wall = time.perf_counter() - start
    print(f"stopped at step {stopped_at} after {wall:.0f}s", flush=True)

    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)
    info = {
        "seed": args.seed,
        "init_from": _init_info(args.init_from),
        "stopped_at_step": stopped_at,
        "train_wall_seconds": round(wall, 1),
        "num_parameters": num_params,
        "torch_threads": torch.get_num_threads(),
        "args": {k: _display_path(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "history": history,
    }
    (output_dir / "training_info.json").write_text(json.dumps(info, indent=2) + "\n")
    for file in output_dir.iterdir():  # safetensors writes 0600 files; package data must be world-readable
        if file.is_file():
            file.chmod(0o644)
    print(f"saved to {output_dir}", flush=True)


def evaluate(args) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = str(args.output_dir)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    canonical = make_arithmetic_dataset(
        num_train=args.test_size, num_test=args.test_size, seed=0, difficulties=tuple(args.levels)
    )
    test = canonical["test"]
    report = accuracy_report(model, tokenizer, test, num_samples=args.report_samples, seed=args.seed)
    # Train-split prompts (seed 0, like the ones GRPO examples train on; SFT may have seen some of them).
    train_report = accuracy_report(
        model, tokenizer, canonical["train"], num_samples=args.report_samples, seed=args.seed
    )
    report["train_split"] = {k: train_report[k] for k in ("num_prompts", "mean_accuracy", "accuracy_by_difficulty")}
    report["generation_seconds_batch_64"] = round(time_generation(model, tokenizer, test), 4)
    report["num_parameters"] = sum(p.numel() for p in model.parameters())
    report["weights_bytes"] = os.path.getsize(os.path.join(path, "model.safetensors"))
    print(json.dumps(report, indent=2))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--num-layers", type=int, default=4)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--warmup-steps", type=int, default=100)
    parser.add_argument("--max-steps", type=int, default=2500, help="length of the cosine schedule (and the cap)")
    parser.add_argument("--log-every", type=int, default=100)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--eval-prompts", type=int, default=200)
    parser.add_argument("--eval-samples", type=int, default=8)
    parser.add_argument("--target-accuracy", type=float, default=0.35, help="stop at the first validation >= this")
    parser.add_argument(
        "--target-spread",
        type=float,
        default=None,
        help="instead, stop at the first validation with at least this fraction of prompts in each pass-rate band "
        "(0, 0.15] and [0.75, 1) (the mixed world's rule)",
    )
    parser.add_argument(
        "--levels", type=int, nargs="+", default=[3], help="difficulty levels of the SFT stream and the validation"
    )
    parser.add_argument("--test-size", type=int, default=200, help="size of the canonical test split (seed 0)")
    parser.add_argument("--report-samples", type=int, default=16, help="samples per prompt in --evaluate-only")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (results are seeded per count)")
    parser.add_argument(
        "--init-from", type=Path, default=None, help="continue from this model folder instead of a fresh model"
    )
    parser.add_argument("--evaluate-only", action="store_true", help="only print the report of the saved model")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    torch.set_num_threads(args.threads)
    if not args.evaluate_only:
        train(args)
    evaluate(args)


if __name__ == "__main__":
    main()
