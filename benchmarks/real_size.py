"""Real-size memory and time: BASIS's offline stage against a training step, on Qwen2.5-0.5B's architecture, CPU.

    python benchmarks/real_size.py                  # every measurement below; writes benchmarks/results/real_size.md
    python benchmarks/real_size.py --only offline-rbs8 basis-step   # some of them, merged with those measured before

The model is Qwen2.5-0.5B-Instruct's exact architecture (`benchmarks/configs/qwen2.5-0.5b/config.json`: 24 layers,
hidden 896, 14 query / 2 key-value heads, MLP 4864, vocabulary 151,936, tied embeddings; 494M parameters), randomly
initialised (seed 0) in float32: nothing is downloaded. The tokenizer is synthetic (character-level, padded with
filler tokens to the model's 151,936 entries, Qwen's chat special tokens, the tiny model's chat template), so any
sampled id decodes. A random model rarely samples its end-of-sequence token, so every completion runs to
`max_completion_length`: the worst case for memory.

One small configuration (the machine has 2 shared CPU cores): the arithmetic task, `per_device_train_batch_size` 8
(BASIS: 8 prompts x 1 completion; MaxPO: 4 prompts x 2), `num_reference_samples` N = 2, `max_completion_length` 4,
AdamW, 1 torch thread. Each measurement runs in a fresh subprocess; peak memory is the process's resident high-water
mark (`VmHWM`) during the measured call, reset with /proc/self/clear_refs after the model and trainer are built (so
the model's own weights are included, the imports are not); time is wall-clock.

* `offline-rbs{8,64}`: `prepare_reference_rewards()` over one chunk of `reference_batch_size` prompts (8 and 64, i.e.
  16 and 128 sequences in one generation call); `offline-default`: the default `reference_batch_size=None`, derived
  as `per_device_train_batch_size x steps_per_generation // N` = 4 prompts, 8 sequences per call.
* `basis-step`, `maxpo-step`: `train()` for one optimizer step (generation of 8 sequences, scoring, advantages,
  forward/backward, AdamW) with the reference rewards given as a column, so no offline stage runs inside.
* `*-lora`: the same with a LoRA adapter (r = 16 on every attention and MLP projection; the base weights frozen).
* `zero3`: two processes under DeepSpeed ZeRO-3 on CPU (gloo, `DS_ACCELERATOR=cpu`): the offline stage at the
  default, then one BASIS step; the larger of the two processes' peaks.

Memory model (per process, float32, P parameters, T = prompt + completion tokens per sequence, L layers, d_kv =
key-value width, V vocabulary):

* offline stage ~ 4P (weights) + S_off x [2 L T d_kv x 4 (KV cache) + V x 4 (last-token logits)] + TRL's scoring
  pass, where S_off = reference_batch_size x N sequences per generation call. No gradients, no optimizer state.
* training step ~ 4P (weights) + 4P (gradients) + 8P (AdamW moments) + activations of a micro-batch, and its
  generation call holds S_train = per_device_train_batch_size x steps_per_generation sequences like the above.
  With LoRA the 12P of gradients and moments shrink to the adapter's, and the activations (with the B x T x V
  logits and their gradient) dominate the difference.

So with S_off <= S_train the offline stage is bounded by the training step's own generation phase and stays below
the step's peak; that is what the default `reference_batch_size=None` guarantees (at least one prompt's N
sequences per call). A larger `reference_batch_size` trades memory for speed: it can exceed a LoRA step's peak.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _harness as harness

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = Path(__file__).resolve().parent / "configs" / "qwen2.5-0.5b"
SETTINGS = dict(per_device_train_batch_size=8, num_reference_samples=2, max_completion_length=4)
# name -> (kind, options)
MEASUREMENTS = {
    "offline-rbs8": ("offline", {"reference_batch_size": 8}),
    "offline-rbs64": ("offline", {"reference_batch_size": 64}),
    "offline-default": ("offline", {"reference_batch_size": None}),
    "basis-step": ("basis", {}),
    "maxpo-step": ("maxpo", {}),
    "offline-default-lora": ("offline", {"reference_batch_size": None, "lora": True}),
    "basis-step-lora": ("basis", {"lora": True}),
    "maxpo-step-lora": ("maxpo", {"lora": True}),
    "zero3": ("zero3", {}),
}
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


# ---------------------------------------------------------------------------------------------------- pieces
def build_tokenizer(vocab_size: int):
    """A character-level tokenizer with exactly `vocab_size` entries (filler tokens after the printable ASCII)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = [chr(c) for c in range(32, 127)] + ["\n"]
    vocab = {token: i for i, token in enumerate(SPECIAL + chars)}
    vocab.update({f"<|filler_{i}|>": i for i in range(len(vocab), vocab_size)})
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<|endoftext|>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>", padding_side="left"
    )
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL[1:]})
    tokenizer.chat_template = (ROOT / "trl_basis" / "tasks" / "tiny_model" / "chat_template.jinja").read_text()
    assert len(tokenizer) == vocab_size, (len(tokenizer), vocab_size)
    return tokenizer


