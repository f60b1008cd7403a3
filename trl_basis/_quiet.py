"""`datasets` operations without progress bars (small, instant maps; one-line errors on bad input)."""

from __future__ import annotations

from contextlib import contextmanager


def quiet_map(dataset, function):
    """`dataset.map(function)` without a progress bar (these maps are small and instant)."""
    with no_dataset_progress_bars():
        return dataset.map(function)


@contextmanager
def no_dataset_progress_bars():
    """Silence `datasets`' progress bars (split generation, map, filter), e.g. so bad input gives one line only."""
    from datasets.utils.logging import disable_progress_bar, enable_progress_bar, is_progress_bar_enabled

    was_enabled = is_progress_bar_enabled()
    disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            enable_progress_bar()
