"""Random streams: leave the training's as they were found (the offline stage must not shift them)."""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Iterator

import numpy as np
import torch


@contextlib.contextmanager
def preserved_random_state() -> Iterator[None]:
    """Run the block, then put back every random stream training draws from: Python's `random`, numpy, torch's CPU
    generator and every accelerator device's (CUDA, XPU, MPS; `torch.manual_seed` seeds them all), even when the
    block raises.

    A pass that draws only sometimes (the offline stage samples on a cache miss, not on a hit) would otherwise make
    the same seeded command train differently depending on the state of a cache.
    """
    python, numpy_state, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    devices = _device_states()
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy_state)
        torch.set_rng_state(cpu)
        for module, state in devices:
            if hasattr(module, "set_rng_state_all"):
                module.set_rng_state_all(state)
            else:
                module.set_rng_state(state)


def _device_states() -> list[tuple[object, object]]:
    """(module, state) of each available accelerator's generators."""
    states = []
    for name in ("cuda", "xpu"):
        module = getattr(torch, name, None)
        if module is not None and module.is_available():
            states.append((module, module.get_rng_state_all()))
    if torch.backends.mps.is_available():
        states.append((torch.mps, torch.mps.get_rng_state()))
    return states


def derived_seed(*parts: object) -> int:
    """A seed in [0, 2**32) determined by `parts` (e.g. the run's seed, a chunk and a rank), for numpy too."""
    return int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest(), 16) % 2**32
