"""Overhead of BASIS and MaxPO against GRPO: seconds per training step, advantage share, peak memory.

    python benchmarks/overhead.py            # full run, writes benchmarks/results/overhead.md
    python benchmarks/overhead.py --quick    # CI smoke test: tiny settings, prints only

Every trainer runs on the tiny world (arithmetic task, `make_arithmetic_dataset(seed=0)`, `arithmetic_reward`)
with the same number of completions per step, 64 (8 in --quick):

* GRPO: `GRPOTrainer`, 8 prompts x 8 completions (GRPO's defaults: group-normalised advantages, DAPO loss);
* MaxPO: `MaxPOTrainer`, 8 prompts x 8 completions, K = 4, Leave-Two-Out advantages;
* BASIS: `BASISTrainer`, 64 prompts x 1 completion, normal calibration (230 betas);
* BASIS exact: the same with `basis_exact=True` (per-row leave-one-out calibration, O(G B^2)).

All: lr 1e-4, one optimizer step per generation batch, max_completion_length 8, trainer seed 0. BASIS's reference
rewards (N = 8 per prompt, from the initial model, `sample_rewards(seed=0)`) are computed once by the parent
process and handed to the BASIS runs as a dataset column, so no offline stage runs inside a measured process; all
four trainers train on the same prompts (the ones the constant-reference filter keeps).

Each trainer runs in a FRESH subprocess (`--worker`): [3] warm-up steps, then [30] timed steps. A callback
measures every optimizer step (generation, rewards, advantages, forward/backward, optimizer; TRL's logging
happens after the step and is excluded) in wall-clock seconds (`time.perf_counter`) and in process CPU seconds
(`time.process_time`, which on a shared machine is less disturbed by other jobs). A subclass of each trainer times
the real `_compute_advantages` call the same way (GRPO computes its advantages inline in TRL's
`_generate_and_score_completions`, so it has no separate number). Memory: the worker's peak resident set size
(`VmHWM` of /proc/self/status: Python, torch, transformers, model, optimizer, data) over its whole life, and the
peak reached during training above the resident size just before training (the high-water mark is reset with
/proc/self/clear_refs after the trainer is built). `resource.getrusage(...).ru_maxrss` is not usable here: Linux
carries the parent's peak over fork + exec, so every worker reported the parent's ~775 MiB.

Runs with `--threads` torch threads (default 1).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _harness as harness
import torch
from _common import CPU_TRAINING, load_tiny, scorer, tiny_world

LABELS = {"grpo": "GRPO", "maxpo": "MaxPO, K = 4", "basis": "BASIS", "basis_exact": "BASIS exact"}
EXPECTED_ROWS = list(LABELS.values())  # the smoke test looks for rows starting with these labels
GROUP = 8
FULL = dict(completions=64, warmup=3, steps=30, num_train=600)
QUICK = dict(completions=8, warmup=1, steps=2, num_train=96)


def label(name: str, completions: int) -> str:
    shape = f"{completions} prompts x 1" if name.startswith("basis") else f"{completions // GROUP} prompts x {GROUP}"
    return f"{LABELS[name]} ({shape})"


# ----------------------------------------------------------------------------------------------- worker
def worker(name: str, data_path: str, cfg: dict, out_path: str) -> None:
    """Build one trainer, train warm-up + timed steps, write the measurements as JSON."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from trl_basis import BASISConfig, BASISTrainer, MaxPOConfig, MaxPOTrainer

    with open(data_path) as f:
        data = json.load(f)
    model_path, _, _, reward = tiny_world(num_train=8, num_test=8, world=cfg["world"])
    step_wall: list[float] = []
    step_cpu: list[float] = []
    adv_wall: list[float] = []
    adv_cpu: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.start = (time.perf_counter(), time.process_time())

        def on_step_end(self, args, state, control, **kwargs):
            step_wall.append(time.perf_counter() - self.start[0])
            step_cpu.append(time.process_time() - self.start[1])

    def timed(cls):
        class Timed(cls):
            def _compute_advantages(self, rewards, batch):
                wall, cpu = time.perf_counter(), time.process_time()
                out = super()._compute_advantages(rewards, batch)
                adv_wall.append(time.perf_counter() - wall)
                adv_cpu.append(time.process_time() - cpu)
                return out

        return Timed

    common = dict(
        CPU_TRAINING,
        output_dir=str(Path(data_path).parent / f"out_{name}"),  # inside the parent's temporary folder
        per_device_train_batch_size=cfg["completions"],
        gradient_accumulation_steps=1,  # one optimizer step = one generation batch
        max_steps=cfg["warmup"] + cfg["steps"],
        learning_rate=1e-4,
        seed=0,
        logging_steps=10_000,  # keep TRL's logging out of the way (it is outside the timed step anyway)
    )
    columns = {"prompt": data["prompt"], "answer": data["answer"]}
    if name.startswith("basis"):
        dataset = Dataset.from_dict({**columns, "reference_rewards": data["reference_rewards"]})
        args = BASISConfig(**common, basis_exact=name == "basis_exact", reference_cache_dir=None)
        trainer_cls = timed(BASISTrainer)
    elif name == "maxpo":
        dataset = Dataset.from_dict(columns)
        args = MaxPOConfig(**common, num_generations=GROUP, max_k=GROUP // 2)
        trainer_cls = timed(MaxPOTrainer)
    elif name == "grpo":
        dataset = Dataset.from_dict(columns)
        args = GRPOConfig(**common, num_generations=GROUP)
        trainer_cls = GRPOTrainer
    else:
        raise ValueError(name)
    trainer = trainer_cls(model_path, [reward], args=args, train_dataset=dataset, callbacks=[StepTimer()])
    built = harness.memory_mib()
    reset = harness.reset_peak()
    trainer.train()
    end = harness.memory_mib()
    result = dict(
        name=name,
        threads=torch.get_num_threads(),
        step_wall=step_wall,
        step_cpu=step_cpu,
        adv_wall=adv_wall,
        adv_cpu=adv_cpu,
        peak_total=max(built["VmHWM"], end["VmHWM"]),
        rss_built=built["VmRSS"],
        peak_training=end["VmHWM"] if reset else None,
        ru_maxrss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    with open(out_path, "w") as f:
        json.dump(result, f)


# ----------------------------------------------------------------------------------------------- parent
def prepare_data(cfg: dict, path: Path) -> int:
    """Prompts kept by the constant-reference filter, with their N = 8 reference rewards from the initial model."""
    from trl_basis.evaluation import sample_rewards

    _, train, _, reward = tiny_world(num_train=cfg["num_train"], num_test=8, seed=0, world=cfg["world"])
    model, tokenizer = load_tiny(world=cfg["world"])
    refs = sample_rewards(scorer(model, tokenizer, reward), train, 8, prompts_per_call=64, seed=0)
    keep = [i for i, row in enumerate(refs.tolist()) if max(row) > min(row)]
    if len(keep) < cfg["completions"]:
        raise SystemExit(f"only {len(keep)} prompts kept by the filter; use more --num-train")
    kept = train.select(keep).to_dict()
    kept = {"prompt": kept["prompt"], "answer": kept["answer"], "reference_rewards": refs[keep].tolist()}
    path.write_text(json.dumps(kept))
    return len(keep)


def summarise(results: dict[str, dict], cfg: dict) -> list[list]:
    rows = []
    warm = cfg["warmup"]
    for name in LABELS:
        res = results[name]
        wall, cpu = res["step_wall"][warm:], res["step_cpu"][warm:]
        if res["adv_wall"]:
            adv_wall, adv_cpu = res["adv_wall"][warm:], res["adv_cpu"][warm:]
            adv_ms = 1e3 * statistics.fmean(adv_wall)
            adv_ms_cpu = 1e3 * statistics.fmean(adv_cpu)
            share_wall = f"{100 * sum(adv_wall) / sum(wall):.3f}%"
            share_cpu = f"{100 * sum(adv_cpu) / sum(cpu):.3f}%"
        else:
            adv_ms, adv_ms_cpu, share_wall, share_cpu = "inline in TRL", "-", "-", "-"
        rows.append(
            [
                label(name, cfg["completions"]),
                len(wall),
                statistics.fmean(wall),
                statistics.stdev(wall) if len(wall) > 1 else 0.0,
                statistics.fmean(cpu),
                adv_ms,
                adv_ms_cpu,
                share_wall,
                share_cpu,
                res["peak_total"],
                res["peak_training"] - res["rss_built"] if res["peak_training"] is not None else "n/a",
            ]
        )
    return rows


HEADERS = [
    "trainer",
    "timed steps",
    "wall s/step (mean)",
    "wall s/step (std)",
    "CPU s/step (mean)",
    "advantage ms/step (wall)",
    "advantage ms/step (CPU)",
    "advantage share (wall)",
    "advantage share (CPU)",
    "peak RSS MiB (worker)",
    "training peak over RSS before training MiB",
]


def plot(results: dict[str, dict], cfg: dict, path: str) -> None:
    """Two panels: mean CPU seconds per step split into advantage computation and the rest; training memory."""
    plt = harness.pyplot()
    warm = cfg["warmup"]
    names = [label(name, cfg["completions"]) for name in LABELS]
    step = [statistics.fmean(results[n]["step_cpu"][warm:]) for n in LABELS]
    adv = [statistics.fmean(results[n]["adv_cpu"][warm:]) if results[n]["adv_cpu"] else 0.0 for n in LABELS]
    memory = [
        results[n]["peak_training"] - results[n]["rss_built"] if results[n]["peak_training"] is not None else 0.0
        for n in LABELS
    ]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    rest = [s - a for s, a in zip(step, adv)]
    left.barh(names, rest, label="generation, loss, backward, optimizer")
    left.barh(names, adv, left=rest, label="advantage computation")
    for y, (s, a) in enumerate(zip(step, adv)):
        left.text(s, y, f" {100 * a / s:.2f}%" if a else " (inline in TRL)", va="center")
    left.set_xlabel("CPU seconds per optimizer step")
    left.legend(loc="lower right", fontsize=8)
    right.barh(names, memory)
    right.set_xlabel("peak memory during training over the built trainer's RSS (MiB)")
    fig.suptitle(f"Per-step overhead, {cfg['completions']} completions per step")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse(argv: list[str] | None):
    parser = harness.benchmark_parser(__doc__)
    parser.add_argument("--completions", type=int, default=None, help="completions per step, a multiple of 8 (64)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (full: 3)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (full: 30)")
    parser.add_argument("--num-train", type=int, default=None, help="training prompts before the filter (full: 600)")
    parser.add_argument("--worker", choices=list(LABELS), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    opts = harness.resolve(parser.parse_args(argv), FULL, QUICK)
    if opts.completions % GROUP:
        parser.error(f"--completions must be a multiple of {GROUP}")
    return opts


def run_worker(name: str, cfg: dict, threads: int, data_path: Path, out: Path) -> dict:
    """One trainer in a fresh subprocess (`--worker`), with the parent's settings spelled out."""
    command = [sys.executable, __file__, "--worker", name, "--data", str(data_path), "--out", str(out)]
    command += ["--threads", str(threads), "--world", cfg["world"]]
    command += [f"--{key.replace('_', '-')}={cfg[key]}" for key in FULL]
    proc = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
        raise SystemExit(f"worker {name} failed with exit code {proc.returncode}")
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> dict[str, dict]:
    opts = parse(argv)
    cfg = {key: getattr(opts, key) for key in FULL} | {"world": opts.world}
    if opts.worker:
        worker(opts.worker, opts.data, cfg, opts.out)
        return {}
    results: dict[str, dict] = {}
    with harness.timed() as total, tempfile.TemporaryDirectory() as tmp:
        data_path = Path(tmp) / "data.json"
        kept = prepare_data(cfg, data_path)
        for name in LABELS:
            with harness.timed() as spent:
                results[name] = run_worker(name, cfg, opts.threads, data_path, Path(tmp) / f"{name}.json")
            print(f"{label(name, cfg['completions'])}: done in {spent['wall']:.0f} s", flush=True)

    setup = (
        f"{cfg['completions']} completions per step, {cfg['warmup']} warm-up steps excluded, {cfg['steps']} timed "
        f"steps per trainer, each trainer in a fresh subprocess, {opts.threads} torch thread(s); {kept} prompts of "
        f"{cfg['num_train']} kept by the constant-reference filter. Wall and CPU seconds per optimizer step "
        "(generation + rewards + advantages + loss/backward + optimizer); the advantage time is the real "
        "`_compute_advantages` call timed by a subclass; memory from the worker's /proc/self/status (VmHWM; see the "
        "script's docstring). "
        f"Total run time {total['wall'] / 60:.1f} min."
    )
    name = harness.results_name("overhead", opts.world)
    body = setup + "\n\n" + harness.markdown_table(HEADERS, summarise(results, cfg))
    body += f"\n\n![overhead per step]({name}.png)"
    title = "Overhead per training step: BASIS and MaxPO vs GRPO"
    harness.write_results(name, title, harness.command_line("overhead.py", argv), body, write=harness.writes(opts))
    # A run that writes no results still draws its plot, into a temporary folder (the smoke test covers it).
    scratch = None if harness.writes(opts) else Path(tempfile.mkdtemp(prefix="overhead_")) / "overhead"
    prefix = harness.plot_prefix(opts, name, fallback=scratch)
    harness.write_plots(prefix, {".png": lambda path: plot(results, cfg, path)})
    return results


if __name__ == "__main__":
    main()