def build_model():
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(CONFIG_DIR)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


def text_reward(completions, **kwargs) -> list[float]:
    """A reward in [0, 1] of the sampled text (the random model never solves a problem; only memory matters here)."""
    texts = [c if isinstance(c, str) else "".join(m["content"] for m in c) for c in completions]
    return [int(hashlib.sha256(t.encode()).hexdigest(), 16) % 5 / 4 for t in texts]


# ---------------------------------------------------------------------------------------------------- worker
def trainer_for(kind: str, options: dict, output_dir: str, deepspeed: str | None = None):
    from trl_basis import BASISConfig, BASISTrainer, MaxPOConfig, MaxPOTrainer
    from trl_basis.tasks import make_arithmetic_dataset

    common = dict(
        output_dir=output_dir,
        bf16=False,
        gradient_checkpointing=False,
        use_cpu=deepspeed is None,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        max_steps=1,
        learning_rate=1e-5,
        seed=0,
        per_device_train_batch_size=SETTINGS["per_device_train_batch_size"],
        max_completion_length=SETTINGS["max_completion_length"],
        deepspeed=deepspeed,
    )
    if deepspeed is not None:
        common["accelerator_config"] = {"use_configured_state": True}
    world = int(os.environ.get("WORLD_SIZE", "1"))
    offline = kind in ("offline", "zero3")
    rbs = options.get("reference_batch_size")
    num_prompts = max(rbs or 8, 8) * world if kind == "offline" else 16 * world
    data = make_arithmetic_dataset(num_train=num_prompts, num_test=2, seed=0)["train"]
    if kind == "maxpo":
        args = MaxPOConfig(**common, num_generations=2, max_k=1)
        cls = MaxPOTrainer
    else:
        n = SETTINGS["num_reference_samples"]
        args = BASISConfig(
            **common,
            num_reference_samples=n,
            reference_batch_size=rbs,
            reference_cache_dir=None,
            filter_constant_prompts=False,
        )
        cls = BASISTrainer
        if not offline:
            data = data.add_column("reference_rewards", [[float(i % 2), float((i + 1) % 2)] for i in range(len(data))])
    peft_config = None
    if options.get("lora"):
        from peft import LoraConfig

        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        peft_config = LoraConfig(r=16, lora_alpha=32, target_modules=targets, lora_dropout=0.0)
    model = build_model()
    tokenizer = build_tokenizer(model.config.vocab_size)
    trainer = cls(
        model, text_reward, args=args, train_dataset=data, processing_class=tokenizer, peft_config=peft_config
    )
    return trainer, args


