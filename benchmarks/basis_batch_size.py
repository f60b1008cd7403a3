"""How large must BASIS's global generation batch be for a reliable baseline? Value MSE against batch size.

    python benchmarks/basis_batch_size.py                  # writes benchmarks/results/basis_batch_size.md
    python benchmarks/basis_batch_size.py --quick          # smoke test: tiny settings, prints only

What it does (full settings in brackets; seed `--seed`, default 0):

1. The tiny world: `make_arithmetic_dataset(num_train=1000, seed=0)` and the shipped tiny model. Sample
   N = 8 reference rewards per training prompt from the INITIAL model and keep the prompts whose 8 rewards are not
   all equal (what `BASISTrainer` keeps, `filter_constant_prompts`); fix P [= 256] of them.
2. Policies: the initial model, then each `--policy DIR` (e.g. a model trained by `trl-basis train`: a policy that
   has moved away from the reference values, as during training). Sample M [= 40] completions per prompt from each.
3. For each batch size B in [4, 8, 16, 32, 64, 128, 256], draw [300] random batches of B of the P prompts. In each,
   one of a prompt's M samples is its rollout r_i and the other M - 1 give its "true" value. The baseline is
   `calibrate_beta(r, v, betas)` (the trainer's defaults: grid of 230 betas, epsilon 1e-3, zero fallback). The MSE
   is the mean of (b_i - truth_i)^2 minus the sampling variance of the truth, so it estimates E[(b_i - value_i)^2];
   the leave-one-out batch mean (REINFORCE++) is shown for comparison.

`BASISConfig` warns once when the global generation batch is smaller than the size this table shows to be reliable
(`MIN_RELIABLE_BATCH` in `trl_basis/trainers/_checks.py`).
"""

from __future__ import annotations

import _harness as harness
import torch
from _common import load_tiny, scorer, tiny_world

BATCH_SIZES = (4, 8, 16, 32, 64, 128, 256)
FULL = dict(num_train=1000, prompts=256, samples=40, batches=300)
QUICK = dict(num_train=200, prompts=32, samples=6, batches=5)


def sample(model_path: str | None, world: str, dataset, reward, num_samples: int, seed: int) -> torch.Tensor:
    """`num_samples` rewards per prompt (P, M) from a policy folder (None: the world's tiny model)."""
    from trl_basis.evaluation import sample_rewards

    model, tokenizer = load_tiny(model_path, world=world)
    return sample_rewards(
        scorer(model, tokenizer, reward), dataset, num_samples, prompts_per_call=max(1, 128 // num_samples), seed=seed
    )


def batch_mse(rewards: torch.Tensor, refs: torch.Tensor, sizes, num_batches: int, seed: int) -> dict[int, dict]:
    from trl_basis.advantages import beta_grid, calibrate_beta, reference_values

    betas = beta_grid()
    table = reference_values(refs, betas)
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for size in sizes:
        basis, loo = [], []
        for _ in range(num_batches):
            idx = torch.randperm(rewards.shape[0], generator=gen)[:size]
            order = torch.rand(size, rewards.shape[1], generator=gen).argsort(dim=1)
            draws = rewards[idx].gather(1, order)
            r, rest = draws[:, 0], draws[:, 1:]
            truth, noise = rest.mean(dim=1), rest.var(dim=1) / rest.shape[1]
            baseline = calibrate_beta(r, table[idx], betas).baseline
            basis.append(((baseline - truth).square() - noise).mean().item())
            loo.append((((r.sum() - r) / (size - 1) - truth).square() - noise).mean().item())
        basis_t = torch.tensor(basis)
        out[size] = {
            "basis": basis_t.mean().item(),
            "basis_se": (basis_t.std() / num_batches**0.5).item(),
            "loo": sum(loo) / len(loo),
        }
    return out


def parse(argv: list[str] | None):
    parser = harness.benchmark_parser(__doc__)
    parser.add_argument(
        "--policy", nargs="*", default=[], help="model folder(s) of trained policies, measured after the initial model"
    )
    parser.add_argument("--num-train", type=int, default=None, help="training prompts before the filter (full: 1000)")
    parser.add_argument("--prompts", type=int, default=None, help="P (full: 256)")
    parser.add_argument("--samples", type=int, default=None, help="M per prompt (full: 40)")
    parser.add_argument("--batches", type=int, default=None, help="batches per size (full: 300)")
    parser.add_argument("--seed", type=int, default=0)
    return harness.resolve(parser.parse_args(argv), FULL, QUICK)


def main(argv: list[str] | None = None) -> dict[int, dict]:
    args = parse(argv)
    clock = harness.Clock()
    _, train, _, reward = tiny_world(num_train=args.num_train, num_test=8, seed=0, world=args.world)
    refs = sample(None, args.world, train, reward, 8, args.seed)
    kept = [i for i in range(len(train)) if refs[i].min() != refs[i].max()]
    gen = torch.Generator().manual_seed(args.seed)
    chosen = torch.tensor(kept)[torch.randperm(len(kept), generator=gen)[: args.prompts]]
    sizes = [b for b in BATCH_SIZES if b <= args.prompts]
    sections, results = [], {}
    for policy in [None, *args.policy]:
        rewards = sample(policy, args.world, train.select(chosen.tolist()), reward, args.samples, args.seed + 1)
        results[policy] = batch_mse(rewards, refs[chosen], sizes, args.batches, args.seed)
        rows = [
            [
                b,
                f"{r['basis']:.4f} ± {2 * r['basis_se']:.4f}",
                f"{r['basis'] / results[policy][sizes[-1]]['basis']:.2f}",
                f"{r['loo']:.4f}",
            ]
            for b, r in results[policy].items()
        ]
        sections.append(
            f"policy: {policy or 'the initial tiny model'} (pass@1 {rewards.nanmean().item():.3f} on these prompts)\n\n"
            + harness.markdown_table(
                ["global batch B", "BASIS MSE (± 2 s.e.)", f"vs B = {sizes[-1]}", "leave-one-out mean MSE"], rows
            )
        )
    body = (
        f"{len(kept)} of {len(train)} training prompts kept by the reference filter; P = {len(chosen)} of them, "
        f"M = {args.samples} samples each, {args.batches} batches per size, seed {args.seed}; run time "
        f"{clock.elapsed()[0] / 60:.1f} min wall, {clock.elapsed()[1] / 60:.1f} min CPU with {args.threads} torch "
        "thread(s).\n\n" + "\n\n".join(sections)
    )
    name, title = (
        harness.results_name("basis_batch_size", args.world),
        "BASIS baseline MSE against the global batch size",
    )
    harness.write_results(name, title, harness.command_line("basis_batch_size.py", argv), body, harness.writes(args))
    return results


if __name__ == "__main__":
    main()
