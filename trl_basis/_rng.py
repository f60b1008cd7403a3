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
    generator and every CUDA device's, even when the block raises.

    A pass that draws only sometimes (the offline stage samples on a cache miss, not on a hit) would otherwise make
    the same seeded command train differently depending on the state of a cache.
    """
    python, numpy_state, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy_state)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def derived_seed(*parts: object) -> int:
    """A seed in [0, 2**32) determined by `parts` (e.g. the run's seed, a chunk and a rank), for numpy too."""
    return int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest(), 16) % 2**32
