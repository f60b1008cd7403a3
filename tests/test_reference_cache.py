"""`trl_basis/reference_cache.py`: the reference-reward checks and the on-disk cache (a cache that fails validation is
recomputed, never used)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _trainer_utils import tiny_model_path


@pytest.mark.parametrize(
    ("rows", "fragment"),
    [
        ([[0.0, 1.0], "01"], "row 1 of column 'refs' is '01' (str), not a list"),
        ([[0.0, 1.0], 0.5], "row 1 of column 'refs' is 0.5 (float), not a list"),
        ([[0.0, 1.7]], "row 0 of column 'refs' holds 1.7, outside [0, 1]"),
        ([[-0.2, 1.0]], "holds -0.2, outside [0, 1]"),
        ([[0.0, "1"]], "holds '1' (str), not a number"),
        ([[0.0, True]], "holds True (bool), not a number"),
        ([[]], "row 0 of column 'refs' has no reference reward"),
        ("abc", "must hold one list of rewards per prompt"),
    ],
)
def test_bad_reference_rewards_get_one_line_naming_column_and_row(rows, fragment):
    from trl_basis.reference_cache import check_reference_rewards

    with pytest.raises(ValueError, match="num_reference_samples") as info:
        check_reference_rewards(rows, "refs")
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_missing_samples_and_ragged_rows_are_valid_reference_rewards():
    from trl_basis.reference_cache import reference_rewards_problem

    assert reference_rewards_problem([[0.0, None, 1.0], [float("nan"), 1.0], [1]], "refs") is None


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"reference_rewards": [[0.0, 1.0], [1.0', "cannot be read (JSONDecodeError)"),
        ("garbage", "cannot be read (JSONDecodeError)"),
        ("", "cannot be read (JSONDecodeError)"),
        ('{"rewards": []}', "cannot be read (KeyError)"),
        ("[[0.0, 1.0], [1.0, 0.0]]", "must hold one list of rewards per prompt"),
        ('{"reference_rewards": [[7.0, -2.0], [0.0, 3.0]]}', "holds 7.0, outside [0, 1]"),
        ('{"reference_rewards": [[0.0, 1.0]]}', "it holds 1 prompts, not 2"),
        ('{"reference_rewards": [0.5, 0.5]}', "is 0.5 (float), not a list"),
        # Rows of another length were sampled with another num_reference_samples: never use them.
        ('{"reference_rewards": [[0.0, 1.0], [1.0]]}', "row 1 holds 1 rewards, not num_reference_samples=2"),
        ('{"reference_rewards": [[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]}', "row 0 holds 3 rewards, not"),
    ],
)
def test_an_invalid_cache_entry_is_reported_and_never_used(tmp_path, capsys, content, reason):
    from trl_basis.reference_cache import load_cached_rewards

    _write(tmp_path / "key.json", content)
    assert load_cached_rewards(str(tmp_path), "key", 2, num_samples=2) is None
    err = capsys.readouterr().err.strip()
    assert err.startswith("[trl_basis] warning: ignoring the invalid reference-reward cache entry")
    assert reason in err and err.endswith("recomputing it.") and "\n" not in err


def test_a_valid_cache_entry_round_trips(tmp_path):
    from trl_basis.reference_cache import load_cached_rewards, save_cached_rewards

    save_cached_rewards(str(tmp_path / "c"), "key", [[0.0, 1.0], [1.0, None]], {"meta": 1})
    got = load_cached_rewards(str(tmp_path / "c"), "key", 2, num_samples=2)
    assert got[0] == [0.0, 1.0] and got[1][0] == 1.0 and got[1][1] != got[1][1]  # None comes back as NaN
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["key.json"]  # no temporary left behind


def test_the_cache_key_covers_every_column_the_rewards_read():
    from trl_basis.reference_cache import reference_cache_key

    rows = [{"prompt": [{"role": "user", "content": "1+2="}], "answer": "3"}]
    changed = [{"prompt": [{"role": "user", "content": "1+2="}], "answer": "4"}]
    assert reference_cache_key({"m": 1}, rows) != reference_cache_key({"m": 1}, changed)
    assert reference_cache_key({"m": 1}, rows) == reference_cache_key({"m": 1}, [dict(rows[0])])


def test_the_model_fingerprint_holds_revision_and_commit():
    from transformers import AutoConfig

    from trl_basis.reference_cache import model_fingerprint

    class Model:
        config = AutoConfig.from_pretrained(tiny_model_path())

    Model.config._commit_hash = "abc123"
    fingerprint = model_fingerprint(Model(), revision="v2")
    assert fingerprint["revision"] == "v2" and fingerprint["commit"] == "abc123"
    assert model_fingerprint(Model(), revision="v3") != fingerprint


def test_an_unusable_cache_dir_is_a_warning_not_a_crash(tmp_path, capsys):
    from trl_basis.reference_cache import cache_is_writable, save_cached_rewards

    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert not cache_is_writable(str(a_file))
    assert "is not usable" in capsys.readouterr().err
    assert save_cached_rewards(str(a_file), "key", [[1.0]], {}) is None
    assert "could not write the reference-reward cache entry" in capsys.readouterr().err


def test_an_interrupted_cache_write_leaves_no_entry(tmp_path, monkeypatch):
    """Written through a temporary file and a rename: a crash (here Ctrl-C) in the middle leaves nothing behind."""
    from trl_basis import reference_cache as references

    def half_then_interrupt(obj, f, **kwargs):
        f.write('{"reference_rewards": [[0.0, 1')
        raise KeyboardInterrupt

    monkeypatch.setattr(references.json, "dump", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        references.save_cached_rewards(str(tmp_path), "key", [[0.0, 1.0]], {})
    assert list(tmp_path.iterdir()) == []
