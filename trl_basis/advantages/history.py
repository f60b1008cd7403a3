"""BASIS with each prompt's own past rewards: an option beyond the paper (`docs/ALGORITHMS.md` §1e).

The batch-shared baseline `b_i` (§1b) knows prompt i only through its offline reference values; when a prompt is
revisited (epochs), its own past rewards say how the CURRENT policy does on it. This module combines the two as a
Beta-Bernoulli posterior mean whose prior is the batch baseline; the per-prompt counts are SPO's tracker
(`peers.spo_tracker_update`, started from zero counts).
"""

from __future__ import annotations

import json
from typing import Any

import torch

from ._utils import as_float64

__all__ = ["blend_with_history", "prompt_key"]


def prompt_key(prompt: Any) -> str:
    """The identity of a prompt for per-prompt state (history counts, trackers): its canonical JSON."""
    return json.dumps(prompt, sort_keys=True, default=str)


def blend_with_history(baseline, successes, failures, prior_weight) -> torch.Tensor:
    """The history-refined baseline of every row:

        b_i^h = (w · b_i + α_i) / (w + α_i + β_i)

    where ``b_i`` is the batch-shared baseline (which never contains ``r_i``), ``α_i`` and ``β_i`` are the
    discounted counts of prompt i's PAST successes and failures (``spo_tracker_update`` from 0, 0; rewards in
    [0, 1] count fractionally), and ``w = prior_weight`` (a number, or one per row) is the number of observations
    ``b_i`` is worth (the trainer uses the number of reference samples N). A prompt never seen before keeps ``b_i``; with ``w → 0`` the
    baseline becomes the prompt's own discounted mean (SPO's). Neither term depends on ``r_i``, so the gradient
    stays unbiased. NaN baselines stay NaN.
    """
    b = as_float64(baseline, "baseline")
    a = as_float64(successes, "successes", b.device)
    f = as_float64(failures, "failures", b.device)
    if a.shape != b.shape or f.shape != b.shape:
        raise ValueError(f"`successes` and `failures` must have the shape of `baseline` {tuple(b.shape)}")
    if bool((a < 0).any()) or bool((f < 0).any()):
        raise ValueError("`successes` and `failures` are discounted counts and must be >= 0")
    w = as_float64(prior_weight, "prior_weight", b.device)
    if not bool((w > 0).all()):
        raise ValueError(f"`prior_weight` must be > 0; got {prior_weight!r}")
    return (w * b + a) / (w + a + f)
