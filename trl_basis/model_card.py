"""The model card (`README.md`) written next to every model a trainer of this package saves.

TRL's own card (`GRPOTrainer.create_model_card`) is written only for checkpoints and `push_to_hub`, links a local base
model as `https://huggingface.co/None`, and a LoRA save gets PEFT's generic card instead. This card names the method
(BASIS, MaxPO, or TRL's GRPO), its paper and BibTeX, the base model and the dataset, and the held-out results when
they were measured (`trl-basis train` measures them).
"""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path
from typing import Any

CARD_FILE = "README.md"

_TRL_CITATION = textwrap.dedent("""\
    @software{vonwerra2020trl,
      title   = {{TRL: Transformers Reinforcement Learning}},
      author  = {von Werra, Leandro and Belkada, Younes and Tunstall, Lewis and Beeching, Edward and Thrush, Tristan and Lambert, Nathan and Huang, Shengyi and Rasul, Kashif and Gallouédec, Quentin},
      license = {Apache-2.0},
      url     = {https://github.com/huggingface/trl},
      year    = {2020}
    }""")


def base_model_name(trainer) -> str | None:
    """The model the run started from (`model_name_or_path`; for a PEFT model, its base model's)."""
    config = getattr(trainer.model, "config", None)
    name = getattr(config, "_name_or_path", None)
    return str(name) if name else None


def _is_hub_id(name: str | None) -> bool:
    """`name` or `owner/name` that is not a local path: what the Hub metadata and links may carry."""
    if not name or os.path.exists(os.path.expanduser(name)):
        return False
    return re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?", name) is not None


def held_out_results(metrics: dict[str, Any], k: int | None) -> dict[str, Any] | None:
    """The part of `trl-basis train`'s metrics the card shows: pass@1 and pass@k before and after training."""
    before, after = metrics.get("before"), metrics.get("after")
    if not before or not after or metrics.get("interrupted"):
        return None
    return {
        "before": before,
        "after": after,
        "k": k,
        "num_prompts": metrics.get("num_eval_prompts"),
        "num_samples": metrics.get("eval_samples"),
    }


def _results_section(results: dict[str, Any] | None) -> str:
    if not results:
        return (
            "No held-out evaluation was recorded for this save (`trl-basis train` measures pass@1 and pass@k on "
            "held-out prompts before and after training and writes them here)."
        )
    before, after = results["before"], results["after"]
    rows = [("pass@1", before["accuracy"], after["accuracy"])]
    k = results.get("k")
    if k and k > 1 and str(k) in before.get("pass_at_k", {}) and str(k) in after.get("pass_at_k", {}):
        rows.append((f"pass@{k}", before["pass_at_k"][str(k)], after["pass_at_k"][str(k)]))
    table = "\n".join(f"| {name} | {b:.3f} | {a:.3f} | {a - b:+.3f} |" for name, b, a in rows)
    return (
        f"Held-out accuracy on {results.get('num_prompts')} prompts never trained on, "
        f"{results.get('num_samples')} sampled completions each (at the training temperature), measured by "
        f"`trl-basis train` before training and after step {after.get('step')}:\n\n"
        "| metric | before | after | change |\n|---|---|---|---|\n" + table
    )


