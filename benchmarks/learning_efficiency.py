"""Learning efficiency: held-out accuracy against wall-clock time and completions, BASIS@1 against GRPO and the
strongest single-rollout peers.

    python benchmarks/learning_efficiency.py            # full run, seeds 0 1 2; writes benchmarks/results/
                                                        #   learning_efficiency.md and learning_efficiency.png
    python benchmarks/learning_efficiency.py --quick    # seconds: every method, tiny settings, prints only
    python benchmarks/learning_efficiency.py --world mixed --seeds 0 1 2 3 4 --methods ...
                                                        # the mixed world; writes learning_efficiency_mixed.*

Full run: about 45 minutes on the 2-core CPU with 1 torch thread.

Methods (all on a shipped tiny world, `--world` (`trl_basis.tasks.WORLDS`: `level3`, the default, or `mixed`), CPU,
`torch.set_num_threads(1)`):

View (a), equal completions per step (64):
* `BASIS@1`       `BASISTrainer`: 64 prompts x 1 completion per step, baseline from the other prompts of the
                  batch (ALGORITHMS.md §1), advantages divided by the batch std (the default). Its offline stage
                  (N = 8 samples of every training prompt from the initial policy) runs inside the timed
                  trainer construction with the on-disk cache DISABLED (`reference_cache_dir=None`), and its N x P
                  completions are counted: its curves start at that time / those completions.
* `GRPO@8`, `GRPO@4`, `GRPO@2`   TRL's `GRPOTrainer`, 8 x 8, 16 x 4, 32 x 2 (group mean, group std).
* `RLOO@8`        8 prompts x 8, leave-one-out group mean, no std scaling (`MaxPOTrainer` with K = 1, which is RLOO
                  exactly).
* `REINFORCE++@1` 64 prompts x 1, `A = (r - batch mean) / batch std` (OpenRLHF's `reinforce_baseline`;
                  `trl_basis.advantages.reinforce_pp_advantages`).
* `SPO@1`         64 prompts x 1, "Single-stream Policy Optimization" (arXiv 2509.13232): a persistent Beta tracker
                  per prompt started from the SAME offline samples as BASIS (its offline stage is timed and counted
                  the same way, and it trains on the same kept prompts), baseline = the tracker's mean read before
                  the update, global (A - mean) / std normalisation. The discount is CONSTANT (`_peers.SPO_DISCOUNT`)
                  instead of the paper's KL-adaptive one (`trl_basis.advantages.spo_advantages`).
* `BASIS+hist@1`, `BASIS+roll@1`, `BASIS+online@1`   `BASISTrainer` with `basis_values` = `history` (§1e),
                  `rolling` or `online` (§1f), all beyond the paper. `online` has no offline stage (0 offline
                  completions, all training prompts kept).
* `BASIS@1 N=4`, `BASIS@1 N=2`, `BASIS+roll@1 N=4`   the same with N = 4 or 2 reference samples per prompt
                  (a cheaper offline stage).
View (b), equal prompts per step (the paper's framing of "less training time"):
* `GRPO@8 x64p`   TRL's `GRPOTrainer`, 64 prompts x 8 = 512 completions per step, against `BASIS@1`'s 64 x 1.

Every method does the same number of optimizer steps, each on ONE generation batch (one optimizer step per
generation, no gradient accumulation), with the same loss (TRL's default "dapo" token loss, no KL, one PPO
iteration), the same learning rate (5e-5, constant: where both BASIS and GRPO learn, docs/tiny_model.md), the same
train set (1000 prompts of `make_arithmetic_dataset(seed=0)`), and within a seed the same prompt permutation (TRL's
`RepeatSampler` seeded with the run seed; BASIS and SPO permute the subset they keep after dropping prompts whose 8
reference rewards are all equal, so their order differs). Held-out accuracy = mean sampled reward (temperature 1)
over the 200 test prompts x 8 samples (never trained on, by SFT or RL), every 25 steps, with the same evaluation
seed at every point (common random numbers); evaluation time is excluded from the time axis, and the global torch
RNG is restored after each evaluation so evaluating does not change training. Wall time counts trainer
construction (model load; BASIS's and SPO's offline stage) plus training steps; the process CPU time is reported
too. Methods are interleaved seed-major (seed 0: all methods, then seed 1, ...), so load from other jobs affects
them alike.

"Time / completions to 95%": the first evaluation point at which the seed-mean accuracy of a method reaches 95%
of GRPO@8's final seed-mean accuracy; time is the seed mean of the wall time at that point.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings

import torch
from _common import (
    CPU_TRAINING,
    RESULTS_DIR,
    add_world_argument,
    held_out_accuracy,
    load_tiny,
    markdown_table,
    results_name,
    set_threads,
    tiny_world,
    write_results,
)
from _peers import SPO_DISCOUNT, reinforce_pp_trainer_class, rloo_config_kwargs, spo_trainer_class

warnings.filterwarnings("ignore")

NAME = "learning_efficiency"
#: method -> (completions per prompt, prompts per step as a multiple of `--batch` / completions per prompt).
#: View (a), equal completions per step: every method but the last samples `--batch` completions per step.
#: View (b), equal prompts per step: "GRPO@8 x64p" samples 8 completions for each of `--batch` prompts (8x the
#: completions of BASIS@1, the paper's own framing of "less training time").
METHODS = (
    "BASIS@1",
    "BASIS+hist@1",
    "BASIS+roll@1",
    "BASIS+online@1",
    "BASIS@1 N=4",
    "BASIS@1 N=2",
    "BASIS+roll@1 N=4",
    "GRPO@8",
    "GRPO@4",
    "GRPO@2",
    "RLOO@8",
    "REINFORCE++@1",
    "SPO@1",
    "GRPO@8 x64p",
)
DEFAULT_METHODS = METHODS
#: BASIS's `basis_values` of each BASIS method name (ALGORITHMS.md §1, §1e, §1f); " N=n" sets its N.
BASIS_VARIANTS = {"BASIS": "reference", "BASIS+hist": "history", "BASIS+roll": "rolling", "BASIS+online": "online"}
COLORS = {
    "BASIS@1": "tab:red",
    "BASIS+hist@1": "tab:pink",
    "BASIS+roll@1": "darkred",
    "BASIS+online@1": "tab:brown",
    "BASIS@1 N=4": "salmon",
    "BASIS@1 N=2": "lightcoral",
    "BASIS+roll@1 N=4": "maroon",
    "GRPO@8": "tab:blue",
    "GRPO@4": "tab:cyan",
    "GRPO@2": "tab:purple",
    "RLOO@8": "tab:olive",
    "REINFORCE++@1": "tab:green",
    "SPO@1": "tab:orange",
    "GRPO@8 x64p": "navy",
}


def group_size(method: str) -> int:
    return int(method.split("@")[1].split()[0])


def completions_per_step(method: str, batch: int) -> int:
    """`batch` completions per step, except the equal-prompts view, which samples `group_size` per prompt."""
    return batch * group_size(method) if method.endswith("x64p") else batch


def basis_variant(method: str, default_samples: int) -> tuple[str, int] | None:
    """`(basis_values, N)` of a BASIS method name such as "BASIS+roll@1 N=4"; None for other methods."""
    name, _, rest = method.partition("@")
    if name not in BASIS_VARIANTS:
        return None
    samples = int(rest.split("N=")[1]) if "N=" in rest else default_samples
    return BASIS_VARIANTS[name], samples


def make_world(num_train: int, num_test: int, difficulties, world: str | None = None):
    """`_common.tiny_world`, optionally restricted to some difficulty levels (train and test alike)."""
    if difficulties is None:
        return tiny_world(num_train=num_train, num_test=num_test, seed=0, world=world)
    from trl_basis.tasks import arithmetic_reward, make_arithmetic_dataset, tiny_model_path

    data = make_arithmetic_dataset(num_train=num_train, num_test=num_test, seed=0, difficulties=difficulties)
    return tiny_model_path(world), data["train"], data["test"], arithmetic_reward


class EvalClock:
    """Wall/CPU clocks of a run that exclude the evaluations, and the accuracy curve."""

    def __init__(self, evaluate, completions_per_step: int):
        self.evaluate = evaluate
        self.per_step = completions_per_step
        self.offline_completions = 0
        self.points: list[dict] = []
        self.wall0 = time.perf_counter()
        self.cpu0 = time.process_time()
        self.excluded_wall = 0.0
        self.excluded_cpu = 0.0

    def elapsed(self) -> tuple[float, float]:
        return (
            time.perf_counter() - self.wall0 - self.excluded_wall,
            time.process_time() - self.cpu0 - self.excluded_cpu,
        )

    def record(self, step: int, model, accuracy: float | None = None) -> None:
        wall, cpu = self.elapsed()
        w0, c0 = time.perf_counter(), time.process_time()
        if accuracy is None:
            rng = torch.get_rng_state()
            accuracy = self.evaluate(model)
            torch.set_rng_state(rng)  # evaluating must not change the training samples
        self.points.append(
            dict(
                step=step,
                wall=wall,
                cpu=cpu,
                completions=self.offline_completions + step * self.per_step,
                accuracy=accuracy,
            )
        )
        self.excluded_wall += time.perf_counter() - w0
        self.excluded_cpu += time.process_time() - c0


def eval_callback(clock: EvalClock, eval_every: int, max_steps: int):
    from transformers import TrainerCallback

    class EvalCallback(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step % eval_every == 0 or state.global_step == max_steps:
                clock.record(state.global_step, model)

    return EvalCallback()


def run_method(method: str, seed: int, opts, world, initial_accuracy: float) -> dict:
    from transformers import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    from trl_basis import BASISConfig, BASISTrainer, MaxPOConfig, MaxPOTrainer

    path, train, test, reward = world
    model_eval, tokenizer = opts.tokenizer_pair

    def evaluate(model):
        return held_out_accuracy(model, tokenizer, test, reward, num_samples=opts.eval_samples, seed=opts.eval_seed)

    common = dict(
        CPU_TRAINING,
        output_dir=f"/tmp/trl_basis_{NAME}/{opts.world}/{method.replace('@', '_').replace('+', 'p').replace(' ', '_')}-{seed}",
        per_device_train_batch_size=completions_per_step(method, opts.batch),
        gradient_accumulation_steps=1,
        max_steps=opts.steps,
        learning_rate=opts.lr,
        lr_scheduler_type=opts.scheduler,
        warmup_steps=opts.warmup_steps,
        seed=seed,
        logging_steps=max(opts.eval_every, 1),
    )
    clock = EvalClock(evaluate, completions_per_step(method, opts.batch))
    variant = basis_variant(method, opts.reference_samples)
    if variant is not None or method == "SPO@1":
        values, samples = variant or ("reference", opts.reference_samples)
        args = BASISConfig(
            **common,
            basis_values=values,
            num_reference_samples=samples,
            reference_cache_dir=None,  # the offline stage really runs, and is timed (SPO starts its tracker from it)
            reference_batch_size=64,
        )
        cls = spo_trainer_class() if method == "SPO@1" else BASISTrainer
        trainer = cls(path, [reward], args=args, train_dataset=train)
        # The offline stage runs at the start of train(); run it here so that it is timed as construction.
        trainer.prepare_reference_rewards()
        clock.offline_completions = 0 if values == "online" else samples * len(train)
    elif method == "REINFORCE++@1":
        args = BASISConfig(**common, num_reference_samples=0)  # a BASISConfig only for num_generations=1
        trainer = reinforce_pp_trainer_class()(path, [reward], args=args, train_dataset=train)
    elif method.startswith("GRPO@"):
        args = GRPOConfig(**common, num_generations=group_size(method))
        trainer = GRPOTrainer(path, [reward], args=args, train_dataset=train)
    elif method.startswith("RLOO@"):
        args = MaxPOConfig(**common, num_generations=group_size(method), **rloo_config_kwargs())
        trainer = MaxPOTrainer(path, [reward], args=args, train_dataset=train)
    else:
        raise ValueError(method)
    trainer.remove_callback(PrinterCallback)
    # Step 0: the initial model (same weights and evaluation seed for every method, so evaluated once per run set).
    clock.record(0, trainer.model, accuracy=initial_accuracy)
    trainer.add_callback(eval_callback(clock, opts.eval_every, opts.steps))
    trainer.train()
    kept = len(trainer.train_dataset)
    train_reward = [(h["step"], h["reward"]) for h in trainer.state.log_history if "reward" in h]
    wall, cpu = clock.elapsed()
    return dict(
        method=method,
        seed=seed,
        points=clock.points,
        wall=wall,
        cpu=cpu,
        completions=clock.offline_completions + opts.steps * completions_per_step(method, opts.batch),
        offline_completions=clock.offline_completions,
        train_prompts_kept=kept,
        train_reward=train_reward,
    )


def mean_curve(runs: list[dict]) -> list[dict]:
    """Seed means of each evaluation point (all runs of a method share the same evaluation steps)."""
    out = []
    for points in zip(*(r["points"] for r in runs), strict=True):
        accs = [p["accuracy"] for p in points]
        out.append(
            dict(
                step=points[0]["step"],
                completions=points[0]["completions"],
                wall=statistics.mean(p["wall"] for p in points),
                cpu=statistics.mean(p["cpu"] for p in points),
                accuracy=statistics.mean(accs),
                accuracy_std=statistics.stdev(accs) if len(accs) > 1 else 0.0,
            )
        )
    return out


def mean_std(values: list[float], fmt: str = "{:.3f}") -> str:
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.mean(values))} ± {fmt.format(statistics.stdev(values))}"


def mean_se(values: list[float]) -> str:
    """Mean ± standard error of the mean (over seeds)."""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values) / len(values) ** 0.5:.3f}"


def train_reward_change(runs: list[dict]) -> str:
    """Seed-mean of TRL's logged training reward (mean over a logging window) in the first and the last window."""
    if not all(r["train_reward"] for r in runs):
        return "-"
    first = statistics.mean(r["train_reward"][0][1] for r in runs)
    last = statistics.mean(r["train_reward"][-1][1] for r in runs)
    return f"{first:.3f} → {last:.3f}"


