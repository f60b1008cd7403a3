"""Max@K: gradient variance of the max@K advantage estimators, and pass@k after equal-compute training.

    python benchmarks/max_at_k.py            # full run, seeds 0 1 2; writes benchmarks/results/max_at_k.md,
                                             #   max_at_k_variance.png and max_at_k_pass_at_k.png
    python benchmarks/max_at_k.py --quick    # seconds: tiny settings, prints only

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
    8 x 8); advantage_scaling "none" (the default); the same number of optimizer steps (300), learning rate (5e-5,
    constant, as in learning_efficiency.py) and train set (1000 prompts of the default task, level 3).
    Then pass@k for k = 1..16 from 16 samples per held-out prompt (`evaluate_pass_at_k`, 200 test prompts,
    evaluation seed 1234), for each trained model and the base model. Seeds 0 1 2, run seed-major (seed 0: all
    estimators, then seed 1, ...), `torch.set_num_threads(1)` by default (the CPU is shared).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings

import torch
from _common import (
    CPU_TRAINING,
    RESULTS_DIR,
    add_world_argument,
    load_tiny,
    results_name,
    set_threads,
    tiny_world,
)
from _harness import markdown_table, write_results

from trl_basis.advantages import GROUP_ESTIMATORS

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
VARIANCE_ESTIMATORS = tuple(GROUP_ESTIMATORS)  # every registered group estimator, the built-ins first


# ---------------------------------------------------------------------------------------------- (a) variance
def estimator_advantages(rewards: torch.Tensor, k: int, name: str) -> torch.Tensor:
    """Library-scale advantages (groups, B) of one registered estimator (`trl_basis.advantages.GROUP_ESTIMATORS`)."""
    from trl_basis.advantages import get_group_estimator

    return get_group_estimator(name)(rewards, k)


def sample_groups(model, tokenizer, examples, reward, group_size: int, max_new_tokens: int):
    """B completions of each prompt: rewards (P, B) and summed completion log-probs (P, B) with a graph.

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


def gradient_variance(model, tokenizer, train, reward, ks, opts, seed: int) -> dict:
    """Statistics of every (estimator, K) over `opts.batches` batches, all estimators on the same samples.

    Per (estimator, K): `trace` (total variance of one batch's gradient), `mean_norm` (norm of the mean gradient),
    `debiased_norm` (sqrt(|mean|^2 - trace/R), an estimate of ‖E g‖ with the noise removed), and, against L2O at the
    same K on the same batches, `dist_l2o` (norm of the difference of the mean gradients), `z_l2o` (that norm over
    its own noise level sqrt(tr Cov(g - g_L2O) / R): about 1 when both have the same expectation) and `cos_l2o`.
    GRPO does not depend on K: it is computed once per batch and compared with L2O at every K.
    """
    model = fresh_copy(model)  # eval mode: no dropout; gradients still flow
    params = [p for p in model.parameters() if p.requires_grad]
    size = sum(p.numel() for p in params)
    keys = [(name, k) for k in ks for name in VARIANCE_ESTIMATORS if name != "grpo"] + [("grpo", None)]
    sums = {key: torch.zeros(size, dtype=torch.float64) for key in keys}
    sq = dict.fromkeys(keys, 0.0)
    diff_sq: dict[tuple, float] = {}  # sum over batches of |g - g_L2O(K)|^2
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    pass_rates = []
    for _ in range(opts.batches):
        rows = torch.randint(len(train), (opts.prompts,), generator=gen).tolist()
        rewards, logps = sample_groups(model, tokenizer, [train[i] for i in rows], reward, opts.group, 8)
        pass_rates.append(rewards.mean().item())
        l2o_flat = {}
        for j, (name, k) in enumerate(keys):
            adv = estimator_advantages(rewards, k if k is not None else 1, name).to(logps.dtype)
            objective = (adv * logps).sum() / opts.prompts
            grads = torch.autograd.grad(objective, params, retain_graph=j < len(keys) - 1)
            flat = torch.cat([g.reshape(-1) for g in grads]).double()
            sums[(name, k)] += flat
            sq[(name, k)] += flat.dot(flat).item()
            if name == "l2o":
                l2o_flat[k] = flat
            for k_ref in [k] if k is not None else ks:
                if name != "l2o":
                    d = flat - l2o_flat[k_ref]
                    diff_sq[(name, k_ref)] = diff_sq.get((name, k_ref), 0.0) + d.dot(d).item()
    r = opts.batches
    means, out = {}, {}
    for key in keys:
        means[key] = sums[key] / r
        mean_sq = means[key].dot(means[key]).item()
        trace = (sq[key] - r * mean_sq) / (r - 1)
        stats = dict(trace=trace, mean_norm=mean_sq**0.5, debiased_norm=max(mean_sq - trace / r, 0.0) ** 0.5)
        for k in [key[1]] if key[1] is not None else ks:
            out[(key[0], k)] = dict(stats)
    for (name, k), stats in out.items():
        if name == "l2o":
            continue
        mean = means[(name, None if name == "grpo" else k)]
        ref = means[("l2o", k)]
        dist_sq = (mean - ref).dot(mean - ref).item()
        diff_trace = (diff_sq[(name, k)] - r * dist_sq) / (r - 1)
        stats["dist_l2o"] = dist_sq**0.5
        stats["z_l2o"] = dist_sq**0.5 / max(diff_trace / r, 1e-300) ** 0.5
        stats["cos_l2o"] = (mean.dot(ref) / (mean.norm() * ref.norm() + 1e-300)).item()
    out["pass_rate"] = statistics.mean(pass_rates)
    return out


