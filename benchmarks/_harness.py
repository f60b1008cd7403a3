"""The machinery every benchmark script shares, so that a script holds only its experiment.

* options: `benchmark_parser` (`--quick`, `--threads`, `--world`, `--no-write`; with seeds: `--seeds`, `--dump`,
  `--merge`), `resolve` (full or `--quick` values of the options left unset; torch threads through `set_threads`)
  and `writes` (whether the run writes its results files);
* runs: `seed_major` (every item once per seed, seed by seed), `dump_runs` / `merge_runs` (raw per-run results as
  JSON, so that runs of different seeds or sessions are reported in one table);
* timing and memory: `timed` (wall and process CPU seconds of a block), `Clock` (the same along a run, minus the
  spans it is paused for, e.g. evaluations), `memory_mib` and `reset_peak` (resident and peak memory of a process);
* along a training run: `step_callback` (a function called at chosen optimizer steps);
* statistics over seeds: `mean_points` (seed-mean curves), `mean_se`, `mean_std`, `std_error`;
* results: `results_name` (`<name>` or `<name>_<world>`), `markdown_table`, `results_header` (command, date, versions, threads, machine, settings),
  `write_results` (print; unless told not to, write `benchmarks/results/<name>.md`) and `write_plots`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (sets the environment up: offline hub, the repository on sys.path)
import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"


# ----------------------------------------------------------------------------------------------------- options
def add_world_argument(parser) -> None:
    """`--world`: a shipped tiny world (`trl_basis.tasks.WORLDS`), its model and its levels."""
    from trl_basis.tasks.worlds import DEFAULT_WORLD, WORLDS

    parser.add_argument(
        "--world", default=DEFAULT_WORLD, choices=list(WORLDS), help="shipped tiny world (model + levels)"
    )


def set_threads(num: int) -> None:
    """Torch threads for the whole run: `OMP_NUM_THREADS` too, which the trainers' own thread choice obeys (without
    it, each trainer would pick the cores it finds idle when it is built)."""
    os.environ["OMP_NUM_THREADS"] = str(num)
    torch.set_num_threads(num)


def results_name(name: str, world: str | None) -> str:
    """`name` for the default world (level3), `name_<world>` for the others."""
    from trl_basis.tasks.worlds import DEFAULT_WORLD

    return name if world in (None, DEFAULT_WORLD) else f"{name}_{world}"


def benchmark_parser(
    doc: str, *, seeds: bool = False, world: bool = True, threads: bool = True, quick: bool = True
) -> argparse.ArgumentParser:
    """The shared options; a script adds its own. `doc` is the script's docstring (shown by `--help`)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if quick:
        parser.add_argument("--quick", action="store_true", help="tiny settings (CI smoke test); writes nothing")
    parser.add_argument("--no-write", action="store_true", help="print only, even for a full run")
    if threads:
        parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the CPU is shared)")
    if world:
        add_world_argument(parser)
    if seeds:
        parser.add_argument(
            "--seeds", type=int, nargs="*", default=None, help="run seeds, run seed-major (none: only --merge)"
        )
        parser.add_argument("--dump", default=None, help="also write the raw per-run results as JSON to this path")
        parser.add_argument(
            "--merge",
            nargs="+",
            default=None,
            help="--dump files of earlier runs with the same settings: reported together with this run's runs",
        )
    return parser


def resolve(opts: argparse.Namespace, full: dict[str, Any], quick: dict[str, Any]) -> argparse.Namespace:
    """Give each option still at None its `--quick` or full value, and set the torch threads for the run."""
    for key, value in (quick if getattr(opts, "quick", False) else full).items():
        if getattr(opts, key, None) is None:
            setattr(opts, key, value)
    if getattr(opts, "threads", None) is not None:
        set_threads(opts.threads)
    return opts


def writes(opts: argparse.Namespace) -> bool:
    """Whether this run writes its results files (a full run without `--no-write`)."""
    return not (getattr(opts, "quick", False) or getattr(opts, "no_write", False))


