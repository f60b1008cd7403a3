"""Learning efficiency: held-out accuracy against wall-clock time and completions, BASIS@1 against GRPO and the
strongest single-rollout peers.

    python benchmarks/learning_efficiency.py            # full run, seeds 0 1 2; writes benchmarks/results/
                                                        #   learning_efficiency.md and learning_efficiency.png
    python benchmarks/learning_efficiency.py --quick    # seconds: every method, tiny settings, prints only
    python benchmarks/learning_efficiency.py --world mixed --seeds 0 1 2 3 4 --methods ...
                                                        # the mixed world; writes learning_efficiency_mixed.*
    python benchmarks/learning_efficiency.py --seeds 1 --no-write --dump s1.json   # one seed's raw runs, then
    python benchmarks/learning_efficiency.py --methods --merge s0.json s1.json      #   one table of all of them

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
                  the update, global (A - mean) / std normalisation. The discount is CONSTANT (`_methods.SPO_DISCOUNT`)
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

import statistics
import warnings

import _harness as harness
from _common import CPU_TRAINING, load_tiny, scorer, tiny_world
from _methods import SPO_DISCOUNT, group_size, make_trainer

warnings.filterwarnings("ignore")

NAME = "learning_efficiency"
#: Method -> plot colour, in table order (method names: `_methods.py`). View (a), equal completions per step: every
#: method but the last samples `--batch` completions per step. View (b), equal prompts per step: "GRPO@8 x64p"
#: samples 8 completions for each of `--batch` prompts (8x the completions of BASIS@1, the paper's own framing of
#: "less training time").
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
METHODS = tuple(COLORS)
FULL = dict(steps=300, eval_every=25, train_prompts=1000, eval_prompts=200, eval_samples=8, seeds=[0, 1, 2])
QUICK = dict(steps=4, eval_every=2, train_prompts=96, eval_prompts=16, eval_samples=2, seeds=[0])


def completions_per_step(method: str, batch: int) -> int:
    """`batch` completions per step, except the equal-prompts view, which samples `group_size` per prompt."""
    return batch * group_size(method) if method.endswith("x64p") else batch


def accuracy_of(trainer, test, reward, opts) -> float:
    """Held-out pass@1 sampled by `trainer` (the library's one path; every random stream restored after)."""
    from trl_basis.evaluation import held_out_accuracy

    return held_out_accuracy(trainer, test, reward, num_samples=opts.eval_samples, seed=opts.eval_seed)["accuracy"]


def run_method(method: str, seed: int, opts, world, initial_accuracy: float) -> dict:
    """Train one method for one seed; its accuracy curve against wall/CPU time (evaluations excluded) and
    completions (the offline stage's included)."""
    from transformers import PrinterCallback

    _, _, test, reward = world
    per_step = completions_per_step(method, opts.batch)
    tag = method.replace("@", "_").replace("+", "p").replace(" ", "_")
    common = dict(
        CPU_TRAINING,
        output_dir=f"/tmp/trl_basis_{NAME}/{opts.world}/{tag}-{seed}",
        per_device_train_batch_size=per_step,
        gradient_accumulation_steps=1,
        max_steps=opts.steps,
        learning_rate=opts.lr,
        lr_scheduler_type=opts.scheduler,
        warmup_steps=opts.warmup_steps,
        seed=seed,
        logging_steps=max(opts.eval_every, 1),
    )
    points: list[dict] = []
    offline = 0

    def record(step: int, model, accuracy: float | None = None, **_) -> None:
        wall, cpu = clock.elapsed()
        with clock.paused():  # evaluation time is excluded from the time axis
            if accuracy is None:
                # The run's own trainer samples (its sampler, TRL's path); every random stream is restored after.
                accuracy = accuracy_of(trainer, test, reward, opts)
            points.append(
                dict(step=step, wall=wall, cpu=cpu, completions=offline + step * per_step, accuracy=accuracy)
            )

    clock = harness.Clock()  # construction (model load; BASIS's and SPO's offline stage) is timed
    trainer, offline = make_trainer(method, world, common, opts.reference_samples)
    trainer.remove_callback(PrinterCallback)
    # Step 0: the initial model (same weights and evaluation seed for every method, so evaluated once per run set).
    record(0, trainer.model, accuracy=initial_accuracy)
    trainer.add_callback(harness.step_callback(record, lambda step: step % opts.eval_every == 0 or step == opts.steps))
    trainer.train()
    wall, cpu = clock.elapsed()
    return dict(
        method=method,
        seed=seed,
        points=points,
        wall=wall,
        cpu=cpu,
        completions=offline + opts.steps * per_step,
        offline_completions=offline,
        train_prompts_kept=len(trainer.train_dataset),
        train_reward=[(h["step"], h["reward"]) for h in trainer.state.log_history if "reward" in h],
    )


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
        "- Final held-out accuracy minus the run's own step-0 evaluation (runs merged from other commits may have "
        f"evaluated the initial model differently; this run's: {initial_accuracy:.4f}): mean ± standard error over "
        "the method's seeds (each seed's evaluation samples its own model, so the error includes evaluation noise), "
        "and the best evaluation point after step 0 (seed mean of each seed's best):"
    )
    for m in opts.methods:
        mine = [r for r in runs if r["method"] == m]
        gains = [r["points"][-1]["accuracy"] - r["points"][0]["accuracy"] for r in mine]
        best = [max(pt["accuracy"] for pt in r["points"][1:]) for r in mine]
        se = harness.std_error(gains)
        lines.append(
            f"  - {m} ({len(mine)} seeds): {statistics.mean(gains):+.4f} ± {se:.4f} "
            f"(best point {statistics.mean(best):.4f})"
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
    curves = {m: harness.mean_points([r["points"] for r in rs], "accuracy") for m, rs in by_method.items()}
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
                harness.mean_se([r["points"][-1]["accuracy"] for r in rs]),
                rs[0]["completions"],
                rs[0]["offline_completions"],
                harness.mean_std([r["wall"] for r in rs], "{:.0f}"),
                harness.mean_std([r["cpu"] for r in rs], "{:.0f}"),
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
    table = harness.markdown_table(headers, rows)

    # Curves: seed-mean accuracy at each evaluation step.
    steps = [p["step"] for p in curves[opts.methods[0]]]
    curve_rows = []
    for i, step in enumerate(steps):
        row = [step]
        for m in opts.methods:
            p = curves[m][i]
            row.append(f"{p['accuracy']:.3f} ± {p['accuracy_std']:.3f} ({p['wall']:.0f} s)")
        curve_rows.append(row)
    curve_table = harness.markdown_table(["step"] + [f"{m} acc (wall)" for m in opts.methods], curve_rows)
    kept = {m: sorted({r["train_prompts_kept"] for r in rs}) for m, rs in by_method.items()}
    return table, dict(curves=curves, target=target, curve_table=curve_table, kept=kept)


def plot(curves: dict, target: float, path: str, world: str = "level3") -> None:
    """View (a) against wall time and completions; with the equal-prompts run, a third panel adds it (its 8x
    completions per step would squeeze view (a) into a corner of a shared axis)."""
    plt = harness.pyplot()
    equal_completions = {m: c for m, c in curves.items() if not m.endswith("x64p")}
    wall_label = "wall-clock seconds (evaluation excluded)"
    panels = [
        (equal_completions, "wall", wall_label, "equal completions per step"),
        (
            equal_completions,
            "completions",
            "completions generated (incl. offline stages)",
            "equal completions per step",
        ),
    ]
    if len(equal_completions) < len(curves):
        view_b = {m: c for m, c in curves.items() if m.endswith("x64p") or m == "BASIS@1"}
        panels.append((view_b, "wall", wall_label, "equal prompts per step (64)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.8))
    for ax, (group, key, label, title) in zip(axes, panels, strict=True):
        for m, curve in group.items():
            x, y = [p[key] for p in curve], [p["accuracy"] for p in curve]
            ax.plot(x, y, marker="o", ms=3, label=m, color=COLORS.get(m))
            harness.band(ax, x, y, [p["accuracy_std"] for p in curve], color=COLORS.get(m))
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


def settings(opts, extra: dict, initial_accuracy: float, minutes: float) -> str:
    """The run's settings, the initial accuracy and the target, as the bullets above the tables."""
    below = " (the target below is NOT above it: a method 'reaches' it at step 0, i.e. at its construction time)"
    return (
        f"- settings: {opts.steps} optimizer steps per run, each on one generation batch of {opts.batch} completions "
        f"(BASIS@1, REINFORCE++@1, SPO@1: {opts.batch} prompts x 1; GRPO@G and RLOO@G: {opts.batch} / G prompts x G; "
        f"GRPO@8 x64p: {opts.batch} prompts x 8 = {8 * opts.batch} completions); SPO's constant discount "
        f"{SPO_DISCOUNT}; learning rate {opts.lr:g} constant, AdamW, TRL defaults otherwise (loss 'dapo', "
        f"no KL); train set {opts.train_prompts} prompts (BASIS keeps {extra['kept'].get('BASIS@1', '-')} after "
        f"dropping prompts with constant reference rewards; its offline stage samples N = {opts.reference_samples} "
        f"per prompt = {opts.reference_samples * opts.train_prompts} completions, uncached, timed); held-out "
        f"accuracy on {opts.eval_prompts} test prompts x {opts.eval_samples} samples every {opts.eval_every} steps "
        f"(evaluation seed {opts.eval_seed}, excluded from the time axis); seeds {opts.seeds}, run seed-major; "
        f"torch threads {opts.threads}; whole script {minutes:.1f} min wall\n"
        f"- initial model's held-out accuracy: {initial_accuracy:.4f}"
        + (below if extra["target"] <= initial_accuracy else "")
        + "\n"
        + f"- target: 95% of GRPO@8's final seed-mean accuracy = {extra['target']:.4f}; 'wall s to' / 'CPU s to' are "
        "the seed-mean wall / process CPU times at the first evaluation point where the method's seed-mean accuracy "
        "reaches it (CPU time is the robust one when other jobs share the cores)\n"
    )


def parse(argv: list[str] | None):
    parser = harness.benchmark_parser(__doc__, seeds=True)
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS, help="none: only --merge")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per run (full: 300)")
    parser.add_argument("--eval-every", type=int, default=None, help="steps between evaluations (full: 25)")
    parser.add_argument("--batch", type=int, default=64, help="completions per step (full: 64)")
    parser.add_argument("--train-prompts", type=int, default=None, help="training prompts (full: 1000)")
    parser.add_argument("--eval-prompts", type=int, default=None, help="held-out prompts (full: 200)")
    parser.add_argument("--difficulties", type=int, nargs="+", default=None, help="task levels (default: the world's)")
    parser.add_argument("--eval-samples", type=int, default=None, help="samples per held-out prompt (full: 8)")
    parser.add_argument("--eval-seed", type=int, default=1234)
    parser.add_argument("--reference-samples", type=int, default=8, help="BASIS's N")
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--scheduler", default="constant", help="learning-rate schedule (transformers' names)")
    parser.add_argument("--warmup-steps", type=int, default=0)
    opts = parser.parse_args(argv)
    harness.resolve(opts, FULL, QUICK)
    if not (opts.methods and opts.seeds) and not opts.merge:
        parser.error("--methods or --seeds with none needs --merge")
    if opts.quick:
        opts.batch = min(opts.batch, 16)
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    world = tiny_world(opts.train_prompts, opts.eval_prompts, seed=0, world=opts.world, difficulties=opts.difficulties)
    model0, tokenizer = load_tiny(world=opts.world)
    with harness.timed() as total:
        initial_accuracy = accuracy_of(scorer(model0, tokenizer, world[3]), world[2], world[3], opts)
        print(f"initial held-out accuracy: {initial_accuracy:.4f}", flush=True)
        runs = harness.seed_major(
            opts.seeds,
            opts.methods,
            lambda seed, method: run_method(method, seed, opts, world, initial_accuracy),
            lambda r: (
                f"{r['method']:14s} final acc {r['points'][-1]['accuracy']:.4f}  wall {r['wall']:.1f}s "
                f"cpu {r['cpu']:.1f}s  completions {r['completions']}  kept prompts {r['train_prompts_kept']}"
            ),
        )
    earlier, _ = harness.merge_runs(opts.merge)  # e.g. an option added after the main run: all methods side by side
    runs = earlier + runs
    opts.methods = list(dict.fromkeys([r["method"] for r in earlier] + list(opts.methods)))
    opts.seeds = sorted({r["seed"] for r in runs})  # what the table reports, merged runs included

    table, extra = summarise(runs, opts)
    name = harness.results_name(NAME, opts.world)
    body = (
        settings(opts, extra, initial_accuracy, total["wall"] / 60)
        + "\n## Summary\n\n"
        + table
        + "\n\n## Seed-mean accuracy ± std (seed-mean wall seconds) at each evaluation step\n\n"
        + extra["curve_table"]
        + f"\n\n![accuracy vs time and completions]({name}.png)\n\n"
        + notes(runs, opts, initial_accuracy, extra["target"])
    )
    title = (
        "Learning efficiency: BASIS@1 vs GRPO@8/4/2, RLOO@8, REINFORCE++@1, SPO@1 (equal completions) and GRPO@8 x64p "
        "(equal prompts)"
    )
    harness.write_results(
        name, title, harness.command_line("learning_efficiency.py", argv), body, write=harness.writes(opts)
    )
    if opts.dump:
        harness.dump_runs(opts.dump, runs, initial_accuracy=initial_accuracy)
    draw = {".png": lambda path: plot(extra["curves"], extra["target"], path, opts.world)}
    harness.write_plots(harness.plot_prefix(opts, name, fallback=opts.dump), draw)
    print(f"total {total['wall']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