def measure(call) -> dict[str, float]:
    """Seconds (wall and CPU) and peak resident memory of `call()`, the peak reset just before it."""
    before = harness.memory_mib()["VmRSS"]
    if not harness.reset_peak():
        raise RuntimeError("cannot reset the peak memory (/proc/self/clear_refs)")
    with harness.timed() as spent:
        call()
    return dict(seconds=spent["wall"], cpu_seconds=spent["cpu"], rss_before=before, peak=harness.memory_mib()["VmHWM"])


def worker(name: str, out: str) -> None:
    import torch

    torch.set_num_threads(1)
    kind, options = MEASUREMENTS[name]
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "zero3":
            result = zero3_worker(tmp)
        else:
            trainer, args = trainer_for(kind, options, tmp)
            call = trainer.prepare_reference_rewards if kind == "offline" else trainer.train
            result = measure(call)
            result["sequences_per_call"] = (
                args.reference_batch_size * args.num_reference_samples
                if kind == "offline"
                else args.per_device_train_batch_size * args.steps_per_generation
            )
            if kind == "offline":
                result["prompts"] = len(trainer.train_dataset)
    rank = int(os.environ.get("RANK", "0"))
    Path(f"{out}.rank{rank}").write_text(json.dumps(result))


def zero3_worker(tmp: str) -> dict:
    from accelerate import PartialState

    # DeepSpeed without a GPU: set accelerate's state up for DeepSpeed on gloo first (as the CLI does).
    os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
    PartialState(backend="gloo")
    del os.environ["ACCELERATE_USE_DEEPSPEED"]
    ds = Path(tmp) / "zero3.json"
    zero = {"stage": 3, "overlap_comm": False, "contiguous_gradients": True}
    config = {"zero_optimization": zero, "train_micro_batch_size_per_gpu": "auto", "train_batch_size": "auto"}
    config.update(gradient_accumulation_steps="auto", gradient_clipping="auto", zero_allow_untested_optimizer=True)
    ds.write_text(json.dumps({**config, "bf16": {"enabled": False}, "fp16": {"enabled": False}}))
    trainer, _ = trainer_for("zero3", {"reference_batch_size": None}, tmp, deepspeed=str(ds))
    offline = measure(trainer.prepare_reference_rewards)
    step = measure(trainer.train)
    return dict(offline=offline, step=step)


# ---------------------------------------------------------------------------------------------------- driver
def run(name: str, timeout: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", DS_ACCELERATOR="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "result")
        script = [str(Path(__file__).resolve()), "--worker", name, "--out", out]
        if name == "zero3":
            cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", *script]
        else:
            cmd = [sys.executable, *script]
        start = time.perf_counter()
        # A session of its own: on a timeout the whole group goes (torchrun's workers would outlive torchrun).
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise RuntimeError(f"{name} took more than {timeout} s (--timeout); stopped") from None
        if proc.returncode != 0:
            raise RuntimeError(f"{name} failed:\n{stderr[-3000:]}")
        ranks = sorted(Path(tmp).glob("result.rank*"))
        results = [json.loads(p.read_text()) for p in ranks]
    wall = time.perf_counter() - start
    if name == "zero3":
        return {
            part: dict(
                seconds=max(r[part]["seconds"] for r in results),
                peak=max(r[part]["peak"] for r in results),
                rss_before=max(r[part]["rss_before"] for r in results),
            )
            for part in ("offline", "step")
        } | {"wall": wall}
    return results[0] | {"wall": wall}


def table(results: dict[str, dict]) -> str:
    rows = []
    for name, r in results.items():
        if name == "zero3":
            for part in ("offline", "step"):
                p = r[part]
                rows.append([f"zero3 ({part}, max over 2 processes)", "", f"{p['seconds']:.1f}", *mib(p)])
            continue
        seqs = r.get("sequences_per_call", "")
        rows.append([name, seqs, f"{r['seconds']:.1f}", *mib(r)])
    headers = ["measurement", "sequences per generation call", "seconds", "RSS before (MiB)", "peak (MiB)"]
    return harness.markdown_table(headers, rows)


