"""Does reinforcement learning improve a tiny world's model, level by level? (Issue 19's diagnosis of `mixed`.)

    python benchmarks/rl_diagnosis.py --model-world mixed --levels 3 --method GRPO@8 --lr 5e-5 --dump a.json
    python benchmarks/rl_diagnosis.py --merge a.json b.json ...      # one table; writes results/rl_diagnosis.md
    python benchmarks/rl_diagnosis.py --quick                        # seconds, prints only

Trains one method (`_methods.make_trainer`: `GRPO@8`, `BASIS@1`, ...) for `--steps` steps on the model of
`--model-world` with training prompts of `--levels` (default: that world's), and scores the model every
`--eval-every` steps on a VALIDATION split, never on the held-out test prompts: the seed-1 test problems of levels 3
and 4 that are neither seed-0 test problems (the benchmarks' held-out sets) nor seed-0 training problems of levels
3, 4 or both (so the same split serves every run). Accuracy is pass@1 from 8 samples (temperature 1), reported per
level. It asks where the mixed world's missing RL gain comes from: level 4 dragging level 3 down, or a model that RL
does not improve even on its level-3 prompts alone (with the level-3 world's model as the control).
"""

from __future__ import annotations

import _harness as harness
import torch
from _common import CPU_TRAINING
from _methods import make_trainer

NAME = "rl_diagnosis"
FULL = dict(steps=300, eval_every=100, train_prompts=1000, eval_per_level=200)
QUICK = dict(steps=2, eval_every=1, train_prompts=64, eval_per_level=8)


def validation_split(per_level: int):
    """Seed-1 test problems of levels 3 and 4, minus every seed-0 test and training problem the benchmarks use."""
    from trl_basis.tasks import make_arithmetic_dataset

    def questions(split) -> set[str]:
        return {row[0]["content"] for row in split["prompt"]}

    seen = questions(make_arithmetic_dataset(num_train=1, num_test=1000, seed=0, difficulties=(3, 4))["test"])
    for levels in ((3,), (4,), (3, 4)):
        seen |= questions(make_arithmetic_dataset(num_train=1000, num_test=200, seed=0, difficulties=levels)["train"])
    candidates = make_arithmetic_dataset(num_train=1, num_test=2 * per_level, seed=1, difficulties=(3, 4))["test"]
    return candidates.filter(lambda row: row["prompt"][0]["content"] not in seen)


def run(opts) -> dict:
    from transformers import PrinterCallback

    from trl_basis.evaluation import sample_rewards
    from trl_basis.tasks import arithmetic_reward, get_world, make_arithmetic_dataset, tiny_model_path

    levels = tuple(opts.levels or get_world(opts.model_world).difficulties)
    train = make_arithmetic_dataset(num_train=opts.train_prompts, num_test=200, seed=0, difficulties=levels)["train"]
    validation = validation_split(opts.eval_per_level)
    level_of = torch.tensor(validation["difficulty"])
    common = dict(
        CPU_TRAINING,
        output_dir=f"/tmp/trl_basis_{NAME}/{opts.model_world}-{opts.method}",
        per_device_train_batch_size=64,
        gradient_accumulation_steps=1,
        max_steps=opts.steps,
        learning_rate=opts.lr,
        lr_scheduler_type="constant",
        seed=opts.seed,
        logging_steps=max(opts.eval_every, 1),
    )
    clock = harness.Clock()
    trainer, _ = make_trainer(opts.method, (tiny_model_path(opts.model_world), train, None, arithmetic_reward), common)
    trainer.remove_callback(PrinterCallback)
    curve = []

    def score(step: int, *_, **__) -> None:
        with clock.paused():
            means = sample_rewards(trainer, validation, 8, seed=1234, seed_key="eval").mean(dim=1)
            point = {f"level {level}": means[level_of == level].mean().item() for level in (3, 4)}
            curve.append(dict(step=step, all=means.mean().item(), cpu=clock.elapsed()[1], **point))
            print(f"step {step}: " + ", ".join(f"{k} {v:.3f}" for k, v in curve[-1].items() if k != "step"))

    score(0)
    trainer.add_callback(harness.step_callback(score, lambda s: s % opts.eval_every == 0 or s == opts.steps))
    trainer.train()
    sizes = {str(level): int((level_of == level).sum()) for level in (3, 4)}
    return dict(
        model_world=opts.model_world,
        levels=list(levels),
        method=opts.method,
        lr=opts.lr,
        seed=opts.seed,
        steps=opts.steps,
        curve=curve,
        validation=sizes,
    )


def change(first: dict, last: dict, key: str) -> str:
    return f"{first[key]:.3f} → {last[key]:.3f} ({last[key] - first[key]:+.3f})"


def table(runs: list[dict]) -> str:
    rows = []
    for r in runs:
        first, last = r["curve"][0], r["curve"][-1]
        rows.append(
            [
                r["model_world"],
                "+".join(map(str, r["levels"])),
                r["method"],
                f"{r['lr']:g}",
                r["seed"],
                change(first, last, "level 3"),
                change(first, last, "level 4"),
                change(first, last, "all"),
                f"{last['cpu']:.0f}",
            ]
        )
    headers = ["model", "training levels", "method", "lr", "seed", "level 3, step 0 → last", "level 4", "all", "CPU s"]
    sizes = runs[0]["validation"]
    return (
        f"Validation split: {sizes['3']} level-3 and {sizes['4']} level-4 problems (seed-1 test problems that no "
        f"benchmark trains or tests on), 8 samples each, temperature 1; {runs[0]['steps']} steps of 64 completions, "
        "constant learning rate. One training seed per row: read differences of a few hundredths as noise.\n\n"
        + harness.markdown_table(headers, rows)
    )


def main(argv: list[str] | None = None) -> int:
    parser = harness.benchmark_parser(__doc__, world=False)
    parser.add_argument("--model-world", default="mixed", help="whose model: level3 or mixed")
    parser.add_argument("--levels", type=int, nargs="+", default=None, help="training levels (default: the world's)")
    parser.add_argument("--method", default="GRPO@8")
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=0)
    for key in FULL:
        parser.add_argument("--" + key.replace("_", "-"), type=int, default=None)
    parser.add_argument("--dump", default=None, help="write this run as JSON (for --merge)")
    parser.add_argument("--merge", nargs="+", default=None, help="report earlier --dump files together")
    opts = harness.resolve(parser.parse_args(argv), FULL, QUICK)
    runs = harness.merge_runs(opts.merge)[0] if opts.merge else [run(opts)]
    if opts.dump:
        harness.dump_runs(opts.dump, runs)
    title = "Does RL improve a tiny world's model, level by level? (validation split, never the test prompts)"
    write = harness.writes(opts) and bool(opts.merge)
    harness.write_results(NAME, title, harness.command_line("rl_diagnosis.py", argv), table(runs), write=write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