def model_card_text(
    trainer,
    model_name: str,
    dataset_name: str | None = None,
    results: dict[str, Any] | None = None,
    tags: list[str] | None = None,
) -> str:
    """The card's markdown: YAML metadata (base model and dataset only when they are Hub names), then the text."""
    from huggingface_hub import ModelCardData

    method = getattr(trainer, "_name", type(trainer).__name__)
    paper = getattr(trainer, "_paper", {}) or {}
    estimator = getattr(getattr(trainer, "args", None), "advantage_estimator", None)
    if estimator is not None and estimator != getattr(trainer, "_paper_estimator", estimator):
        # Another registered estimator in this trainer (a peer, a user's own): not the paper's method.
        method, paper = f"the `{estimator}` advantage estimator (in {type(trainer).__name__})", {}
    base = base_model_name(trainer)
    data = ModelCardData(
        base_model=base if _is_hub_id(base) else None,
        datasets=[dataset_name] if _is_hub_id(dataset_name) else None,
        library_name="transformers",
        model_name=model_name,
        tags=sorted({"generated_from_trainer", *getattr(trainer, "_tag_names", []), *(tags or [])}),
    )
    base_text = (
        f"[{base}](https://huggingface.co/{base})" if _is_hub_id(base) else f"`{base}`" if base else "a base model"
    )
    if dataset_name:
        data_text = (
            f"the [{dataset_name}](https://huggingface.co/datasets/{dataset_name}) dataset"
            if _is_hub_id(dataset_name)
            else f"{dataset_name}"
        )
    else:
        data_text = "a dataset that was not named (set `trainer.model_card_dataset` to name it)"
    paper_text = f", the method of [{paper['title']}](https://arxiv.org/abs/{paper['id']})" if paper.get("id") else ""
    sections = [
        f"---\n{data.to_yaml()}\n---",
        f"# Model card for {model_name}",
        f"This model is a fine-tuned version of {base_text} on {data_text}. It was trained with **{method}**"
        f"{paper_text}, using `{type(trainer).__name__}` of `trl_basis`, on top of "
        "[TRL](https://github.com/huggingface/trl).",
        "## Held-out results\n\n" + _results_section(results),
        "## Quick start\n\n```python\nfrom transformers import pipeline\n\n"
        f'generator = pipeline("text-generation", model="{model_name}")\n'
        'print(generator([{"role": "user", "content": "What is 48 + 7?"}], max_new_tokens=64, return_full_text=False)'
        '[0]["generated_text"])\n```',
        "## Training procedure\n\n" + _procedure(trainer),
        "## Citations\n\n"
        + (f"Cite {method} as:\n\n```bibtex\n{paper['citation']}\n```\n\n" if paper.get("citation") else "")
        + f"Cite TRL as:\n\n```bibtex\n{_TRL_CITATION}\n```",
    ]
    return "\n\n".join(sections) + "\n"


def _procedure(trainer) -> str:
    args = trainer.args
    import torch
    import transformers
    import trl

    lines = [
        f"- trainer: `{type(trainer).__name__}` ({getattr(trainer, '_name', '')})",
        f"- steps: {trainer.state.global_step}, learning rate {args.learning_rate:g}, global generation batch "
        f"{args.generation_batch_size} completions, {getattr(args, 'num_generations', 1)} per prompt",
    ]
    if hasattr(args, "max_k"):
        lines.append(
            f"- K of the max@K objective: {args.max_k}" + (f" → {args.max_k_final}" if args.max_k_final else "")
        )
    if hasattr(args, "num_reference_samples"):
        lines.append(f"- reference samples per prompt (offline stage): {args.num_reference_samples}")
    lines.append(f"- TRL {trl.__version__}, Transformers {transformers.__version__}, PyTorch {torch.__version__}")
    return "\n".join(lines)


def write_model_card(
    trainer,
    output_dir: str,
    dataset_name: str | None = None,
    results: dict[str, Any] | None = None,
    model_name: str | None = None,
    tags: list[str] | None = None,
) -> str | None:
    """Write the card to `output_dir/README.md` (main process only, replacing PEFT's generic card); returns its path.

    `dataset_name` and `results` default to the trainer's `model_card_dataset` and `model_card_results` attributes
    (the CLI sets them), else the training dataset's own name when it has one.
    """
    if not trainer.is_world_process_zero():
        return None
    dataset_name = dataset_name or getattr(trainer, "model_card_dataset", None) or _dataset_name(trainer)
    results = results if results is not None else getattr(trainer, "model_card_results", None)
    if model_name is None:
        hub_id = getattr(trainer.args, "hub_model_id", None)
        model_name = hub_id.split("/")[-1] if hub_id else Path(os.path.abspath(output_dir)).name
    text = model_card_text(trainer, model_name, dataset_name, results, tags)
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, CARD_FILE)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def _dataset_name(trainer) -> str | None:
    info = getattr(getattr(trainer, "train_dataset", None), "info", None)
    return getattr(info, "dataset_name", None) or None
