"""Benchmark of the pure-torch estimators: median time per call.

    python benchmarks/estimators.py                  # full run, writes benchmarks/results/estimators.md
    python benchmarks/estimators.py --quick          # tiny settings (CI smoke test), prints only
    python benchmarks/estimators.py --threads 1,2    # one table block per torch thread count
    python benchmarks/estimators.py --threads 1,2 --exact-threads 1   # exact mode (slow) at 1 thread only

Settings (full): `calibrate_beta` at B = 256, 4096, 16384 on the default grid (G = 230), normal mode, and
exact mode where its O(G B^2) work fits (B = 256 and 4096; B = 16384 would be 6e10 (beta, i, j) entries);
`maxpo_advantages`, `pkpo_advantages(baseline="loo")` and `max_at_k` on 512 groups of B = 8, 64, 256
completions at K = B / 2. Each timing is the median over several calls after warm-up calls; both the
wall-clock time (`time.perf_counter`) and the process CPU time (`time.process_time`) are reported, since
on a shared machine the wall clock also counts time spent waiting for a core.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import _harness as harness
import torch

from trl_basis.advantages import (
    beta_grid,
    calibrate_beta,
    max_at_k,
    maxpo_advantages,
    pkpo_advantages,
    reference_values,
)

TARGET_MS = 20.0  # calibrate_beta at B = 4096 and max@K estimators at 512 x 64, on a 2-core CPU


def time_call(fn, min_repeats: int, min_seconds: float, warmup: int) -> tuple[float, float, int]:
    """Median wall and CPU milliseconds per call, and the number of timed calls."""
    for _ in range(warmup):
        fn()
    walls, cpus = [], []
    start = time.perf_counter()
    while len(walls) < min_repeats or (time.perf_counter() - start < min_seconds and len(walls) < 200):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls) * 1e3, statistics.median(cpus) * 1e3, len(walls)


def basis_inputs(size: int, grid: torch.Tensor, seed: int = 0):
    """A batch like training's: binary rewards of an improved policy, N = 8 binary reference rewards per prompt."""
    gen = torch.Generator().manual_seed(seed)
    pass_rate = torch.rand(size, 1, generator=gen) * 0.9 + 0.05
    refs = (torch.rand(size, 8, generator=gen) < pass_rate).to(torch.float64)
    # Constant prompts (all wrong / all right) are filtered out of the training set by default: redraw them.
    constant = refs.amin(dim=1) == refs.amax(dim=1)
    refs[constant, 0] = 1.0 - refs[constant, 0]
    table = reference_values(refs, grid)
    rewards = (torch.rand(size, generator=gen) < pass_rate[:, 0].sqrt()).to(torch.float64)
    return rewards, table


class _Rows(list):
    """The result rows; each one is also reported on stderr as it comes (the full run takes minutes)."""

    def append(self, row: dict) -> None:
        timing = row.get("skipped") or f"{row['wall']:.3f} ms wall, {row['cpu']:.3f} ms CPU"
        print(f"[{row['threads']} threads] {row['name']} {row['setting']}: {timing}", file=sys.stderr, flush=True)
        super().append(row)


