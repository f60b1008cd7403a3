"""Value-estimation MSE of BASIS's baselines against REINFORCE++ and group means (BASIS paper, Figs. 2-3).

    python benchmarks/value_mse.py            # full run, writes benchmarks/results/value_mse.{md,png}
    python benchmarks/value_mse.py --quick    # CI smoke test: tiny settings, prints only (plot to a tmp dir)
    python benchmarks/value_mse.py --world mixed   # the mixed world; writes value_mse_mixed.{md,png}
    python benchmarks/value_mse.py --seed 1 --no-write --dump s1.json   # one seed's raw results, then
    python benchmarks/value_mse.py --merge s0.json s1.json             #   their means ± s.e. over seeds

What it does (full settings in brackets; every seed is derived from `--seed`, default 0):

1. Train `BASISTrainer` on the tiny world (default arithmetic task, level 3, `make_arithmetic_dataset(seed=0)`,
   1000 training prompts, `arithmetic_reward`): 64 prompts x 1 completion per step, lr 5e-5 (constant; the main
   job's, where BASIS learns: held-out pass@1 0.38 -> 0.52), trainer seed 0, [200] steps. The trainer's offline
   stage samples N = 8 reference rewards per prompt from the INITIAL model and drops the prompts whose 8 rewards are
   all equal. The weights are copied at the checkpoints [0, 50, 100, 200], and every (prompt, reward) the run
   observed is recorded, in order, for SPO's tracker.
2. Fix P [= 256] of the kept training prompts (drawn with seed `--seed`) and their reference rewards.
3. At each checkpoint sample M [= 144] completions per prompt (`sample_rewards`, temperature 1, seed
   `--seed + step`).
4. Draw [400] random batches of B = 64 of the P prompts (generator seed `--seed`, the same batches at every
   checkpoint). In each batch every prompt's M samples are shuffled: the first is its rollout r_i, the next
   8 are the fresh samples of the group means, and the other M - 9 [= 135] give the "true" value of the prompt,
   independent of everything the estimators see. Estimators of each prompt's value, all on the same batch:

   * REINFORCE++: the leave-one-out batch mean of the other rollouts, sum_{j != i} r_j / (B - 1);
   * group mean, G = 2, 4, 8: the mean of G fresh samples of the same prompt;
   * BASIS initial: clamp(v_i(beta_t), 0, 1) at the beta_t calibrated on the batch (normal mode, zero fallback,
     the trainer's default);
   * BASIS refined b_i(beta_t), fallback zero / initial, normal / exact calibration (`calibrate_beta`, default
     grid of 230 betas on [0.01, 5], epsilon 1e-3);
   * SPO's tracker (arXiv 2509.13232): the Beta tracker of the prompt, started from the same N = 8 reference
     rewards and updated (constant discount `_methods.SPO_DISCOUNT`) with every reward the BASIS run observed for that
     prompt before the checkpoint: what an SPO tracker riding along that run would predict;
   * BASIS refined + own history (`basis_history`, ALGORITHMS.md §1e): the refined baseline (fallback zero,
     normal) blended with the discounted counts of the rewards the run observed for the prompt before the
     checkpoint, the batch baseline worth w = N = 8 observations.

   (The estimators and the replays of the run's rewards are `_value_estimators.py`.) The reported MSE is the mean over all (batch, prompt) entries of (estimate - truth)^2 minus the sampling variance
   of the truth (its unbiased estimate s^2 / (M - 9) per entry), so that it estimates E[(estimate - value)^2].

The policy's mean reward on the P prompts is the mean of all M samples. "Delta vs G=8" is MSE(BASIS refined,
zero, normal) - MSE(group mean G = 8) with +-2 standard errors over batches (batches share prompts, so this
understates the uncertainty from the choice of the P prompts).

The plot has two panels: the MSE per checkpoint, and the beta_t the trainer calibrated at every step (the paper's
Fig. 7 starts at the top of the grid and settles near 0.4).

Runs on CPU with `--threads` torch threads (default 1: on a shared, loaded 2-core machine two threads were up to
10x slower per training step). Full run: about 10 minutes on a 2-core machine.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import _harness as harness
import torch
from _common import CPU_TRAINING, load_tiny, scorer, tiny_world
from _value_estimators import (
    ESTIMATORS,
    GROUP_SIZES,
    evaluate_batches,
    history_counts,
    spo_values,
    window_rows,
    window_table,
)

from trl_basis.advantages import prompt_key

LEARNING_RATE = 5e-5
FULL = dict(
    num_train=1000, steps=200, checkpoints=[0, 50, 100, 200], prompts=256, samples=144, batches=400, batch_size=64
)
QUICK = dict(num_train=96, steps=2, checkpoints=[0, 2], prompts=16, samples=16, batches=4, batch_size=8)
#: (estimator key, column label) of the per-checkpoint table's MSE changes relative to REINFORCE++.
REDUCTIONS = [
    ("initial", "initial"),
    ("refined_zero", "refined zero"),
    ("refined_initial", "refined initial"),
    ("refined_zero_exact", "refined zero exact"),
    ("refined_initial_exact", "refined initial exact"),
    ("spo", "SPO tracker"),
    ("refined_history", "refined + history"),
    ("rolling", "rolling"),
    ("online", "online"),
]


# ----------------------------------------------------------------------------------------------- training
def train_and_snapshot(cfg: dict, seed: int, workdir: str):
    """Train BASIS; ({step: state_dict}, the trainer's filtered train dataset, its beta_t per step, and the
    (step, prompt key, reward) of every rollout it scored)."""
    from trl_basis import BASISConfig, BASISTrainer

    observed: list[tuple[int, str, float]] = []  # (step, prompt key, reward) of every rollout the run scored

    class RecordingBASISTrainer(BASISTrainer):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self._estimator_columns = (self.args.reference_rewards_column, "prompt")

        def _compute_advantages(self, rewards, batch):
            step = self.state.global_step
            for prompt, r in zip(batch.columns["prompt"], rewards.tolist(), strict=True):
                observed.append((step, prompt_key(prompt), r))
            return super()._compute_advantages(rewards, batch)

    model_path, train, _, reward = tiny_world(num_train=cfg["num_train"], num_test=8, seed=0, world=cfg["world"])
    wanted = set(cfg["checkpoints"])
    snapshots: dict[int, dict[str, torch.Tensor]] = {}

    def snapshot(step: int, model, **_) -> None:
        snapshots[step] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    config = BASISConfig(
        **CPU_TRAINING,
        output_dir=str(Path(workdir) / "train"),
        per_device_train_batch_size=cfg["batch_size"],
        gradient_accumulation_steps=1,  # one optimizer step = one generation batch of B prompts x 1 completion
        max_steps=cfg["steps"],
        learning_rate=LEARNING_RATE,
        lr_scheduler_type="constant",
        seed=seed,
        reference_cache_dir=None,  # sample the reference rewards every run: the run is self-contained
    )
    trainer = RecordingBASISTrainer(
        model_path,
        [reward],
        args=config,
        train_dataset=train,
        callbacks=[harness.step_callback(snapshot, lambda step: step in wanted, begin=0 in wanted)],
    )
    trainer.train()
    missing = wanted - set(snapshots)
    if missing:
        raise RuntimeError(f"no snapshot at steps {sorted(missing)} (trained {trainer.state.global_step} steps)")
    return snapshots, trainer.train_dataset, list(trainer._estimator_state["temperature"]), observed


def drift_diagnostics(means: dict[int, torch.Tensor], noise: dict[int, torch.Tensor], step: int) -> dict[str, float]:
    """How far the per-prompt values moved since the first checkpoint, and what one drift factor can explain.

    drift = mean_i (p_i(t) - p_i(0))^2; floor = min_c mean_i (p_i(t) - c p_i(0))^2, both noise-corrected. The
    floor is the error of the best estimator of the form c * v_i with v_i the EXACT initial value and c fitted with
    hindsight: BASIS's refined estimator models E[r_i] = c v_i, so per-prompt changes beyond one factor remain in its
    error whatever the batch.
    """
    first = min(means)
    p0, pt, n0, nt = means[first], means[step], noise[first], noise[step]
    if step == first:
        return {"drift": 0.0, "floor": 0.0, "factor": 1.0}
    drift = ((pt - p0).square() - nt - n0).mean().item()
    c = ((pt * p0).sum() / (p0.square() - n0).sum()).item()  # least squares, corrected for the noise in p0
    floor = ((pt - c * p0).square() - nt - c * c * n0).mean().item()
    return {"drift": drift, "floor": floor, "factor": c}


# ----------------------------------------------------------------------------------------------- report
def report(results: dict[int, dict], train_betas: list[float], cfg: dict, meta: dict) -> str:
    steps = sorted(results)
    table1 = harness.markdown_table(
        ["estimator"] + [f"MSE, step {s}" for s in steps],
        [[label] + [results[s]["mse"][key] for s in steps] for key, label, _ in ESTIMATORS],
    )

    def reduction(s: int, key: str) -> str:
        base = results[s]["mse"]["loo"]
        return f"{100 * (results[s]['mse'][key] - base) / base:+.1f}%"

    rows = []
    for s in steps:
        res = results[s]
        near = train_betas[max(0, s - 5) : s] if s > 0 else []
        rows.append(
            [s, res["pass_rate"], res["drift"], res["floor"], res["beta"], res["beta_exact"]]
            + [sum(near) / len(near) if near else "-", res["active"]]
            + [reduction(s, key) for key, _ in REDUCTIONS]
            + [f"{res['delta_g8']:+.4f} ± {2 * res['delta_g8_se']:.4f}"]
            + ["yes" if res["mse"]["refined_zero"] < res["mse"]["group8"] else "no"]
        )
    headers = ["step", "mean reward", "value drift since step 0", "one-factor floor", "mean temperature β_t"]
    headers += ["mean temperature β_t (exact)", "train temperature β_t (last 5 steps)", "active fraction"]
    headers += [f"{label} vs R++" for _, label in REDUCTIONS] + ["Delta vs G=8 (±2SE)", "refined zero < G=8"]
    table2 = harness.markdown_table(headers, rows)
    setup = (
        f"Tiny world {cfg['world']!r}; BASIS trained {cfg['steps']} steps x {cfg['batch_size']} prompts x 1 "
        f"completion, lr {LEARNING_RATE:g} constant, seed {meta['seed']}. {meta['kept']} of {cfg['num_train']} training prompts "
        f"kept by the constant-reference filter (N = 8 reference rewards from the initial model); P = "
        f"{cfg['prompts']} of them, M = {cfg['samples']} samples per prompt and checkpoint (1 rollout + "
        f"{max(GROUP_SIZES)} group samples + {cfg['samples'] - 1 - max(GROUP_SIZES)} for the true value), "
        f"{cfg['batches']} batches of B = {cfg['batch_size']}. MSE is noise-corrected (see the script's docstring). "
        f"Run time {meta['seconds'] / 60:.1f} min wall, {meta['cpu_seconds'] / 60:.1f} min CPU (training, offline stage "
        f"included, {meta['train_seconds'] / 60:.1f} min wall / {meta['train_cpu_seconds'] / 60:.1f} min CPU; sampling "
        f"{meta['sample_seconds'] / 60:.1f} min wall) with {meta['threads']} torch thread(s)."
    )
    later = [s for s in steps if s > 0] or steps
    mean_red = sum(
        100 * (results[s]["mse"]["refined_zero"] - results[s]["mse"]["loo"]) / results[s]["mse"]["loo"] for s in later
    ) / len(later)
    below = sum(results[s]["mse"]["refined_zero"] < results[s]["mse"]["group8"] for s in steps)
    below_spo = sum(results[s]["mse"]["refined_zero"] < results[s]["mse"]["spo"] for s in steps)
    hist_below = sum(results[s]["mse"]["refined_history"] < results[s]["mse"]["group8"] for s in steps)
    roll_below = sum(results[s]["mse"]["rolling"] < results[s]["mse"]["group8"] for s in steps)
    online_below = sum(results[s]["mse"]["online"] < results[s]["mse"]["group8"] for s in steps)
    step0 = steps[0]
    ratio0 = results[step0]["mse"]["refined_zero"] / results[step0]["mse"]["loo"]
    tail = [sum(train_betas[i : i + 20]) / len(train_betas[i : i + 20]) for i in (0, max(0, len(train_betas) - 20))]
    summary = (
        f"\n\nSummary: BASIS refined (fallback zero, normal calibration; the trainer's default) changes the MSE by "
        f"{mean_red:+.1f}% vs REINFORCE++ on average over the checkpoints after step 0 (paper: -69%), is below "
        f"the group mean with G = 8 at {below} of {len(steps)} checkpoints (paper: below), and below SPO's tracker "
        f"at {below_spo} of {len(steps)}. With its own history (basis_history, §1e) BASIS is below G = 8 at "
        f"{hist_below} of {len(steps)} checkpoints, with rolling values (§1f) at {roll_below} of {len(steps)}, with "
        f"online values at {online_below} of {len(steps)}. At step {step0} BASIS refined's MSE is {ratio0:.2f}x "
        f"REINFORCE++'s (paper: 0.31x). The trainer's temperature β_t averaged {tail[0]:.2f} over its first 20 steps and "
        f"{tail[1]:.2f} over its last 20 (paper: from the top of the grid down to about 0.4).\n\n"
        "Columns: *value drift since step 0* = mean_i (p_i(t) - p_i(0))^2 over the P prompts (p = pass rate from "
        "the M samples, noise-corrected); *one-factor floor* = min_c mean_i (p_i(t) - c p_i(0))^2, the error that "
        "remains for an estimator c * v_i with the EXACT initial values and the best drift factor c: BASIS models "
        "E[r_i] = c v_i, so per-prompt changes beyond one factor stay in its error. *train temperature β_t* is the mean temperature "
        "the trainer calibrated on its own batches over the 5 steps before the checkpoint. With every kept prompt "
        "strictly between 0 and 1 in its reference rewards, the active set holds all rows unless beta_t is small, and "
        "the two fallbacks then coincide."
    )
    return (
        setup
        + summary
        + "\n\n## MSE against the true value\n\n"
        + table1
        + "\n\n## Per checkpoint (reductions are relative MSE changes vs REINFORCE++; negative is better)\n\n"
        + table2
    )


def plot(results: dict[int, dict], train_betas: list[float], path: str, over: str = "") -> None:
    plt = harness.pyplot()
    steps = sorted(results)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(15, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    for key, label, style in ESTIMATORS:
        ax.plot(steps, [results[s]["mse"][key] for s in steps], style, label=label)
    ax.set_xlabel("training step (BASIS checkpoint)")
    ax.set_ylabel("MSE against the true value")
    ax.set_yscale("log")
    ax.set_title(f"Value-estimation MSE, tiny model, B = 64 prompts x 1 rollout{over}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    x = list(range(1, len(train_betas) + 1))
    window = 20
    smooth = [
        sum(train_betas[max(0, i - window + 1) : i + 1]) / len(train_betas[max(0, i - window + 1) : i + 1])
        for i in range(len(train_betas))
    ]
    bx.plot(x, train_betas, color="C3", alpha=0.3, lw=0.8, label="temperature β_t")
    bx.plot(x, smooth, color="C3", lw=2, label=f"moving average ({window} steps)")
    bx.axhline(0.4, color="gray", ls="--", lw=1, label="paper: settles near 0.4")
    bx.set_yscale("log")
    bx.set_xlabel("training step")
    bx.set_ylabel("temperature β_t (calibrated each step)")
    bx.set_title("BASIS temperature β_t during the run" + (" (first seed)" if over else ""))
    bx.grid(alpha=0.3)
    bx.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def seeds_report(runs: list[dict]) -> str:
    """Mean ± s.e. over the seeds of `runs` (`--dump` files): the MSE of every estimator at every checkpoint, and the
    issue-19 goals read from it (step-0 ratio to REINFORCE++; current values below G = 8 at every checkpoint)."""
    steps = sorted(runs[0]["results"], key=int)
    mse = lambda run, step, key: run["results"][step]["mse"][key]  # noqa: E731
    table = harness.markdown_table(
        ["estimator"] + [f"MSE, step {s} (mean ± s.e.)" for s in steps],
        [
            [label] + [harness.mean_se([mse(r, s, key) for r in runs], "{:.4f}") for s in steps]
            for key, label, _ in ESTIMATORS
        ],
    )
    ratio0 = [mse(r, steps[0], "refined_zero") / mse(r, steps[0], "loo") for r in runs]
    later = [s for s in steps if int(s) > 0]
    reduction = [statistics.mean(mse(r, s, "refined_zero") / mse(r, s, "loo") - 1 for s in later) for r in runs]

    def signed(values: list[float], fmt: str = "{:+.4f}") -> str:
        return f"{fmt.format(statistics.mean(values))} ± {fmt.format(harness.std_error(values)).lstrip('+')}"

    lines = [
        f"- step-{steps[0]} MSE of BASIS refined (the paper's estimator) ÷ REINFORCE++'s: "
        f"{harness.mean_se(ratio0, '{:.2f}')} (goal ≤ 0.31, the paper's −69%); mean change over the later "
        f"checkpoints {signed([100 * x for x in reduction], '{:+.0f}')}%",
    ]
    for key, name in (
        ("refined_zero", "reference (paper)"),
        ("refined_history", "history"),
        ("rolling", "rolling"),
        ("online", "online"),
    ):
        diffs = {s: [mse(r, s, key) - mse(r, s, "group8") for r in runs] for s in steps}
        every = sum(all(mse(r, s, key) < mse(r, s, "group8") for s in steps) for r in runs)
        per_step = ", ".join(f"{s}: {signed(diffs[s])}" for s in steps)
        lines.append(
            f"- `basis_values={name.split()[0]}` minus the G = 8 group mean, per checkpoint: {per_step}; below G = 8 "
            f"at every checkpoint in {every} of {len(runs)} seeds"
        )
    return (
        f"## Over {len(runs)} seeds ({', '.join(str(r['seed']) for r in runs)}): MSE mean ± standard error\n\n"
        "Each seed trains its own BASIS run (its own offline stage, kept prompts, P prompts and batches).\n\n"
        + table
        + "\n\n"
        + "\n".join(lines)
    )


def merge(opts, argv) -> None:
    """Report the `--merge` files together: the seeds table first, then the first seed in detail."""
    runs, extras = harness.merge_runs(opts.merge)
    runs.sort(key=lambda run: run["seed"])
    cfg, first = extras[0]["cfg"], runs[0]
    for run in runs:  # JSON keys are strings; the detailed report and the plot want integer steps
        run["results"] = {int(step): res for step, res in run["results"].items()}
    detail = report(first["results"], first["train_betas"], cfg, first["meta"])
    for run in runs:
        run["results"] = {str(step): res for step, res in run["results"].items()}
    body = seeds_report(runs) + f"\n\n## Seed {first['seed']} in detail\n\n" + detail
    name = harness.results_name("value_mse", cfg["world"])
    title = f"Value-estimation MSE (BASIS paper, Figs. 2-3), world {cfg['world']!r}"
    harness.write_results(name, title, harness.command_line("value_mse.py", argv), body, write=harness.writes(opts))
    steps = sorted(first["results"], key=int)
    means = {
        int(s): {"mse": {k: statistics.mean(r["results"][s]["mse"][k] for r in runs) for k, _, _ in ESTIMATORS}}
        for s in steps
    }
    prefix = harness.plot_prefix(opts, name)
    harness.write_plots(
        prefix, {".png": lambda path: plot(means, first["train_betas"], path, f" (mean of {len(runs)} seeds)")}
    )


# ----------------------------------------------------------------------------------------------- main
def parse(argv: list[str] | None):
    parser = harness.benchmark_parser(__doc__)
    parser.add_argument("--seed", type=int, default=0, help="every seed of the run derives from it")
    parser.add_argument("--num-train", type=int, default=None, help="training prompts (full: 1000)")
    parser.add_argument("--steps", type=int, default=None, help="BASIS training steps (full: 200)")
    parser.add_argument(
        "--checkpoints", type=lambda s: [int(x) for x in s.split(",")], default=None, help="full: 0,50,100,200"
    )
    parser.add_argument("--prompts", type=int, default=None, help="P (full: 256)")
    parser.add_argument("--samples", type=int, default=None, help="M per prompt and checkpoint (full: 144)")
    parser.add_argument("--batches", type=int, default=None, help="full: 400")
    parser.add_argument("--batch-size", type=int, default=None, help="B (full: 64)")
    parser.add_argument("--dump", default=None, help="also write this seed's raw results as JSON (for --merge)")
    parser.add_argument(
        "--merge", nargs="+", default=None, help="--dump files of runs with other seeds: report them together"
    )
    opts = harness.resolve(parser.parse_args(argv), FULL, QUICK)
    if opts.samples < 1 + max(GROUP_SIZES) + 2:
        parser.error(f"--samples must be >= {3 + max(GROUP_SIZES)}")
    return opts


def sample_checkpoints(snapshots, prompts, cfg: dict, seed: int) -> dict[int, torch.Tensor]:
    """M rewards of every prompt at every checkpoint (P, M), sampling seed `seed + step`."""
    from trl_basis.evaluation import sample_rewards
    from trl_basis.tasks import arithmetic_reward

    model, tokenizer = load_tiny(world=cfg["world"])
    sampler = scorer(model, tokenizer, arithmetic_reward)  # the library's one sampling path, on each checkpoint
    rewards = {}
    for step in sorted(snapshots):
        model.load_state_dict(snapshots[step])
        rewards[step] = sample_rewards(sampler, prompts, cfg["samples"], prompts_per_call=16, seed=seed + step)
        if torch.isnan(rewards[step]).any():
            raise RuntimeError("arithmetic_reward returned None")
    return rewards


def main(argv: list[str] | None = None) -> dict[int, dict] | None:
    opts = parse(argv)
    if opts.merge:
        return merge(opts, argv)
    cfg = {key: getattr(opts, key) for key in FULL} | {"world": opts.world}
    with harness.timed() as total:
        with harness.timed() as training, tempfile.TemporaryDirectory() as workdir:
            snapshots, kept, train_betas, observed = train_and_snapshot(cfg, opts.seed, workdir)
        if len(kept) < cfg["prompts"]:
            raise SystemExit(f"only {len(kept)} prompts kept by the filter; need --prompts {cfg['prompts']}")
        pick = torch.randperm(len(kept), generator=torch.Generator().manual_seed(opts.seed))[: cfg["prompts"]]
        prompts = kept.select(pick.tolist())
        refs = torch.tensor(prompts["reference_rewards"], dtype=torch.float64)
        keys = [prompt_key(p) for p in prompts["prompt"]]
        gen = torch.Generator().manual_seed(opts.seed + 1)
        batch_indices = [
            torch.randperm(cfg["prompts"], generator=gen)[: cfg["batch_size"]] for _ in range(cfg["batches"])
        ]
        with harness.timed() as sampling:
            sampled = sample_checkpoints(snapshots, prompts, cfg, opts.seed)
        results: dict[int, dict] = {}
        means: dict[int, torch.Tensor] = {}  # per-prompt mean reward of the M samples at each checkpoint
        noise: dict[int, torch.Tensor] = {}  # its sampling variance (unbiased estimate)
        for step, rewards in sampled.items():
            res = evaluate_batches(
                rewards,
                refs,
                batch_indices,
                seed=opts.seed + 2,
                spo=spo_values(refs, keys, observed, step),
                history=history_counts(keys, observed, step),
                windows={
                    "rolling": window_table(window_rows(keys, observed, step, refs.tolist(), refs.shape[1]), 2),
                    "online": window_table(window_rows(keys, observed, step, [[] for _ in keys], refs.shape[1]), 2),
                },
            )
            res["pass_rate"] = rewards.mean().item()
            means[step], noise[step] = rewards.mean(dim=1), rewards.var(dim=1) / rewards.shape[1]
            res.update(drift_diagnostics(means, noise, step))
            results[step] = res
            print(
                f"step {step}: mean reward {res['pass_rate']:.3f}, temperature {res['beta']:.3f}, "
                + ", ".join(f"{k} {v:.4f}" for k, v in res["mse"].items()),
                flush=True,
            )
    meta = dict(
        seed=opts.seed,
        kept=len(kept),
        seconds=total["wall"],
        cpu_seconds=total["cpu"],
        train_seconds=training["wall"],
        train_cpu_seconds=training["cpu"],
        sample_seconds=sampling["wall"],
        threads=torch.get_num_threads(),
    )
    if opts.dump:
        run = dict(seed=opts.seed, results=results, train_betas=train_betas, meta=meta)
        harness.dump_runs(opts.dump, [run], cfg=cfg)
    name = harness.results_name("value_mse", opts.world)
    title = f"Value-estimation MSE (BASIS paper, Figs. 2-3), world {opts.world!r}"
    body = report(results, train_betas, cfg, meta)
    harness.write_results(name, title, harness.command_line("value_mse.py", argv), body, write=harness.writes(opts))
    # A run that writes no results still draws its plot, into a temporary folder (the smoke test covers it).
    scratch = None if harness.writes(opts) else Path(tempfile.mkdtemp(prefix="value_mse_")) / "value_mse"
    prefix = harness.plot_prefix(opts, name, fallback=scratch)
    harness.write_plots(prefix, {".png": lambda path: plot(results, train_betas, path)})
    return results


if __name__ == "__main__":
    main()
