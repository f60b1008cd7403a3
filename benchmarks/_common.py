"""Pieces shared by the benchmark scripts: CPU training settings, the tiny world, results files.

Every benchmark runs on the shipped tiny model and the generated arithmetic task, offline, on CPU. Each script
states its command and seeds in its docstring, prints a markdown table and writes `benchmarks/results/<name>.md`
(plus a PNG) through `write_results`.
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# GRPOConfig defaults to bf16 and gradient checkpointing; neither suits the tiny model on CPU.
CPU_TRAINING = dict(
    bf16=False,
    gradient_checkpointing=False,
    use_cpu=True,
    report_to="none",
    max_completion_length=8,
    logging_steps=1,
    save_strategy="no",
    disable_tqdm=True,
)


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


def tiny_world(num_train: int = 2000, num_test: int = 200, seed: int = 0, world: str | None = None):
    """A shipped world's model path (`trl_basis.tasks.WORLDS`; None: level3), its arithmetic train/test splits and
    the reward function."""
    from trl_basis.tasks import arithmetic_reward, make_arithmetic_dataset, tiny_model_path

    data = make_arithmetic_dataset(num_train=num_train, num_test=num_test, seed=seed, world=world)
    return tiny_model_path(world), data["train"], data["test"], arithmetic_reward


def load_tiny(path: str | None = None, world: str | None = None):
    """Model (eval mode) and tokenizer of a world's tiny model, or of a checkpoint folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trl_basis.tasks import tiny_model_path

    path = path or tiny_model_path(world)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path(world))
    return model, tokenizer


def held_out_accuracy(model, tokenizer, dataset, reward, num_samples: int = 4, seed: int = 0) -> float:
    """Mean sampled reward (temperature 1) over `num_samples` completions per held-out prompt."""
    from trl_basis.evaluation import sample_rewards

    rewards = sample_rewards(
        model, tokenizer, dataset, reward, num_samples, max_new_tokens=8, seed=seed, progress=False
    )
    return rewards.nanmean().item()


@contextmanager
def timer() -> Iterator[dict[str, float]]:
    """`with timer() as t: ...` then `t["seconds"]`."""
    out: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = time.perf_counter() - start


def markdown_table(headers: list[str], rows: list[list]) -> str:
    def fmt(value) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(name: str, title: str, command: str, body: str, quick: bool = False) -> Path | None:
    """Print `body` and, unless `quick`, write it to `benchmarks/results/<name>.md` under a provenance header."""
    print(body)
    if quick:
        return None
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    header = (
        f"# {title}\n\n"
        f"- command: `{command}`\n"
        f"- date: {datetime.date.today().isoformat()}; torch {torch.__version__}, {torch.get_num_threads()} "
        f"thread(s); {platform.processor() or platform.machine()}, {os.cpu_count()} CPU core(s), no GPU\n\n"
    )
    path = RESULTS_DIR / f"{name}.md"
    path.write_text(header + body + "\n")
    print(f"wrote {path}")
    return path