def run(quick: bool, threads: list[int], exact_threads: list[int]) -> list[dict]:
    rows = _Rows()
    if quick:
        basis_sizes, exact_sizes, grid = [64], [64], beta_grid(23)
        group_settings, num_groups = [8], 16
        min_repeats, min_seconds, warmup = 3, 0.0, 1
    else:
        basis_sizes, exact_sizes, grid = [256, 4096, 16384], [256, 4096], beta_grid()
        group_settings, num_groups = [8, 64, 256], 512
        min_repeats, min_seconds, warmup = 7, 1.0, 3
    for num_threads in threads:
        torch.set_num_threads(num_threads)
        for size in basis_sizes:
            rewards, table = basis_inputs(size, grid)
            for exact in (False, True):
                name = f"calibrate_beta({'exact' if exact else 'normal'})"
                setting = f"B={size}, G={grid.numel()}"
                if exact and size not in exact_sizes:
                    reason = "O(G B^2) = 6e10 entries: minutes per call"
                    rows.append(dict(threads=num_threads, name=name, setting=setting, skipped=reason))
                    continue
                if exact and num_threads not in exact_threads:
                    reason = "not timed at this thread count (--exact-threads)"
                    rows.append(dict(threads=num_threads, name=name, setting=setting, skipped=reason))
                    continue
                fn = lambda r=rewards, t=table, e=exact: calibrate_beta(r, t, grid, exact=e)  # noqa: E731
                # Heavy settings (seconds per call): the timed calls are their own warm-up.
                slow = exact and size >= 4096
                wall, cpu, n = time_call(
                    fn, 3 if slow else min_repeats, 0.0 if slow else min_seconds, 0 if slow else warmup
                )
                rows.append(dict(threads=num_threads, name=name, setting=setting, wall=wall, cpu=cpu, n=n))
        for size in group_settings:
            gen = torch.Generator().manual_seed(size)
            rewards = (torch.rand(num_groups, size, generator=gen) < 0.3).to(torch.float64)
            k = size // 2
            for name, fn in (
                ("maxpo_advantages", lambda r=rewards, k=k: maxpo_advantages(r, k)),
                ('pkpo_advantages("loo")', lambda r=rewards, k=k: pkpo_advantages(r, k, baseline="loo")),
                ("max_at_k", lambda r=rewards, k=k: max_at_k(r, k)),
            ):
                wall, cpu, n = time_call(fn, min_repeats, min_seconds, warmup)
                setting = f"{num_groups} groups x B={size}, K={k}"
                rows.append(dict(threads=num_threads, name=name, setting=setting, wall=wall, cpu=cpu, n=n))
    return rows


def target(row: dict) -> str:
    """The brief's targets: calibrate_beta (normal) at B = 4096 and the max@K estimators at 512 x 64."""
    basis_target = row["name"] == "calibrate_beta(normal)" and row["setting"].startswith("B=4096,")
    group_target = not row["name"].startswith("calibrate_beta") and row["setting"].startswith("512 groups x B=64,")
    if not (basis_target or group_target):
        return ""
    return f"< {TARGET_MS:.0f} ms: {'met' if row['wall'] < TARGET_MS else 'MISSED'}"


def table(rows: list[dict]) -> str:
    lines = [
        "| threads | function | setting | median wall ms | median CPU ms | n | target |",
        "|---:|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        if row.get("skipped"):
            lines.append(
                f"| {row['threads']} | {row['name']} | {row['setting']} | skipped | skipped | 0 | {row['skipped']} |"
            )
            continue
        lines.append(
            f"| {row['threads']} | {row['name']} | {row['setting']} | {row['wall']:.3f} | {row['cpu']:.3f} | "
            f"{row['n']} | {target(row)} |"
        )
    return "\n".join(lines)


def parse(argv: list[str] | None):
    parser = harness.benchmark_parser(__doc__, world=False, threads=False)
    parser.add_argument(
        "--threads", default=None, help="comma-separated torch thread counts (default: torch's default)"
    )
    parser.add_argument(
        "--output",
        default=None,
        help="markdown file to write (default: benchmarks/results/estimators.md for a full run)",
    )
    parser.add_argument(
        "--exact-threads", default=None, help="thread counts at which to time the exact mode (default: all)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    threads = [int(t) for t in args.threads.split(",")] if args.threads else [torch.get_num_threads()]
    exact_threads = [int(t) for t in args.exact_threads.split(",")] if args.exact_threads else threads
    load_before = os.getloadavg()[0]
    rows = run(args.quick, threads, exact_threads)
    settings = [
        f"torch threads per block below: {threads}; load average (1 min) before / after: {load_before:.2f} / "
        f"{os.getloadavg()[0]:.2f} (other jobs share this machine: the CPU-time column is the less noisy one)",
        "median per call over `n` timed calls after warm-up calls (exact mode at B = 4096: 3 calls, no warm-up)",
        "float64 throughout; calibrate_beta uses the default grid of 230 betas on [0.01, 5]",
        "with more than one thread on a machine shared with other jobs, an op's parallel region waits for any "
        "thread whose core another job holds: compare the 1-thread rows (and the CPU column) across runs",
    ]
    command = harness.command_line("estimators.py", argv)
    write = bool(args.output) or harness.writes(args)  # an explicit --output is written even with --quick
    harness.write_results("estimators", "Estimator benchmark", command, table(rows), write, settings, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