def variance_table(results: dict, ks, r: int) -> str:
    rows = []
    for checkpoint, res in results.items():
        for k in ks:
            for name in VARIANCE_ESTIMATORS:
                v = res[(name, k)]
                rows.append(
                    [
                        checkpoint,
                        k,
                        name + (" (∇pass@1)" if name == "grpo" else ""),
                        f"{v['trace']:.4g}",
                        f"{v['trace'] / res[('l2o', k)]['trace']:.3f}",
                        f"{v['mean_norm']:.4g}",
                        f"{v['debiased_norm']:.3g}",
                        f"{v['dist_l2o']:.3g}" if name != "l2o" else "-",
                        f"{v['z_l2o']:.2f}" if name != "l2o" else "-",
                        f"{v['cos_l2o']:.3f}" if name != "l2o" else "-",
                    ]
                )
    headers = [
        "checkpoint",
        "K",
        "estimator",
        "tr Cov (total variance)",
        "÷ L2O's",
        "‖mean grad‖",
        "√(‖mean‖² − trCov/R)",
        "‖mean − L2O mean‖",
        "÷ its noise",
        "cos(mean, L2O mean)",
    ]
    return markdown_table(headers, rows)


def variance_notes(results: dict, ks) -> list[str]:
    lines = []
    unbiased = [n for n in VARIANCE_ESTIMATORS if n != "grpo"]
    for checkpoint, res in results.items():
        ranks = []
        for k in ks:
            order = sorted(unbiased, key=lambda n: res[(n, k)]["trace"])
            ranks.append(f"K={k}: " + " < ".join(order))
        lines.append(f"- {checkpoint}, total variance from lowest to highest: " + "; ".join(ranks) + ".")
    z = [res[(n, k)]["z_l2o"] for res in results.values() for k in ks for n in unbiased if n != "l2o"]
    zg = [res[("grpo", k)]["z_l2o"] for res in results.values() for k in ks]
    lines.append(
        f"- Unbiasedness check: over all checkpoints and K, the PKPO estimators' mean gradients sit "
        f"{min(z):.2f}-{max(z):.2f} standard errors from L2O's (about 1 is expected when the expectations agree); "
        f"GRPO's sits {min(zg):.2f}-{max(zg):.2f} (it targets ∇pass@1)."
    )
    return lines


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
            se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else float("nan")
            cells.append(f"pass@{k} {statistics.mean(diffs):+.4f} ± {se:.4f}")
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
                se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else float("nan")
                cells.append(f"pass@{k} {statistics.mean(diffs):+.4f} ± {se:.4f}")
            lines.append(f"  - {label}: " + ", ".join(cells))
    return lines


# ---------------------------------------------------------------------------------------------- (b) pass@k
def adam_variance_proxy_callback(proxies: list[float]):
    """The MaxPO paper's gradient-variance proxy during training: Adam's bias-corrected second moment minus its
    squared first moment, summed over every parameter, Σ (v̂ − m̂²), recorded after each optimizer step."""
    from transformers import TrainerCallback

    class AdamVarianceProxy(TrainerCallback):
        def on_step_end(self, args, state, control, optimizer=None, **kwargs):
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
            proxies.append(total)

    return AdamVarianceProxy()


