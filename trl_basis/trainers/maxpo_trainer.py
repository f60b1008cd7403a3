"""MaxPOTrainer: group sampling that optimises max@K / pass@K with the Leave-Two-Out advantage (ALGORITHMS.md §2)."""

from __future__ import annotations

import textwrap
from typing import Any

from datasets import Dataset

from ..advantages.estimators import current_k
from ..advantages.scaling import normalize_then_sum
from ._trl_bridge import AdvantageEstimatorTrainer
from .maxpo_config import MaxPOConfig


class MaxPOTrainer(AdvantageEstimatorTrainer):
    """Trainer for MaxPO ([arXiv 2606.06080](https://arxiv.org/abs/2606.06080)), a drop-in `GRPOTrainer`.

    Each prompt gets `num_generations` completions. Their advantages target the max@K objective (pass@K for binary
    rewards) with the Leave-Two-Out estimator (`advantage_estimator="l2o"`; any registered group estimator can be
    chosen instead): unbiased, and exactly centred in every group. Groups may span
    processes: advantages are computed on the gathered global batch and then sliced per process. A group with
    unscorable completions (every reward function returned None) is estimated on its scored completions only, and
    gets zero advantages when fewer than K+1 remain.

    Arguments are those of `GRPOTrainer`; `args` is a [`MaxPOConfig`].
    """

    _tag_names = ["trl", "maxpo", "trl_basis"]
    _group = True  # groups of num_generations completions: the estimators registered with group=True
    _name = "MaxPO"
    _paper_estimator = "l2o"  # the model card cites the paper only for this estimator
    _paper = {
        "title": "On Advantage Estimates for Max@K Policy Gradients",
        "id": "2606.06080",
        # docstyle-ignore
        "citation": textwrap.dedent("""\
            @article{takashiro2026maxpo,
                title        = {{On Advantage Estimates for Max@K Policy Gradients}},
                author       = {Shota Takashiro and Soichiro Nishimori and Paavo Parmas and Yongmin Kim and Kohsei Matsutani and Gouki Minegishi and Yusuke Iwasawa and Takeshi Kojima and Yutaka Matsuo},
                year         = 2026,
                eprint       = {arXiv:2606.06080},
            }"""),
    }

    _estimator_fields = ("num_generations", "max_k", "max_k_final", "advantage_estimator")
    _aggregations = ("sum_then_normalize", "normalize_then_sum")

    def __init__(self, model, reward_funcs=None, args: MaxPOConfig | None = None, **kwargs):
        if args is None:
            model_name = model if isinstance(model, str) else model.config._name_or_path
            args = MaxPOConfig(f"{str(model_name).split('/')[-1]}-MaxPO")
        if not isinstance(args, MaxPOConfig):
            raise TypeError(f"MaxPOTrainer needs a MaxPOConfig; got {type(args).__name__}.")
        # Before the model loads; with environments the dataset may hold only an `environment` column.
        _check_size(kwargs.get("train_dataset"), args, environment=kwargs.get("environment_factory") is not None)
        super().__init__(model, reward_funcs, args=args, **kwargs)

    def aggregate_rewards(self, rewards_per_func):
        """`normalize_then_sum`: max@K of the aggregated reward `Σ_f w_f (r_f − group mean) / group std` (each reward
        function normalised within the group first, as TRL does); `sum_then_normalize`: of the weighted sum."""
        if self.multi_objective_aggregation == "normalize_then_sum":
            return normalize_then_sum(rewards_per_func, self.reward_weights, self.num_generations)
        return super().aggregate_rewards(rewards_per_func)

    @property
    def current_k(self) -> int:
        """K in use now: `max_k`, or its linear anneal towards `max_k_final` over `max_steps`."""
        return current_k(self.args, self.state.global_step, self.state.max_steps)


def _check_size(dataset: Any, args: MaxPOConfig, environment: bool = False) -> None:
    """A map-style dataset with fewer prompts than one generation batch would train 0 steps without a word."""
    if not isinstance(dataset, Dataset):
        return  # None (environment-owned data) and iterable datasets: TRL's own checks apply
    if "prompt" not in dataset.column_names and not environment:
        raise ValueError(
            f"train_dataset has no 'prompt' column (columns: {dataset.column_names}); add one in TRL's format "
            "(a string, or a list of chat messages)."
        )
    prompts_per_batch = args.generation_batch_size // args.num_generations
    if len(dataset) < prompts_per_batch:
        raise ValueError(
            f"Only {len(dataset)} training prompts, fewer than one generation batch of {prompts_per_batch} prompts "
            f"(generation_batch_size={args.generation_batch_size} / num_generations={args.num_generations}): "
            "training would run 0 steps. Use more prompts or a smaller per_device_train_batch_size/"
            "steps_per_generation."
        )