def command_line(script: str, argv: Sequence[str] | None) -> str:
    """The command as the results header quotes it (arguments with spaces quoted)."""
    args = list(argv if argv is not None else sys.argv[1:])
    return " ".join([f"python benchmarks/{script}"] + [f'"{a}"' if " " in a else a for a in args])


# ----------------------------------------------------------------------------------------------------- runs
def seed_major(
    seeds: Iterable[int],
    items: Iterable[str],
    run: Callable[[int, str], dict | None],
    describe: Callable[[dict], str] | None = None,
) -> list[dict]:
    """`run(seed, item)` for every item once per seed, seed by seed, so load from other jobs affects every item
    alike; a run that returns None is skipped. Each result gets `seed` and prints one line (`describe`)."""
    items = list(items)
    runs = []
    for seed in seeds:
        for item in items:
            result = run(seed, item)
            if result is None:
                continue
            result.setdefault("seed", seed)
            runs.append(result)
            if describe is not None:
                print(f"seed {seed} {describe(result)}", flush=True)
    return runs


def dump_runs(path: str, runs: list[dict], **extra: Any) -> None:
    """Raw per-run results (and what the report needs besides) as JSON, for a later `--merge`."""
    with open(path, "w") as f:
        json.dump(dict(runs=runs, **extra), f)


def merge_runs(paths: Sequence[str] | None) -> tuple[list[dict], list[dict]]:
    """The runs of earlier `--dump` files, in order, and each file's other fields."""
    runs, extras = [], []
    for path in paths or []:
        with open(path) as f:
            data = json.load(f)
        runs += data.pop("runs")
        extras.append(data)
    return runs, extras


# ----------------------------------------------------------------------------------------------------- timing
@contextmanager
def timed() -> Iterator[dict[str, float]]:
    """`with timed() as t: ...`, then `t["wall"]` and `t["cpu"]`: wall-clock and process CPU seconds (the CPU time
    is the robust one when other jobs share the cores)."""
    out: dict[str, float] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield out
    finally:
        out["wall"] = time.perf_counter() - wall
        out["cpu"] = time.process_time() - cpu


class Clock:
    """Wall and process CPU seconds since it was made, minus the spans run under `paused()`."""

    def __init__(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        self.excluded_wall = self.excluded_cpu = 0.0

    def elapsed(self) -> tuple[float, float]:
        return (
            time.perf_counter() - self.wall0 - self.excluded_wall,
            time.process_time() - self.cpu0 - self.excluded_cpu,
        )

    @contextmanager
    def paused(self) -> Iterator[None]:
        with timed() as spent:
            yield
        self.excluded_wall += spent["wall"]
        self.excluded_cpu += spent["cpu"]


def memory_mib() -> dict[str, float]:
    """Current (VmRSS) and peak (VmHWM) resident set size of this process's own address space, in MiB.

    `resource.getrusage(...).ru_maxrss` is not used: on Linux it carries the parent's peak over fork + exec, so a
    worker process would report at least its parent's resident size. VmHWM belongs to the address space exec made.
    """
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024  # kB
    return out


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux `clear_refs` 5), so that a peak measures one call; False when not
    permitted."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ----------------------------------------------------------------------------------------------------- training
def step_callback(fn: Callable[..., None], when: Callable[[int], bool] = lambda step: True, begin: bool = False):
    """A `TrainerCallback` calling `fn(step, model=..., optimizer=...)` after each optimizer step for which
    `when(step)` holds, and with `begin`, at step 0 before training."""
    from transformers import TrainerCallback

    class StepCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
            if begin:
                fn(0, model=model, optimizer=optimizer)

        def on_step_end(self, args, state, control, model=None, optimizer=None, **kwargs):
            if when(state.global_step):
                fn(state.global_step, model=model, optimizer=optimizer)

    return StepCallback()