def train_estimator(estimator: str, k: int, group: int, seed: int, opts, world):
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
    trainer.add_callback(adam_variance_proxy_callback(proxies))
    w0, c0 = time.perf_counter(), time.process_time()
    trainer.train()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    second_half = proxies[len(proxies) // 2 :] or proxies
    return trainer.model.eval(), wall, cpu, statistics.mean(second_half)


def pass_at_k(model, tokenizer, test, reward, opts) -> dict[int, float]:
    from trl_basis.evaluation import evaluate_pass_at_k

    rng = torch.get_rng_state()
    result = evaluate_pass_at_k(
        model,
        tokenizer,
        test,
        reward,
        num_samples=opts.eval_samples,
        max_new_tokens=8,
        seed=opts.eval_seed,
        progress=False,
        batch_size=128,
    )
    torch.set_rng_state(rng)
    return result["pass_at_k"]


def plot_pass_at_k(curves: dict[str, list[dict[int, float]]], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    base = curves["base model"]
    ks = sorted(base[0])
    base_mean = [statistics.mean(c[k] for c in base) for k in ks]
    for name, runs in curves.items():
        mean = [statistics.mean(c[k] for c in runs) for k in ks]
        std = [statistics.stdev(c[k] for c in runs) if len(runs) > 1 else 0.0 for k in ks]
        for ax, y in ((axes[0], mean), (axes[1], [m - b for m, b in zip(mean, base_mean)])):
            ax.plot(ks, y, marker="o", ms=3, label=name, color=COLORS.get(name))
            if len(runs) > 1:
                ax.fill_between(
                    ks,
                    [a - s for a, s in zip(y, std)],
                    [a + s for a, s in zip(y, std)],
                    alpha=0.15,
                    color=COLORS.get(name),
                )
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


def plot_variance(results: dict, ks, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.2), squeeze=False)
    width = 0.8 / len(VARIANCE_ESTIMATORS)
    for ax, (checkpoint, res) in zip(axes[0], results.items()):
        for j, name in enumerate(VARIANCE_ESTIMATORS):
            values = [res[(name, k)]["trace"] for k in ks]
            ax.bar(
                [i + (j - (len(VARIANCE_ESTIMATORS) - 1) / 2) * width for i in range(len(ks))],
                values,
                width,
                label=name,
            )
        ax.set_xticks(range(len(ks)))
        ax.set_xticklabels([f"K = {k}" for k in ks])
        ax.set_yscale("log")
        ax.set_ylabel("total gradient variance tr Cov")
        ax.set_title(f"{checkpoint} (batch pass rate {res['pass_rate']:.2f})")
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny settings (CI smoke test); writes nothing")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
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
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help="print only, even for a full run")
    add_world_argument(parser)
    parser.add_argument("--plot-prefix", default=None, help="write the plots under this prefix (for --no-write)")
    opts = parser.parse_args(argv)
    quick = opts.quick
    defaults = dict(
        steps=3 if quick else 300,
        ks=[2, 4] if quick else [2, 4, 6],
        batches=3 if quick else 30,
        train_size=64 if quick else 1000,
        eval_prompts=8 if quick else 200,
        seeds=[0] if quick else [0, 1, 2],
    )
    for key, value in defaults.items():
        if getattr(opts, key) is None:
            setattr(opts, key, value)
    if quick:
        opts.prompts = min(opts.prompts, 4)
        opts.train_prompts_per_step = min(opts.train_prompts_per_step, 4)
    set_threads(opts.threads)
    command = "python benchmarks/max_at_k.py" + "".join(" " + a for a in (argv if argv is not None else sys.argv[1:]))
    start = time.perf_counter()

    world = tiny_world(num_train=opts.train_size, num_test=opts.eval_prompts, seed=0, world=opts.world)
    _, train, test, reward = world
    base, tokenizer = load_tiny(world=opts.world)

    # (b) first: it produces the trained checkpoint for (a).
    curves: dict[str, list[dict[int, float]]] = {"base model": [pass_at_k(base, tokenizer, test, reward, opts)]}
    times: dict[str, list[tuple[float, float]]] = {}
    proxies: dict[str, list[float]] = {}  # Adam's Σ(v̂ − m̂²), mean over the second half of each run
    trained_checkpoint = None
    for seed in opts.seeds:
        for label, (estimator, k, group) in TRAIN_ESTIMATORS.items():
            if k >= group or (opts.train_prompts_per_step * opts.group) % group:
                continue  # --quick or a custom --group: this K does not fit
            model, wall, cpu, proxy = train_estimator(estimator, k, group, seed, opts, world)
            proxies.setdefault(label, []).append(proxy)
            curve = pass_at_k(model, tokenizer, test, reward, opts)
            curves.setdefault(label, []).append(curve)
            times.setdefault(label, []).append((wall, cpu))
            if estimator == "l2o" and k == 4 and seed == opts.seeds[0]:
                trained_checkpoint = fresh_copy(model)
            print(
                f"seed {seed} {label:16s} train {wall:.1f}s wall / {cpu:.1f}s cpu; pass@1 {curve[1]:.4f} "
                f"pass@4 {curve[min(4, len(curve))]:.4f} pass@{len(curve)} {curve[len(curve)]:.4f}",
                flush=True,
            )
    t_train = time.perf_counter() - start

    # (a) gradient variance at the initial model and the seed-0 MaxPO model.
    checkpoints = {
        "initial model": base,
        f"MaxPO K=4 (l2o) after {opts.steps} steps, seed {opts.seeds[0]}": trained_checkpoint,
    }
    variance: dict[str, dict] = {}
    for name, model in checkpoints.items():
        w0 = time.perf_counter()
        variance[name] = gradient_variance(model, tokenizer, train, reward, opts.ks, opts, seed=0)
        print(
            f"variance at {name}: {time.perf_counter() - w0:.1f}s, batch pass rate {variance[name]['pass_rate']:.3f}",
            flush=True,
        )
    total = time.perf_counter() - start

    # Tables.
    ks_show = sorted({1, 2, 4, 8, 16} & set(curves["base model"][0]))
    headers = (
        ["model", "seeds"]
        + [f"pass@{k}" for k in ks_show]
        + ["train wall s", "train CPU s", "Adam Σ(v̂ − m̂²) (2nd half)"]
    )
    rows = []
    for label, runs in curves.items():
        cells = []
        for k in ks_show:
            vals = [c[k] for c in runs]
            cells.append(
                f"{statistics.mean(vals):.4f}"
                + (f" ± {statistics.stdev(vals) / len(vals) ** 0.5:.4f}" if len(vals) > 1 else "")
            )
        t = times.get(label)
        rows.append(
            [label, len(runs)]
            + cells
            + (
                [
                    f"{statistics.mean(w for w, _ in t):.0f}",
                    f"{statistics.mean(c for _, c in t):.0f}",
                    f"{statistics.mean(proxies[label]):.4g}",
                ]
                if t
                else ["-", "-", "-"]
            )
        )
    pass_table = markdown_table(headers, rows)
    full_rows = [
        [label] + [f"{statistics.mean(c[k] for c in runs):.4f}" for k in sorted(curves["base model"][0])]
        for label, runs in curves.items()
    ]
    full_table = markdown_table(["model"] + [str(k) for k in sorted(curves["base model"][0])], full_rows)
    var_table = variance_table(variance, opts.ks, opts.batches)
    pass_rates = ", ".join(f"{name}: {res['pass_rate']:.3f}" for name, res in variance.items())

    body = (
        f"- whole script: {total / 60:.1f} min wall (training + pass@k {t_train / 60:.1f} min); torch threads "
        f"{opts.threads}; seeds {opts.seeds} (seed-major)\n"
        f"- (a) R = {opts.batches} batches of {opts.prompts} training prompts x B = {opts.group} completions per "
        f"checkpoint, K in {opts.ks}, sampling seed 0, the same samples for every estimator; mean batch pass rate "
        f"{pass_rates}\n"
        f"- (b) {opts.steps} optimizer steps x {opts.train_prompts_per_step * opts.group} completions (B = 8 per "
        f"prompt for K = 4 and GRPO, B = 16 for K = 8; = {opts.steps * opts.train_prompts_per_step * opts.group} "
        "completions per run), "
        f"lr {opts.lr:g} constant, advantage_scaling 'none', train set {opts.train_size} prompts; pass@k from "
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
        + var_table
        + f"\n\n![gradient variance]({results_name(NAME, opts.world)}_variance.png)\n"
        "\n## (b) pass@k after equal-compute training (mean ± standard error over seeds)\n\n"
        + pass_table
        + "\n\nSeed-mean pass@k for every k:\n\n"
        + full_table
        + f"\n\n![pass@k]({results_name(NAME, opts.world)}_pass_at_k.png)\n"
        + "\n## Reading the numbers\n\n"
        + "\n".join(variance_notes(variance, opts.ks) + pass_notes(curves, ks_show))
        + "\n"
    )
    write = not (quick or opts.no_write)
    write_results(
        results_name(NAME, opts.world),
        f"Max@K: gradient variance of the estimators, and pass@k after training (world {opts.world!r})",
        command.strip(),
        body,
        write=write,
    )
    prefix = str(RESULTS_DIR / results_name(NAME, opts.world)) if write else opts.plot_prefix
    if prefix:
        plot_pass_at_k(curves, prefix + "_pass_at_k.png")
        plot_variance(variance, opts.ks, prefix + "_variance.png")
        print(f"wrote {prefix}_pass_at_k.png and {prefix}_variance.png")
    print(f"total {total:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
