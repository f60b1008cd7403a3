"""Max@K: gradient variance of the max@K advantage estimators, and pass@k after equal-compute training.

    python benchmarks/max_at_k.py            # full run, seeds 0 1 2; writes benchmarks/results/max_at_k.md,
                                             #   max_at_k_variance.png and max_at_k_pass_at_k.png
    python benchmarks/max_at_k.py --quick    # seconds: tiny settings, prints only
    python benchmarks/max_at_k.py --world hard --seeds 1 --no-write --dump s1.json   # one seed's raw runs, then
    python benchmarks/max_at_k.py --world hard --seeds --merge s0.json s1.json       #   one table of all of them

(a) Gradient variance. At two checkpoints of the tiny model (the initial model, and the MaxPO/L2O model of seed
    0 from part (b)), draw R = 30 batches of 16 training prompts x B = 8 completions (prompts drawn at random
    from the train split; temperature 1, no top-k/top-p, at most 8 new tokens), K in {2, 4, 6}. On each
    batch compute, for every estimator, the flattened policy gradient

        g = (1/16) sum_groups sum_i A_i grad log pi(y_i | x_i)      (log pi: the completion's summed token log-probs)

    on the SAME samples (one forward, one backward per estimator). Estimators, at library scale (no trainer factor
    B): L2O `maxpo_advantages`, PKPO `pkpo_advantages` with baseline none / loo / loo_minus_one (all unbiased for
    grad max@K), and GRPO `(r - group mean) / B` (MaxPO's "grpo" estimator / B, no std scaling: it targets
    grad pass@1, so its mean differs). Reported over the R batches: the total variance tr Cov = mean squared
    distance to the mean gradient (Bessel-corrected), the norm of the mean gradient, the same with its noise
    removed, sqrt(|mean|^2 - tr Cov / R), and the distance of each mean gradient to L2O's over the same batches
    divided by its standard error (about 1 when both have the same expectation). Sampling seed 0; both
    checkpoints see the same prompts. Full run: about 8.5 minutes on the 2-core CPU with 1 thread.

(b) pass@k curves. MaxPOTrainer with 64 completions per step for every run: `l2o` (MaxPO) at K = 4 (8 prompts x
    B = 8) and at K = 8 (4 prompts x B = 16), `pkpo_loo` (PKPO) at K = 4 (8 x 8) and `grpo` (group-mean baseline,
    8 x 8); scale_rewards "none" (MaxPO's default); the same number of optimizer steps (300), learning rate (5e-5,
    constant, as in learning_efficiency.py) and train set (1000 prompts of the default task, level 3).
    Then pass@k for k = 1..16 from 16 samples per held-out prompt (`evaluate_pass_at_k`, 200 test prompts,
    evaluation seed 1234), for each trained model and the base model. Seeds 0 1 2, run seed-major (seed 0: all
    estimators, then seed 1, ...), `torch.set_num_threads(1)` by default (the CPU is shared).

`--merge` reports the runs of earlier `--dump` files with this run's (`--seeds` with no seed: only the merged ones);
part (a) is then this run's, or without seeds of its own, the first merged file's.
"""

from __future__ import annotations

import statistics
import warnings

import _harness as harness
from _common import CPU_TRAINING, fresh_copy, load_tiny, scorer, tiny_world
from _max_at_k_variance import from_json, gradient_variance, plot_variance, to_json, variance_notes, variance_table

warnings.filterwarnings("ignore")

