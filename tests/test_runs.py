"""trl_basis.runs: a run's folder, as a Python user resuming a run sees it (the command line: tests/test_cli.py)."""

from __future__ import annotations

import pytest

from trl_basis.runs import check_writable_folder, latest_complete_checkpoint, refuse_existing_run, resume_path


def _checkpoint(folder, step: int, complete: bool = True):
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if complete:
        (path / "trainer_state.json").write_text("{}")
    return str(path)


def test_latest_complete_checkpoint_skips_a_half_written_one(tmp_path, capsys):
    assert latest_complete_checkpoint(str(tmp_path / "missing")) is None
    _checkpoint(tmp_path, 2)
    ten = _checkpoint(tmp_path, 10)  # numerically after checkpoint-2, though not by name
    assert latest_complete_checkpoint(str(tmp_path)) == ten
    _checkpoint(tmp_path, 12, complete=False)
    assert latest_complete_checkpoint(str(tmp_path)) == ten
    assert "checkpoint-12 is incomplete" in capsys.readouterr().err
    assert resume_path(True, str(tmp_path)) == ten and resume_path("false", str(tmp_path)) is None
    assert resume_path(ten, str(tmp_path)) == ten


def test_the_checks_raise_one_line_value_errors(tmp_path):
    a_file = tmp_path / "f"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        check_writable_folder(str(a_file), "save_path")
    check_writable_folder(str(tmp_path / "new" / "sub"))  # created later: fine
    refuse_existing_run(str(tmp_path))
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(ValueError, match="already holds a run"):
        refuse_existing_run(str(tmp_path))
    with pytest.raises(ValueError, match="no complete checkpoint"):
        resume_path("true", str(tmp_path))