def notes(runs: list[dict], opts, initial_accuracy: float, target: float) -> str:
    """Reading aids computed from the numbers: which final accuracies differ from the initial model's."""
    lines = ["## Reading the numbers", ""]
    lines.append(
        f"- Final held-out accuracy minus the initial model's {initial_accuracy:.4f}: seed mean ± standard error over "
        f"{len(opts.seeds)} seeds (each seed's evaluation samples its own model, so the error includes evaluation "
        "noise), and the best evaluation point after step 0 (seed mean of each seed's best):"
    )
    for m in opts.methods:
        finals = [r["points"][-1]["accuracy"] for r in runs if r["method"] == m]
        best = [max(pt["accuracy"] for pt in r["points"][1:]) for r in runs if r["method"] == m]
        se = statistics.stdev(finals) / len(finals) ** 0.5 if len(finals) > 1 else float("nan")
        lines.append(
            f"  - {m}: {statistics.mean(finals) - initial_accuracy:+.4f} ± {se:.4f} (best point {statistics.mean(best):.4f})"
        )
    if target <= initial_accuracy:
        lines.append(
            f"- The target {target:.4f} (95% of GRPO@8's final accuracy) is below the initial model's accuracy, so "
            "every method 'reaches' it at step 0: the time-to-target columns then only measure trainer construction "
            "(for BASIS, its offline stage)."
        )
    basis = [r for r in runs if r["method"] == "BASIS@1"]
    if basis:
        kept = statistics.mean(r["train_prompts_kept"] for r in basis)
        lines.append(
            f"- BASIS trains only on the ~{kept:.0f} of {opts.train_prompts} prompts whose reference rewards are not "
            f"constant, so in {opts.steps} steps x {opts.batch} prompts it sees each ~{opts.steps * opts.batch / kept:.0f} "
            "times; its logged training reward is measured on those prompts only and is not comparable with the "
            "other methods' (which sample all prompts, easy and impossible ones included)."
        )
    return "\n".join(lines) + "\n"