NAME = "max_at_k"
#: label -> (advantage estimator, K, group size B). Every run samples the same completions per step (`--group` x
#: `--train-prompts-per-step`), so K = 8 runs use groups of 16 (K < B) over half as many prompts.
TRAIN_ESTIMATORS = {
    "MaxPO K=4 (l2o)": ("l2o", 4, 8),
    "MaxPO K=8 (l2o)": ("l2o", 8, 16),
    "PKPO K=4 (pkpo_loo)": ("pkpo_loo", 4, 8),
    "GRPO (grpo)": ("grpo", 4, 8),
}
COLORS = {
    "base model": "gray",
    "MaxPO K=4 (l2o)": "tab:red",
    "MaxPO K=8 (l2o)": "darkred",
    "PKPO K=4 (pkpo_loo)": "tab:blue",
    "GRPO (grpo)": "tab:green",
}
#: (run field, format) of the training columns of the pass@k table: wall s, CPU s, Adam's proxy.
TIMING_COLUMNS = (("wall", ".0f"), ("cpu", ".0f"), ("proxy", ".4g"))
FULL = dict(steps=300, ks=[2, 4, 6], batches=30, train_size=1000, eval_prompts=200, seeds=[0, 1, 2])
QUICK = dict(steps=3, ks=[2, 4], batches=3, train_size=64, eval_prompts=8, seeds=[0])


# ---------------------------------------------------------------------------------------------- (b) pass@k
def adam_variance_proxy(optimizer) -> float:
    """The MaxPO paper's gradient-variance proxy during training: Adam's bias-corrected second moment minus its
    squared first moment, summed over every parameter, Σ (v̂ − m̂²)."""
    total = 0.0
    for group in optimizer.param_groups:
        beta1, beta2 = group["betas"]
        for param in group["params"]:
            st = optimizer.state.get(param, {})
            if "exp_avg" not in st:
                continue
            t = float(st["step"])
            m = st["exp_avg"] / (1 - beta1**t)
            v = st["exp_avg_sq"] / (1 - beta2**t)
            total += (v - m.square()).sum().item()
    return total


