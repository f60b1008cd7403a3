"""`trl_basis/reward_registry.py`: reward functions by name or import path, checked before any model loads."""

from __future__ import annotations

import pytest


def test_reward_modules_never_shadow_installed_packages(tmp_path, monkeypatch):
    """The working folder goes LAST on sys.path: a stray matplotlib.py there is not what `import matplotlib` finds."""
    import sys

    from trl_basis.reward_registry import resolve_reward_funcs

    (tmp_path / "my_rewards.py").write_text(
        "def score(prompts, completions, **kw):\n    return [1.0] * len(prompts)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    (func,) = resolve_reward_funcs(["my_rewards.score"])
    assert func.__name__ == "score" and sys.path[-1] == str(tmp_path)
    assert all(sys.path.index(p) < sys.path.index(str(tmp_path)) for p in sys.path if "site-packages" in p)


def test_a_reward_function_with_the_wrong_signature(tmp_path, monkeypatch):
    import sys

    from trl_basis.reward_registry import resolve_reward_funcs

    (tmp_path / "bad_rewards.py").write_text("def score(completions):\n    return [1.0]\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [*sys.path, str(tmp_path)])
    with pytest.raises(ValueError, match=r"has the signature \(completions\); TRL calls it as .* \*\*kwargs"):
        resolve_reward_funcs(["bad_rewards.score"])