def summarise(runs: list[dict], opts) -> tuple[str, dict]:
    by_method = {m: [r for r in runs if r["method"] == m] for m in opts.methods}
    curves = {m: mean_curve(rs) for m, rs in by_method.items()}
    reference = "GRPO@8" if "GRPO@8" in curves else opts.methods[0]
    target = 0.95 * curves[reference][-1]["accuracy"]
    rows = []
    ref_reached = next((p for p in curves[reference] if p["accuracy"] >= target), None)

    def ratio(reached, key: str) -> str:
        if not reached or not ref_reached or ref_reached[key] <= 0:
            return "-"
        return f"{reached[key]:.0f} ({100 * reached[key] / ref_reached[key]:.0f}%)"

    for m, rs in by_method.items():
        reached = next((p for p in curves[m] if p["accuracy"] >= target), None)
        rows.append(
            [
                m,
                mean_se([r["points"][-1]["accuracy"] for r in rs]),
                rs[0]["completions"],
                rs[0]["offline_completions"],
                mean_std([r["wall"] for r in rs], "{:.0f}"),
                mean_std([r["cpu"] for r in rs], "{:.0f}"),
                ratio(reached, "wall") if reached else "not reached",
                ratio(reached, "cpu") if reached else "not reached",
                f"{reached['completions']}" if reached else "not reached",
                f"{reached['step']}" if reached else "-",
                train_reward_change(rs),
            ]
        )
    headers = [
        "method",
        "final accuracy (mean ± s.e.)",
        "completions",
        "of which offline",
        "wall s",
        "CPU s",
        f"wall s to {target:.3f} (% of {reference}'s)",
        f"CPU s to {target:.3f} (% of {reference}'s)",
        f"completions to {target:.3f}",
        "step",
        "train reward, first → last window",
    ]
    table = markdown_table(headers, rows)

    # Curves: seed-mean accuracy at each evaluation step.
    steps = [p["step"] for p in curves[opts.methods[0]]]
    curve_rows = []
    for i, step in enumerate(steps):
        row = [step]
        for m in opts.methods:
            p = curves[m][i]
            row.append(f"{p['accuracy']:.3f} ± {p['accuracy_std']:.3f} ({p['wall']:.0f} s)")
        curve_rows.append(row)
    curve_table = markdown_table(["step"] + [f"{m} acc (wall)" for m in opts.methods], curve_rows)
    kept = {m: sorted({r["train_prompts_kept"] for r in rs}) for m, rs in by_method.items()}
    return table, dict(curves=curves, target=target, curve_table=curve_table, kept=kept)


