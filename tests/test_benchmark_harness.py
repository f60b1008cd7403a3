"""Unit tests of the benchmarks' shared harness (`benchmarks/_harness.py`): options, seed statistics, raw runs.

Fast: nothing here loads a model or trains.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _harness as harness  # noqa: E402


def test_resolve_fills_only_unset_options_with_the_quick_or_full_values():
    parser = harness.benchmark_parser("doc", seeds=True)
    parser.add_argument("--steps", type=int, default=None)
    full, quick = dict(steps=300, seeds=[0, 1, 2]), dict(steps=4, seeds=[0])
    assert harness.resolve(parser.parse_args(["--threads", "1"]), full, quick).steps == 300
    opts = harness.resolve(parser.parse_args(["--quick", "--steps", "7"]), full, quick)
    assert (opts.steps, opts.seeds, harness.writes(opts)) == (7, [0], False)
    opts = harness.resolve(parser.parse_args(["--seeds", "--merge", "a.json"]), full, quick)
    assert opts.seeds == [] and opts.merge == ["a.json"]  # `--seeds` with none: only the merged runs
    assert not harness.writes(harness.resolve(parser.parse_args(["--no-write"]), full, quick))


def test_seed_statistics():
    assert harness.mean_se([0.5]) == "0.500"
    assert harness.mean_se([1.0, 2.0, 3.0]) == f"2.000 ± {1 / math.sqrt(3):.3f}"
    assert harness.mean_std([1.0, 3.0], "{:.0f}") == "2 ± 1"
    assert math.isnan(harness.std_error([1.0]))
    runs = [[dict(step=0, wall=1.0, accuracy=0.2)], [dict(step=0, wall=3.0, accuracy=0.4)]]
    (point,) = harness.mean_points(runs, "accuracy")
    assert point["step"] == 0 and point["wall"] == 2.0 and point["accuracy"] == pytest.approx(0.3)
    assert point["accuracy_std"] == pytest.approx(math.sqrt(0.02))


def test_seed_major_runs_every_item_per_seed_and_skips_none():
    runs = harness.seed_major([0, 1], ["a", "b"], lambda seed, item: None if item == "b" and seed else {"item": item})
    assert [(r["seed"], r["item"]) for r in runs] == [(0, "a"), (0, "b"), (1, "a")]


def test_dump_and_merge_round_trip(tmp_path):
    first, second = tmp_path / "s0.json", tmp_path / "s1.json"
    harness.dump_runs(str(first), [dict(seed=0, x=1.0)], initial_accuracy=0.25)
    harness.dump_runs(str(second), [dict(seed=1, x=2.0)], initial_accuracy=0.25)
    runs, extras = harness.merge_runs([str(first), str(second)])
    assert [r["seed"] for r in runs] == [0, 1] and extras == [dict(initial_accuracy=0.25)] * 2
    assert harness.merge_runs(None) == ([], [])


def test_command_line_quotes_arguments_with_spaces_and_the_header_records_the_run():
    command = harness.command_line("learning_efficiency.py", ["--methods", "BASIS@1 N=4", "GRPO@8"])
    assert command == 'python benchmarks/learning_efficiency.py --methods "BASIS@1 N=4" GRPO@8'
    header = harness.results_header("Title", command, ["settings: 4 steps"])
    assert header.startswith("# Title\n\n- command: `python benchmarks/")
    for part in ("torch ", "transformers ", "trl ", "torch thread(s)", "CPU core(s)", "- settings: 4 steps"):
        assert part in header, part


def test_clock_excludes_paused_spans():
    clock = harness.Clock()
    with clock.paused():
        sum(range(200_000))
    wall, cpu = clock.elapsed()
    assert clock.excluded_wall > 0 and wall >= 0 and cpu >= -1e-3


def test_write_results_and_plots_only_where_asked(tmp_path, capsys):
    out = tmp_path / "sub" / "result.md"
    assert harness.write_results("name", "Title", "python benchmarks/x.py", "| a |", write=False, path=out) is None
    assert not out.exists() and "| a |" in capsys.readouterr().out
    harness.write_results("name", "Title", "python benchmarks/x.py", "| a |", settings=["seeds [0]"], path=out)
    text = out.read_text()
    assert text.startswith("# Title\n") and "- seeds [0]\n\n| a |\n" in text
    assert harness.write_plots(None, {".png": lambda path: None}) == []
    drawn = harness.write_plots(tmp_path / "plots" / "p", {".png": lambda path: Path(path).write_text("x")})
    assert drawn == [f"{tmp_path / 'plots' / 'p'}.png"] and Path(drawn[0]).read_text() == "x"
