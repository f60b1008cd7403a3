"""Quiet runs: `datasets` operations without progress bars (small, instant maps; one-line errors on bad input), and
no warnings the user cannot act on."""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager

#: Printed on every run by dependencies, with nothing for the user to change:
#: - transformers 5 renamed `gradient_checkpointing` to `activation_checkpointing`; GRPOConfig's own default (True)
#:   and TRL's internal `model.is_gradient_checkpointing` trigger the deprecation warnings, not the user's code;
#: - DeepSpeed's "Setting accelerator to CPU" notice whenever it is imported on a machine without a GPU.
_DEPRECATIONS = r"`(is_)?gradient_checkpointing` is deprecated"
_DEEPSPEED_NOTICE = "Setting accelerator to CPU"


class _DropMessage(logging.Filter):
    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def silence_unactionable_warnings() -> None:
    """Filter the messages in `_DEPRECATIONS` and `_DEEPSPEED_NOTICE` (idempotent; called when trl_basis loads).
    The logger filter is set on DeepSpeed's logger before DeepSpeed creates it, and it keeps it."""
    warnings.filterwarnings("ignore", message=_DEPRECATIONS, category=FutureWarning)
    logger = logging.getLogger("DeepSpeed")
    if not any(isinstance(f, _DropMessage) for f in logger.filters):
        logger.addFilter(_DropMessage(_DEEPSPEED_NOTICE))


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