def plot(curves: dict, target: float, path, world: str = "level3") -> None:
    """View (a) against wall time and completions; with the equal-prompts run, a third panel adds it (its 8x
    completions per step would squeeze view (a) into a corner of a shared axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    equal_completions = {m: c for m, c in curves.items() if not m.endswith("x64p")}
    panels = [
        (equal_completions, "wall", "wall-clock seconds (evaluation excluded)", "equal completions per step"),
        (
            equal_completions,
            "completions",
            "completions generated (incl. offline stages)",
            "equal completions per step",
        ),
    ]
    if len(equal_completions) < len(curves):
        view_b = {m: c for m, c in curves.items() if m.endswith("x64p") or m == "BASIS@1"}
        panels.append((view_b, "wall", "wall-clock seconds (evaluation excluded)", "equal prompts per step (64)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.8))
    for ax, (group, key, label, title) in zip(axes, panels, strict=True):
        for m, curve in group.items():
            x = [p[key] for p in curve]
            y = [p["accuracy"] for p in curve]
            s = [p["accuracy_std"] for p in curve]
            ax.plot(x, y, marker="o", ms=3, label=m, color=COLORS.get(m))
            ax.fill_between(
                x, [a - b for a, b in zip(y, s)], [a + b for a, b in zip(y, s)], alpha=0.12, color=COLORS.get(m)
            )
        ax.axhline(target, ls="--", color="gray", lw=1, label="95% of GRPO@8 final")
        ax.set_xlabel(label)
        ax.set_ylabel("held-out accuracy (mean sampled reward)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"Learning efficiency on the tiny world {world!r} (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny settings (CI smoke test); writes nothing")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument(
        "--methods", nargs="*", default=list(DEFAULT_METHODS), choices=METHODS, help="none: only --merge"
    )
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per run (full: 300)")
    parser.add_argument("--eval-every", type=int, default=None, help="steps between evaluations (full: 25)")
    parser.add_argument("--batch", type=int, default=64, help="completions per step (full: 64)")
    parser.add_argument("--train-prompts", type=int, default=None, help="training prompts (full: 1000)")
    parser.add_argument("--eval-prompts", type=int, default=None, help="held-out prompts (full: 200)")
    add_world_argument(parser)
    parser.add_argument("--difficulties", type=int, nargs="+", default=None, help="task levels (default: the world's)")
    parser.add_argument("--eval-samples", type=int, default=None, help="samples per held-out prompt (full: 8)")
    parser.add_argument("--eval-seed", type=int, default=1234)
    parser.add_argument("--reference-samples", type=int, default=8, help="BASIS's N")
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--scheduler", default="constant", help="learning-rate schedule (transformers' names)")
    parser.add_argument("--warmup-steps", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the CPU is shared)")
    parser.add_argument("--no-write", action="store_true", help="print only, even for a full run")
    parser.add_argument("--dump", default=None, help="also write the raw per-run curves as JSON to this path")
    parser.add_argument(
        "--merge",
        nargs="+",
        default=None,
        help="--dump files of earlier runs with the same settings: their runs are reported together with this run's",
    )
    opts = parser.parse_args(argv)
    quick = opts.quick
    defaults = dict(
        steps=4 if quick else 300,
        eval_every=2 if quick else 25,
        train_prompts=96 if quick else 1000,
        eval_prompts=16 if quick else 200,
        eval_samples=2 if quick else 8,
    )
    for key, value in defaults.items():
        if getattr(opts, key) is None:
            setattr(opts, key, value)
    if opts.seeds is None:
        opts.seeds = [0] if quick else [0, 1, 2]
    if quick:
        opts.batch = min(opts.batch, 16)
    set_threads(opts.threads)
    command = "python benchmarks/learning_efficiency.py" + "".join(
        " " + a for a in (argv if argv is not None else sys.argv[1:])
    )

    world = make_world(opts.train_prompts, opts.eval_prompts, opts.difficulties, opts.world)
    model0, tokenizer = load_tiny(world=opts.world)
    opts.tokenizer_pair = (model0, tokenizer)
    start = time.perf_counter()
    rng = torch.get_rng_state()
    initial_accuracy = held_out_accuracy(
        model0, tokenizer, world[2], world[3], num_samples=opts.eval_samples, seed=opts.eval_seed
    )
    torch.set_rng_state(rng)
    print(f"initial held-out accuracy: {initial_accuracy:.4f}", flush=True)

    runs = []
    for seed in opts.seeds:  # seed-major: every method once per seed, so load from other jobs affects them alike
        for method in opts.methods:
            result = run_method(method, seed, opts, world, initial_accuracy)
            runs.append(result)
            print(
                f"seed {seed} {method:14s} final acc {result['points'][-1]['accuracy']:.4f}  wall {result['wall']:.1f}s "
                f"cpu {result['cpu']:.1f}s  completions {result['completions']}  kept prompts {result['train_prompts_kept']}",
                flush=True,
            )
    total = time.perf_counter() - start
    if not opts.methods and not opts.merge:
        parser.error("--methods with no method needs --merge")
    if opts.merge:  # e.g. an option added after the main run: report all methods side by side
        earlier = []
        for path in opts.merge:
            with open(path) as f:
                earlier += json.load(f)["runs"]
        runs = earlier + runs
        opts.methods = list(dict.fromkeys([r["method"] for r in earlier] + list(opts.methods)))

    table, extra = summarise(runs, opts)
    settings = (
        f"- settings: {opts.steps} optimizer steps per run, each on one generation batch of {opts.batch} completions "
        f"(BASIS@1, REINFORCE++@1, SPO@1: {opts.batch} prompts x 1; GRPO@G and RLOO@G: {opts.batch} / G prompts x G; "
        f"GRPO@8 x64p: {opts.batch} prompts x 8 = {8 * opts.batch} completions); SPO's constant discount "
        f"{SPO_DISCOUNT}; learning rate {opts.lr:g} constant, AdamW, TRL defaults otherwise (loss 'dapo', "
        f"no KL); train set {opts.train_prompts} prompts (BASIS keeps {extra['kept'].get('BASIS@1', '-')} after "
        f"dropping prompts with constant reference rewards; its offline stage samples N = {opts.reference_samples} "
        f"per prompt = {opts.reference_samples * opts.train_prompts} completions, uncached, timed); held-out "
        f"accuracy on {opts.eval_prompts} test prompts x {opts.eval_samples} samples every {opts.eval_every} steps "
        f"(evaluation seed {opts.eval_seed}, excluded from the time axis); seeds {opts.seeds}, run seed-major; "
        f"torch threads {opts.threads}; whole script {total / 60:.1f} min wall\n"
        f"- initial model's held-out accuracy: {initial_accuracy:.4f}"
        + (
            " (the target below is NOT above it: a method 'reaches' it at step 0, i.e. at its construction time)\n"
            if extra["target"] <= initial_accuracy
            else "\n"
        )
        + f"- target: 95% of GRPO@8's final seed-mean accuracy = {extra['target']:.4f}; 'wall s to' / 'CPU s to' are "
        "the seed-mean wall / process CPU times at the first evaluation point where the method's seed-mean accuracy "
        "reaches it (CPU time is the robust one when other jobs share the cores)\n"
    )
    body = (
        settings
        + "\n## Summary\n\n"
        + table
        + "\n\n## Seed-mean accuracy ± std (seed-mean wall seconds) at each evaluation step\n\n"
        + extra["curve_table"]
        + f"\n\n![accuracy vs time and completions]({results_name(NAME, opts.world)}.png)\n\n"
        + notes(runs, opts, initial_accuracy, extra["target"])
    )
    write = not (quick or opts.no_write)
    name = results_name(NAME, opts.world)
    write_results(
        name,
        "Learning efficiency: BASIS@1 vs GRPO@8/4/2, RLOO@8, REINFORCE++@1, SPO@1 (equal completions) and GRPO@8 x64p "
        "(equal prompts)",
        command.strip(),
        body,
        quick=not write,
    )
    if write:
        plot(extra["curves"], extra["target"], RESULTS_DIR / f"{name}.png", opts.world)
        print(f"wrote {RESULTS_DIR / (name + '.png')}")
    if opts.dump:
        with open(opts.dump, "w") as f:
            json.dump(dict(runs=runs, initial_accuracy=initial_accuracy), f)
        if not write:
            plot(extra["curves"], extra["target"], opts.dump + ".png", opts.world)
    print(f"total {total:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