# ----------------------------------------------------------------------------------------------------- statistics
def std_error(values: Sequence[float]) -> float:
    """Standard error of the mean (NaN for one value)."""
    return statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else math.nan


def mean_points(runs: Sequence[Sequence[dict]], spread: str) -> list[dict]:
    """Seed means of aligned points (the i-th point of every run): a field equal in every run (a step, a count) is
    kept as it is, the others are averaged; `<spread>_std` is the standard deviation of the field `spread`."""
    out = []
    for points in zip(*runs, strict=True):
        point = {}
        for key, first in points[0].items():
            values = [p[key] for p in points]
            point[key] = first if all(v == first for v in values) else statistics.mean(values)
        values = [p[spread] for p in points]
        point[f"{spread}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        out.append(point)
    return out


def mean_se(values: Sequence[float], fmt: str = "{:.3f}") -> str:
    """Mean ± standard error over seeds; the value alone for one seed."""
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.mean(values))} ± {fmt.format(std_error(values))}"


def mean_std(values: Sequence[float], fmt: str = "{:.3f}") -> str:
    """Mean ± standard deviation over seeds; the value alone for one seed."""
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.mean(values))} ± {fmt.format(statistics.stdev(values))}"


# ----------------------------------------------------------------------------------------------------- results
def markdown_table(headers: list[str], rows: list[list]) -> str:
    def fmt(value) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def versions() -> str:
    import transformers
    import trl

    return (
        f"Python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}, "
        f"trl {trl.__version__}"
    )


def machine() -> str:
    """CPU model (or architecture), core count, GPU if any."""
    name = platform.processor() or platform.machine()
    try:
        name = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{name}, {os.cpu_count()} CPU core(s), {gpu}"


def results_header(title: str, command: str, settings: Sequence[str] = ()) -> str:
    """The provenance header of a results file: what ran, when, with what, where; `settings` are extra bullets."""
    lines = [
        f"# {title}",
        "",
        f"- command: `{command}`",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; {versions()}; "
        f"{torch.get_num_threads()} torch thread(s); {machine()}",
        *[f"- {s}" for s in settings],
    ]
    return "\n".join(lines) + "\n\n"


def write_results(
    name: str,
    title: str,
    command: str,
    body: str,
    write: bool = True,
    settings: Sequence[str] = (),
    path: str | Path | None = None,
) -> Path | None:
    """Print `body`; when `write`, also write it under `results_header` to `path` (default:
    `benchmarks/results/<name>.md`)."""
    print(body)
    if not write:
        return None
    path = Path(path) if path is not None else RESULTS_DIR / f"{name}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(results_header(title, command, settings) + body + "\n")
    print(f"wrote {path}")
    return path


def write_plots(prefix: str | Path | None, plots: dict[str, Callable[[str], None]]) -> list[str]:
    """Each `plots[suffix](path)` at `<prefix><suffix>` (nothing without a prefix); returns the paths written."""
    if prefix is None:
        return []
    paths = []
    for suffix, draw in plots.items():
        path = f"{prefix}{suffix}"
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        draw(path)
        paths.append(path)
        print(f"plot: {path}")
    return paths


def plot_prefix(opts: argparse.Namespace, name: str, fallback: str | Path | None = None) -> str | Path | None:
    """Where the plots go: next to the results file when the run writes, else `fallback` (e.g. a `--dump` path)."""
    return RESULTS_DIR / name if writes(opts) else fallback


def pyplot():
    """matplotlib's pyplot on the file-only backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def band(ax, x: Sequence[float], y: Sequence[float], spread: Sequence[float], color=None, alpha: float = 0.12):
    """A shaded y ± spread band (the spread over seeds around a seed-mean curve)."""
    ax.fill_between(
        x, [a - s for a, s in zip(y, spread)], [a + s for a, s in zip(y, spread)], alpha=alpha, color=color
    )
