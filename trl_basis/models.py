"""How a run loads its model: checks of a model path before anything loads (a local folder must hold a config and
readable weights, a Hub name must be in the cache when the hub is offline; both raise `ValueError` with a one-line
message), and `model_init_kwargs`, the loading options of TRL's `ModelConfig` for a trainer's config."""

from __future__ import annotations

import os
from typing import Any


def check_model(name: str) -> None:
    """Fail fast when `name` is neither a local model folder nor a model that can be fetched."""
    path = os.path.expanduser(name)
    if os.path.isdir(path):
        if not os.path.exists(os.path.join(path, "config.json")):
            raise ValueError(f"model folder {name!r} has no config.json; point --model_name_or_path at a saved model.")
        _check_weights(name, path)
        return
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1 or os.path.exists(path)
    if looks_local:
        raise ValueError(
            f"model path {name!r} does not exist; fix --model_name_or_path (or leave it unset for the tiny model)."
        )
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        from huggingface_hub import try_to_load_from_cache

        try:
            cached = try_to_load_from_cache(name, "config.json")
        except Exception:  # noqa: BLE001 - an invalid repo id is simply "not cached"
            cached = None
        if not isinstance(cached, str):
            raise ValueError(
                f"model {name!r} is not a local folder and not in the Hugging Face cache, and HF_HUB_OFFLINE is set; "
                "download it first or pass a local --model_name_or_path."
            )


def _check_weights(name: str, path: str) -> None:
    """A model folder needs weights, and safetensors files must have a readable header (checked without loading)."""
    files = os.listdir(path)
    weights = [f for f in files if f.endswith((".safetensors", ".bin", ".pt", ".pth", ".msgpack", ".h5"))]
    if not weights and not any(f.endswith(".index.json") for f in files):
        raise ValueError(
            f"model folder {name!r} has a config.json but no weights (*.safetensors or *.bin); point "
            "--model_name_or_path at a complete saved model."
        )
    from safetensors import safe_open

    for file in (f for f in weights if f.endswith(".safetensors")):
        try:
            with safe_open(os.path.join(path, file), framework="pt") as handle:
                handle.keys()
        except Exception as err:  # noqa: BLE001 - any header error means a corrupt or truncated file
            raise ValueError(
                f"model weights {os.path.join(name, file)!r} cannot be read ({' '.join(str(err).split())[:120]}); "
                "the file is corrupt or truncated: save or download the model again."
            ) from err


def model_init_kwargs(training_args, model_args) -> dict[str, Any]:
    """The `model_init_kwargs` a trainer's config (`training_args`) loads the model with, as TRL's `grpo.py` builds
    them (both `trl-basis` commands use it): `ModelConfig`'s revision, attention, dtype and quantisation and the
    config's `trust_remote_code`, under the config's own `model_init_kwargs`."""
    from trl import get_quantization_config

    kwargs = dict(
        revision=model_args.model_revision,
        trust_remote_code=training_args.trust_remote_code,
        attn_implementation=model_args.attn_implementation,
        dtype=model_args.dtype,
        quantization_config=get_quantization_config(model_args),
    )
    return {**{k: v for k, v in kwargs.items() if v is not None}, **(training_args.model_init_kwargs or {})}
