"""The package as a whole: nothing in it unpickles or evaluates strings."""

from __future__ import annotations

from pathlib import Path


def test_no_pickle_loading_and_no_eval_in_the_package():
    """torch.load only with weights_only=True, no pickle, no eval/exec on data, trust_remote_code never forced on."""
    import re

    package = Path(__file__).resolve().parents[1] / "trl_basis"
    for path in package.rglob("*.py"):
        text = path.read_text()
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, (path, call)
        assert not re.search(r"\b(pickle|dill|cloudpickle)\b", text), path
        assert not re.search(r"(?<![\w.])(eval|exec)\(", text), path
        assert "trust_remote_code=True" not in text, path