def comparison(results: dict[str, dict]) -> str:
    """Each offline stage's peak against the training steps' peaks at the same settings (LoRA with LoRA)."""
    lines = ["Offline stage vs training step, peak resident memory at the same settings:", ""]
    for name, r in results.items():
        if not name.startswith("offline"):
            continue
        lora = name.endswith("-lora")
        steps = {k: v for k, v in results.items() if "step" in k and k.endswith("-lora") == lora}
        for step, s in steps.items():
            verdict = "below" if r["peak"] <= s["peak"] else "ABOVE"
            lines.append(f"- `{name}` {r['peak']:.0f} MiB is {verdict} `{step}` {s['peak']:.0f} MiB")
    return "\n".join(lines)


def mib(r: dict) -> list[str]:
    return [f"{r['rss_before']:.0f}", f"{r['peak']:.0f}"]


def main(argv: list[str] | None = None) -> None:
    parser = harness.benchmark_parser(__doc__, world=False, threads=False, quick=False)  # 1 thread in each worker
    parser.add_argument("--only", nargs="+", choices=list(MEASUREMENTS), default=None)
    parser.add_argument("--timeout", type=int, default=900, help="seconds per measurement")
    parser.add_argument("--report", action="store_true", help="only rewrite the table from the stored results")
    parser.add_argument("--worker", choices=list(MEASUREMENTS), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.out)
        return
    # Measurements are merged into a JSON next to the table, so they can be taken one at a time.
    raw = Path(__file__).resolve().parent / "results" / "real_size.json"
    results = json.loads(raw.read_text()) if raw.exists() else {}
    for name in [] if args.report else args.only or MEASUREMENTS:
        results[name] = run(name, args.timeout)
        print(f"{name}: {json.dumps(results[name])}", flush=True)
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_text(json.dumps(results, indent=1) + "\n")
    ordered = {name: results[name] for name in MEASUREMENTS if name in results}
    missing = [name for name in MEASUREMENTS if name not in results]
    body = table(ordered) + "\n\n" + comparison(ordered) + "\n\n" + NOTES
    if missing:
        body += f"\nNot measured: {', '.join(missing)}. {NOT_MEASURED}\n"
    title = "Real-size memory and time (Qwen2.5-0.5B architecture, CPU)"
    command = "python benchmarks/real_size.py [--only NAME ...]"  # measurements of several runs, merged
    harness.write_results("real_size", title, command, body, write=harness.writes(args))


NOT_MEASURED = (
    "In this session the two-process ZeRO-3 run did not finish within the 220 s it was given: the 2 CPU cores were "
    "shared with other jobs and each process got about 50 s of CPU (model build, DeepSpeed's partitioning, the "
    "offline stage). The script supports it: run `python benchmarks/real_size.py --only zero3` on a free machine."
)
NOTES = """\
No GPU was lent to this task: every number above is from a CPU (1 torch thread, 2 shared cores), float32. The
settings are deliberately small (8 prompts per step, N = 2, 4 completion tokens; see the script's docstring), and the
seconds are disturbed by the other jobs on those cores (compare them loosely); at
real lengths the KV cache and the logits grow with T and the comparison shifts towards the offline stage, which
is why the default `reference_batch_size` is derived from the training batch rather than fixed.

Reading: the offline stage holds the weights and one generation call; a full fine-tuning step adds gradients and
AdamW's two moments (12 bytes per parameter, about 5.7 GiB here), a LoRA step the activations and logits of the
backward pass. At the default `reference_batch_size` (8 sequences per call, as many as the training's own
generation call) the stage stays below every step, with or without LoRA. `reference_batch_size` 64 (128 sequences
per call, the old fixed default) is still below here only because sequences are 4 completion tokens long: its KV
cache and logits grow with the sequence count times the length, unlike the step's, so at real lengths (hundreds of
tokens) it can exceed a LoRA step.
"""


if __name__ == "__main__":
    main()