def train_estimator(estimator: str, k: int, group: int, seed: int, opts, world):
    """Train one MaxPO run; (model, wall s, CPU s, mean Adam proxy over the second half of the steps)."""
    from transformers import PrinterCallback

    from trl_basis import MaxPOConfig, MaxPOTrainer

    path, train, _, reward = world
    args = MaxPOConfig(
        **dict(CPU_TRAINING, logging_steps=max(opts.steps // 5, 1)),
        output_dir=f"/tmp/trl_basis_{NAME}/{estimator}-k{k}-{seed}",
        per_device_train_batch_size=opts.train_prompts_per_step * opts.group,  # equal completions per step
        gradient_accumulation_steps=1,
        num_generations=group,
        max_k=k,
        advantage_estimator=estimator,
        max_steps=opts.steps,
        learning_rate=opts.lr,
        lr_scheduler_type="constant",
        seed=seed,
    )
    trainer = MaxPOTrainer(path, [reward], args=args, train_dataset=train)
    trainer.remove_callback(PrinterCallback)
    proxies: list[float] = []
    trainer.add_callback(
        harness.step_callback(lambda step, optimizer, **_: proxies.append(adam_variance_proxy(optimizer)))
    )
    with harness.timed() as spent:
        trainer.train()
    second_half = proxies[len(proxies) // 2 :] or proxies
    return trainer.model.eval(), spent["wall"], spent["cpu"], statistics.mean(second_half)


def pass_at_k(model, tokenizer, test, reward, opts) -> dict[int, float]:
    """pass@k of `model` on the held-out prompts, sampled through the library's one path (`_common.scorer`)."""
    from trl_basis.evaluation import evaluate_pass_at_k

    result = evaluate_pass_at_k(
        scorer(model, tokenizer, reward),
        test,
        num_samples=opts.eval_samples,
        seed=opts.eval_seed,
        prompts_per_call=max(1, 128 // opts.eval_samples),
    )
    return result["pass_at_k"]


def plot_pass_at_k(curves: dict[str, list[dict[int, float]]], path) -> None:
    plt = harness.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    ks = sorted(curves["base model"][0])
    base_mean = [statistics.mean(c[k] for c in curves["base model"]) for k in ks]
    for name, runs in curves.items():
        mean = [statistics.mean(c[k] for c in runs) for k in ks]
        std = [statistics.stdev(c[k] for c in runs) if len(runs) > 1 else 0.0 for k in ks]
        for ax, y in ((axes[0], mean), (axes[1], [m - b for m, b in zip(mean, base_mean)])):
            ax.plot(ks, y, marker="o", ms=3, label=name, color=COLORS.get(name))
            if len(runs) > 1:
                harness.band(ax, ks, y, std, color=COLORS.get(name), alpha=0.15)
    for ax, label in ((axes[0], "pass@k"), (axes[1], "pass@k − base model's pass@k")):
        ax.set_xscale("log", base=2)
        ticks = [k for k in (1, 2, 4, 8, 16, 32, 64) if k <= ks[-1]]
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(k) for k in ticks])
        ax.minorticks_off()
        ax.set_xlabel("k")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("pass@k on held-out prompts after equal-compute training (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def crossing(curves: dict, label: str, other: str = "GRPO (grpo)") -> str:
    """The smallest k from which `label`'s seed-mean pass@k stays at or above `other`'s."""
    if label not in curves or other not in curves:
        return "-"
    ks = sorted(curves["base model"][0])
    mean = {name: {k: statistics.mean(c[k] for c in curves[name]) for k in ks} for name in (label, other)}
    above = [mean[label][k] >= mean[other][k] for k in ks]
    if not above[-1]:
        return f"never (below at k = {ks[-1]})"
    first = len(ks) - 1
    while first > 0 and above[first - 1]:
        first -= 1
    return f"k = {ks[first]}" + (" (at or above at every k)" if first == 0 else "")


def pass_notes(curves: dict, ks_show) -> list[str]:
    base = curves["base model"][0]
    lines = [
        f"- Where the curves cross: {label} is at or above GRPO from {crossing(curves, label)} on."
        for label in curves
        if label.startswith("MaxPO")
    ]
    lines.append("- pass@k minus the base model's, seed mean ± standard error:")
    for label, runs in curves.items():
        if label == "base model":
            continue
        cells = []
        for k in ks_show:
            diffs = [c[k] - base[k] for c in runs]
            cells.append(f"pass@{k} {statistics.mean(diffs):+.4f} ± {harness.std_error(diffs):.4f}")
        lines.append(f"  - {label}: " + ", ".join(cells))
    grpo = curves.get("GRPO (grpo)")
    if grpo:
        lines.append(
            "- pass@k minus GRPO's, paired by seed, mean ± standard error (a gap beyond 2 s.e. is a difference):"
        )
        for label, runs in curves.items():
            if not label.startswith("MaxPO") or len(runs) != len(grpo):
                continue
            cells = []
            for k in ks_show:
                diffs = [a[k] - b[k] for a, b in zip(runs, grpo, strict=True)]
                cells.append(f"pass@{k} {statistics.mean(diffs):+.4f} ± {harness.std_error(diffs):.4f}")
            lines.append(f"  - {label}: " + ", ".join(cells))
    return lines


# ---------------------------------------------------------------------------------------------- tables and main
def pass_tables(curves: dict[str, list[dict[int, float]]], runs: list[dict], ks_show: list[int]) -> tuple[str, str]:
    """pass@k at a few k (mean ± s.e. over seeds) with training time and Adam's proxy; seed-mean pass@k at every k."""
    rows = []
    for label, label_curves in curves.items():
        trained = [r for r in runs if r["label"] == label]
        cells = [harness.mean_se([c[k] for c in label_curves], "{:.4f}") for k in ks_show]
        timing = ["-", "-", "-"]  # the base model was not trained
        if trained:
            timing = [f"{statistics.mean(r[key] for r in trained):{fmt}}" for key, fmt in TIMING_COLUMNS]
        rows.append([label, len(label_curves)] + cells + timing)
    headers = ["model", "seeds"] + [f"pass@{k}" for k in ks_show]
    headers += ["train wall s", "train CPU s", "Adam Σ(v̂ − m̂²) (2nd half)"]
    every_k = sorted(curves["base model"][0])
    full_rows = [
        [label] + [f"{statistics.mean(c[k] for c in cs):.4f}" for k in every_k] for label, cs in curves.items()
    ]
    return harness.markdown_table(headers, rows), harness.markdown_table(
        ["model"] + [str(k) for k in every_k], full_rows
    )


def parse(argv: list[str] | None):
    parser = harness.benchmark_parser(__doc__, seeds=True)
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per training run (full: 300)")
    parser.add_argument("--train-prompts-per-step", type=int, default=8)
    parser.add_argument("--group", type=int, default=8, help="B: completions per prompt (training and variance)")
    parser.add_argument("--ks", type=int, nargs="+", default=None, help="K values for the variance (full: 2 4 6)")
    parser.add_argument("--batches", type=int, default=None, help="R: batches for the variance (full: 30)")
    parser.add_argument("--prompts", type=int, default=16, help="prompts per variance batch")
    parser.add_argument("--train-size", type=int, default=None, help="training prompts (full: 1000)")
    parser.add_argument("--eval-prompts", type=int, default=None, help="held-out prompts (full: 200)")
    parser.add_argument("--eval-samples", type=int, default=16)
    parser.add_argument("--eval-seed", type=int, default=1234)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--plot-prefix", default=None, help="write the plots under this prefix (for --no-write)")
    opts = harness.resolve(parser.parse_args(argv), FULL, QUICK)
    if not opts.seeds and not opts.merge:
        parser.error("--seeds with no seed needs --merge")
    if opts.quick:
        opts.prompts = min(opts.prompts, 4)
        opts.train_prompts_per_step = min(opts.train_prompts_per_step, 4)
    return opts


def train_all(opts, world, tokenizer) -> tuple[list[dict], object]:
    """(b): every estimator once per seed, seed-major, and its pass@k; also the first seed's MaxPO K=4 model."""
    _, _, test, reward = world
    checkpoint = []

    def run(seed: int, label: str) -> dict | None:
        estimator, k, group = TRAIN_ESTIMATORS[label]
        if k >= group or (opts.train_prompts_per_step * opts.group) % group:
            return None  # --quick or a custom --group: this K does not fit
        model, wall, cpu, proxy = train_estimator(estimator, k, group, seed, opts, world)
        curve = pass_at_k(model, tokenizer, test, reward, opts)
        if estimator == "l2o" and k == 4 and seed == opts.seeds[0]:
            checkpoint.append(fresh_copy(model))
        return dict(label=label, seed=seed, curve=curve, wall=wall, cpu=cpu, proxy=proxy)

    def describe(r: dict) -> str:
        c = r["curve"]
        return (
            f"{r['label']:16s} train {r['wall']:.1f}s wall / {r['cpu']:.1f}s cpu; pass@1 {c[1]:.4f} "
            f"pass@4 {c[min(4, len(c))]:.4f} pass@{len(c)} {c[len(c)]:.4f}"
        )

    runs = harness.seed_major(opts.seeds, TRAIN_ESTIMATORS, run, describe)
    return runs, checkpoint[0] if checkpoint else None


def int_keys(curve: dict) -> dict[int, float]:
    """A pass@k curve read back from JSON (whose keys are strings)."""
    return {int(k): v for k, v in curve.items()}


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    name = harness.results_name(NAME, opts.world)
    clock = harness.Clock()
    world = tiny_world(num_train=opts.train_size, num_test=opts.eval_prompts, seed=0, world=opts.world)
    _, train, test, reward = world
    runs, variance, base_curve, t_train = [], {}, None, 0.0
    if opts.seeds:
        base, tokenizer = load_tiny(world=opts.world)
        base_curve = pass_at_k(base, tokenizer, test, reward, opts)
        runs, trained = train_all(opts, world, tokenizer)  # (b) first: it trains the checkpoint of (a)
        t_train = clock.elapsed()[0]
        checkpoints = {
            "initial model": base,
            f"MaxPO K=4 (l2o) after {opts.steps} steps, seed {opts.seeds[0]}": trained,
        }
        for label, model in checkpoints.items():
            with harness.timed() as spent:
                variance[label] = gradient_variance(model, tokenizer, train, reward, opts.ks, opts, seed=0)
            rate = variance[label]["pass_rate"]
            print(f"variance at {label}: {spent['wall']:.1f}s, batch pass rate {rate:.3f}", flush=True)
    total = clock.elapsed()[0]
    earlier, extras = harness.merge_runs(opts.merge)
    runs = [dict(r, curve=int_keys(r["curve"])) for r in earlier] + runs
    base_curve = base_curve or int_keys(extras[0]["base"])
    variance = variance or from_json(extras[0]["variance"])  # (a) of this run, else of the first merged file
    opts.seeds = sorted({r["seed"] for r in runs})  # what the tables report, merged runs included
    curves: dict[str, list[dict[int, float]]] = {"base model": [base_curve]}
    for r in runs:
        curves.setdefault(r["label"], []).append(r["curve"])

    ks_show = sorted({1, 2, 4, 8, 16} & set(base_curve))
    pass_table, full_table = pass_tables(curves, runs, ks_show)
    pass_rates = ", ".join(f"{point}: {res['pass_rate']:.3f}" for point, res in variance.items())
    body = (
        f"- whole script: {total / 60:.1f} min wall (training + pass@k {t_train / 60:.1f} min); torch threads "
        f"{opts.threads}; seeds {opts.seeds} (seed-major)\n"
        f"- (a) R = {opts.batches} batches of {opts.prompts} training prompts x B = {opts.group} completions per "
        f"checkpoint, K in {opts.ks}, sampling seed 0, the same samples for every estimator; mean batch pass rate "
        f"{pass_rates}\n"
        f"- (b) {opts.steps} optimizer steps x {opts.train_prompts_per_step * opts.group} completions (B = 8 per "
        f"prompt for K = 4 and GRPO, B = 16 for K = 8; = {opts.steps * opts.train_prompts_per_step * opts.group} "
        "completions per run), "
        f"lr {opts.lr:g} constant, scale_rewards 'none', train set {opts.train_size} prompts; pass@k from "
        f"{opts.eval_samples} samples on {opts.eval_prompts} held-out prompts (evaluation seed {opts.eval_seed})\n"
        "\n## (a) Gradient variance of the max@K estimators (same samples for all)\n\n"
        "Library-scale advantages, g = (1/prompts) Σ A_i ∇log π(y_i|x_i), one g per batch. `tr Cov`: total "
        "variance of one batch's gradient (mean squared distance to the mean gradient, Bessel-corrected); `÷ L2O's`: "
        "ratio to L2O at the same checkpoint and K; `‖mean grad‖`: norm of the mean over the R batches, which "
        "still holds noise (E‖mean‖² = ‖E g‖² + trCov/R); `√(‖mean‖² − trCov/R)`: that noise removed, an estimate "
        "of ‖E g‖ (the same ‖∇max@K‖ for every unbiased estimator); `‖mean − L2O mean‖` and `÷ its noise`: the "
        "distance between the estimator's and L2O's mean gradients over the same batches, divided by its own "
        "standard error √(tr Cov(g − g_L2O)/R): about 1 when the two have the same expectation. GRPO does not depend "
        "on K (its rows repeat, compared with L2O at each K) and estimates ∇pass@1, not ∇max@K.\n\n"
        + variance_table(variance, opts.ks, opts.batches)
        + f"\n\n![gradient variance]({name}_variance.png)\n"
        "\n## (b) pass@k after equal-compute training (mean ± standard error over seeds)\n\n"
        + pass_table
        + "\n\nSeed-mean pass@k for every k:\n\n"
        + full_table
        + f"\n\n![pass@k]({name}_pass_at_k.png)\n"
        + "\n## Reading the numbers\n\n"
        + "\n".join(variance_notes(variance, opts.ks) + pass_notes(curves, ks_show))
        + "\n"
    )
    title = f"Max@K: gradient variance of the estimators, and pass@k after training (world {opts.world!r})"
    harness.write_results(name, title, harness.command_line("max_at_k.py", argv), body, write=harness.writes(opts))
    if opts.dump:  # every run reported here (merged ones included), so that dumps can be merged again
        harness.dump_runs(opts.dump, runs, base=base_curve, variance=to_json(variance))
    plots = {
        "_pass_at_k.png": lambda path: plot_pass_at_k(curves, path),
        "_variance.png": lambda path: plot_variance(variance, opts.ks, path),
    }
    harness.write_plots(harness.plot_prefix(opts, name, fallback=opts.plot_prefix), plots)
    print(f"total {total:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
