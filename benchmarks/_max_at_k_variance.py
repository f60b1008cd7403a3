"""Part (a) of `max_at_k.py`: the gradient variance of the max@K advantage estimators on the same samples.

What it measures and how is in `max_at_k.py`'s docstring; this module holds the measurement, its table, its reading
and its plot, and turns its results into JSON and back (`--dump` / `--merge`).
"""

from __future__ import annotations

import statistics
from types import SimpleNamespace

import _harness as harness
import torch
from _common import fresh_copy, sample_groups_with_logprobs, scorer

from trl_basis.advantages import ESTIMATORS, EstimatorBatch, estimator_names

#: Every registered group estimator, the built-ins first, except `rloo`: it is L2O at K = 1, whatever K the table
#: compares (GRPO stays in, once, as the pass@1 baseline).
VARIANCE_ESTIMATORS = tuple(name for name in estimator_names(group=True) if name != "rloo")


def library_advantages(name: str, rewards: torch.Tensor, k: int) -> torch.Tensor:
    """Library-scale advantages (groups, B) of a registered group estimator: its trainer-scale output / B, unscaled."""
    groups, size = rewards.shape
    args = SimpleNamespace(max_k=k, max_k_final=None, scale_rewards="none")
    batch = EstimatorBatch(rewards.reshape(-1, 1), group_size=size)
    advantages, _ = ESTIMATORS[name].fn(rewards.reshape(-1), batch, {}, args)
    return advantages.view(groups, size) / size


def gradient_variance(model, tokenizer, train, reward, ks, opts, seed: int) -> dict:
    """Statistics of every (estimator, K) over `opts.batches` batches, all estimators on the same samples.

    Per (estimator, K): `trace` (total variance of one batch's gradient), `mean_norm` (norm of the mean gradient),
    `debiased_norm` (sqrt(|mean|^2 - trace/R), an estimate of ‖E g‖ with the noise removed), and, against L2O at the
    same K on the same batches, `dist_l2o` (norm of the difference of the mean gradients), `z_l2o` (that norm over
    its own noise level sqrt(tr Cov(g - g_L2O) / R): about 1 when both have the same expectation) and `cos_l2o`.
    GRPO does not depend on K: it is computed once per batch and compared with L2O at every K.
    """
    # A copy in eval mode (no dropout; gradients still flow), sampled and scored through the library's one path.
    sampler = scorer(fresh_copy(model), tokenizer, reward)
    params = [p for p in sampler.model.parameters() if p.requires_grad]
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
        rewards, logps = sample_groups_with_logprobs(sampler, [train[i] for i in rows], opts.group)
        pass_rates.append(rewards.mean().item())
        l2o_flat = {}
        for j, (name, k) in enumerate(keys):
            adv = library_advantages(name, rewards, k if k is not None else 1).to(logps.dtype)
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
    return harness.markdown_table(headers, rows)


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


def plot_variance(results: dict, ks, path) -> None:
    plt = harness.pyplot()
    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.2), squeeze=False)
    width = 0.8 / len(VARIANCE_ESTIMATORS)
    for ax, (checkpoint, res) in zip(axes[0], results.items()):
        for j, name in enumerate(VARIANCE_ESTIMATORS):
            offset = (j - (len(VARIANCE_ESTIMATORS) - 1) / 2) * width
            ax.bar([i + offset for i in range(len(ks))], [res[(name, k)]["trace"] for k in ks], width, label=name)
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


def to_json(results: dict[str, dict]) -> dict:
    """Per checkpoint: the batch pass rate and one `[estimator, K, statistics]` row per (estimator, K)."""
    return {
        checkpoint: dict(pass_rate=res["pass_rate"], stats=[[*key, v] for key, v in res.items() if key != "pass_rate"])
        for checkpoint, res in results.items()
    }


def from_json(data: dict) -> dict[str, dict]:
    return {
        checkpoint: {(name, k): v for name, k, v in res["stats"]} | {"pass_rate": res["pass_rate"]}
        for checkpoint, res in data.items()
    }
