"""`trl_basis/models.py`: a model path is checked (config, readable weights) before anything loads."""

from __future__ import annotations

from pathlib import Path

import pytest
from _trainer_utils import tiny_model_path

from trl_basis.models import check_model


def _copy_tiny_model(tmp_path) -> Path:
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_path(), folder)
    return folder


def test_a_model_folder_without_weights_or_with_corrupt_weights(tmp_path):
    folder = _copy_tiny_model(tmp_path)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:1000])  # truncated
    with pytest.raises(ValueError, match="cannot be read .* corrupt or truncated"):
        check_model(str(folder))
    weights.unlink()
    with pytest.raises(ValueError, match="has a config.json but no weights"):
        check_model(str(folder))
