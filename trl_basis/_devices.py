"""Device setup that accelerate does not do by itself."""

from __future__ import annotations

import os
from typing import Any


def deepspeed_without_gpu() -> dict[str, Any]:
    """DeepSpeed on CPU (tests, debugging; set DS_ACCELERATOR=cpu). accelerate drops DeepSpeed when `use_cpu=True`,
    and without a GPU it picks no process-group backend: set up its state for DeepSpeed on gloo, and have the trainer
    use it (`use_configured_state`)."""
    from accelerate import PartialState

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 or "LOCAL_RANK" in os.environ:
        previous = os.environ.get("ACCELERATE_USE_DEEPSPEED")
        os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
        PartialState(backend="gloo")
        if previous is None:
            del os.environ["ACCELERATE_USE_DEEPSPEED"]
        return {"use_cpu": False, "accelerator_config": {"use_configured_state": True}}
    return {"use_cpu": False}
