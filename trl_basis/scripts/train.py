"""`trl-basis train`: train BASIS, MaxPO or GRPO and measure held-out accuracy before, during and after.

Shaped like TRL's `trl/scripts/grpo.py`: `make_parser()` builds the `TrlParser` (script arguments, the trainer's
config class, TRL's `ModelConfig`) and `main(script_args, training_args, model_args)` writes the model,
`metrics.json` and `training_curves.png` to `output_dir`. Run it as `trl-basis train` (one-line errors, defaults for
the built-in task: `trl_basis.cli`) or as `python -m trl_basis.scripts.train --config examples/tiny_basis.yaml`.
Ctrl-C during training saves what was trained, then raises `Interrupted`.
"""

from __future__ import annotations

import os
import sys
import time

from .._threads import choose_num_threads
from ..callbacks import CompactProgressCallback, HeldOutAccuracyCallback
from ..cli import Interrupted, trainer_name
from ..data import default_reward_names, is_builtin_task, load_task
from ..model_card import held_out_results, write_model_card
from ..models import model_init_kwargs
from ..reporting import METRICS_FILE, PLOT_FILE, report, run_metrics, write_outputs
from ..reward_registry import resolve_reward_funcs
from ..trainers.registry import config_class, trainer_class
from .arguments import TrainScriptArguments

__all__ = ["METRICS_FILE", "PLOT_FILE", "Interrupted", "main", "make_parser"]


def make_parser(trainer: str = "basis", parser_class=None):
    """The `TrlParser` (or `parser_class`) of `trl-basis train --trainer <trainer>`: `TrainScriptArguments`, the
    trainer's config class (from the trainer registry) and TRL's `ModelConfig`."""
    from trl import ModelConfig, TrlParser

    types = (TrainScriptArguments, config_class(trainer), ModelConfig)
    return (parser_class or TrlParser)(types, prog=f"trl-basis train --trainer {trainer}")


def main(script_args: TrainScriptArguments, training_args, model_args, started: float | None = None) -> dict:
    """Train, evaluate before/during/after, save the model, `metrics.json` and the plot. Returns the metrics."""
    started = time.perf_counter() if started is None else started
    from accelerate import PartialState

    state = PartialState()
    say = print if state.is_main_process else (lambda *a, **k: None)
    threads = choose_num_threads() if state.device.type == "cpu" else None  # free usable cores (trl_basis._threads)
    if threads is not None:
        say(
            f"[trl-basis] {threads} torch thread(s): the usable CPU cores that are not busy (OMP_NUM_THREADS overrides)"
        )
    train, test, description = load_task(script_args, test="required" if script_args.eval_prompts > 0 else "none")
    test = None if test is None else test.select(range(min(script_args.eval_prompts, len(test))))
    reward_funcs = resolve_reward_funcs(default_reward_names(script_args))
    training_args.model_init_kwargs = model_init_kwargs(training_args, model_args)
    say(
        f"[trl-basis] {script_args.trainer} on {description}; model {model_args.model_name_or_path}; "
        f"{training_args.max_steps} steps; output {training_args.output_dir}"
    )
    setup_start = time.perf_counter()
    trainer = build_trainer(script_args.trainer, model_args, training_args, train, reward_funcs)
    setup_seconds = time.perf_counter() - setup_start
    evaluation = (script_args.eval_samples, script_args.eval_points, script_args.eval_batch_size, training_args.seed)
    callback = HeldOutAccuracyCallback(trainer, test, reward_funcs, *evaluation, printer=say)
    if test is not None:
        trainer.add_callback(callback)
    if not training_args.disable_tqdm:
        from transformers.trainer_callback import ProgressCallback

        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(CompactProgressCallback())
    train_start = time.perf_counter()
    interrupted = train_keeping_work(trainer, training_args.resume_from_checkpoint)
    metrics = dict(
        interrupted=interrupted, setup_seconds=setup_seconds, train_seconds=time.perf_counter() - train_start
    )
    trainer.save_model(training_args.output_dir)
    facts = dict(name=script_args.trainer, model=model_args.model_name_or_path, dataset=description)
    metrics.update(run_metrics(trainer, callback, test, **facts, eval_samples=script_args.eval_samples))
    if state.is_main_process:
        metrics["wall_seconds"] = time.perf_counter() - started
        write_outputs(metrics, training_args.output_dir, plot=script_args.plot)
        # TRL's grpo.py names the dataset on the card; we add the held-out numbers just measured.
        dataset = script_args.dataset_name if not is_builtin_task(script_args.dataset_name) else f"the {description}"
        results = held_out_results(metrics, metrics["target_k"] or script_args.eval_samples)
        write_model_card(trainer, training_args.output_dir, dataset_name=dataset, results=results)
        report(metrics, say)
    if interrupted:
        raise Interrupted(
            f"interrupted at step {trainer.state.global_step} of {trainer.state.max_steps}; the model and the metrics "
            f"so far are saved in {os.path.abspath(training_args.output_dir)}."
        )
    state.wait_for_everyone()
    return metrics


def build_trainer(name: str, model_args, training_args, train, reward_funcs):
    """The registered trainer `name`; BASIS's offline stage runs here, so that it counts as setup and a Ctrl-C
    during it is "before training started"."""
    from trl import get_peft_config

    kwargs = dict(
        reward_funcs=reward_funcs, args=training_args, train_dataset=train, peft_config=get_peft_config(model_args)
    )
    trainer = trainer_class(name)(model=model_args.model_name_or_path, **kwargs)
    if hasattr(trainer, "prepare_reference_rewards"):
        trainer.prepare_reference_rewards()
    return trainer


def train_keeping_work(trainer, resume_from_checkpoint) -> bool:
    """`trainer.train()`; returns True when Ctrl-C stopped it (what was trained is kept, the bar closed)."""
    try:
        trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    except KeyboardInterrupt:
        for cb in trainer.callback_handler.callbacks:  # on_train_end never ran: close the bar ourselves
            if getattr(cb, "training_bar", None) is not None:
                cb.training_bar.close()
                cb.training_bar = None
        return True
    return False


if __name__ == "__main__":
    main(*make_parser(trainer_name(sys.argv[1:])).parse_args_and_config())
