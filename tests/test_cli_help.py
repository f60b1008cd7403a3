"""`trl-basis --help` and fast errors: grouped main options with the run's true defaults, `--help-all` for the rest,
and no heavy import (torch, transformers, TRL, datasets) before training starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trl_basis import _cli_spec, cli

HEAVY = ("torch", "transformers", "trl", "datasets")
COMMANDS = [("train", "basis"), ("train", "maxpo"), ("train", "grpo"), ("estimate-references", "basis")]


def _argv(command: str, trainer: str) -> list[str]:
    return [command, "--trainer", trainer] if command == "train" else [command]


def test_the_options_spec_matches_the_parsers(monkeypatch):
    """`_cli_options.json` is what the real TrlParsers hold (regenerate: python -m trl_basis._cli_spec)."""
    monkeypatch.delenv("TRL_BASIS_CACHE", raising=False)
    saved = json.loads(Path(_cli_spec.SPEC_FILE).read_text())
    regenerate = "stale: regenerate it with python -m trl_basis._cli_spec"
    assert saved["fingerprint"] == _cli_spec.fingerprint(), regenerate
    assert json.loads(json.dumps(_cli_spec.build_spec())) == saved["parsers"], regenerate


def test_a_stale_spec_falls_back_to_the_parsers(monkeypatch):
    """An option added without regenerating the file is still known (the spec is then built from the parsers)."""
    monkeypatch.setattr(_cli_spec, "fingerprint", lambda: "a source file changed")
    _cli_spec.load.cache_clear()
    try:
        with open(_cli_spec.SPEC_FILE) as f:
            assert json.load(f)["fingerprint"] != _cli_spec.fingerprint()
        assert _cli_spec.load() == _cli_spec.build_spec()  # what the parsers hold now, not the file
    finally:
        _cli_spec.load.cache_clear()


@pytest.mark.parametrize(("command", "trainer"), COMMANDS)
def test_help_is_short_grouped_and_names_config_and_help_all(capsys, command, trainer):
    assert cli.main([*_argv(command, trainer), "--help"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert 40 < len(lines) < 150, len(lines)
    assert "--config FILE.yaml" in text and "--help-all" in text
    assert max(map(len, lines)) <= _cli_spec.HELP_WIDTH
    for title, rows in _cli_spec.help_entries(command, trainer, *cli.help_defaults(command, trainer)):
        assert f"{title}:" in text
        for name, _, _ in rows:
            assert f"--{name} " in text or f"--{name}," in text, name


def _same(shown, parsed) -> bool:
    if hasattr(parsed, "value"):  # enums
        parsed = parsed.value
    if parsed in (None, [], "none") or shown in (None, [], "none"):
        return parsed in (None, [], "none") and shown in (None, [], "none")
    if isinstance(parsed, list | tuple):
        return list(map(str, parsed)) == list(map(str, shown if isinstance(shown, list) else [shown]))
    if isinstance(parsed, float) or isinstance(shown, float):
        return float(shown) == pytest.approx(float(parsed))
    return str(shown) == str(parsed)


@pytest.mark.skipif(torch.cuda.is_available(), reason="--help shows the defaults of a machine without a GPU")
@pytest.mark.parametrize(("command", "trainer"), COMMANDS)
def test_help_shows_the_defaults_the_run_really_uses(capsys, command, trainer):
    """What `--help` prints as the default is what `trl-basis <command>` with no other option parses to (e.g.
    activation_checkpointing false, not GRPOConfig's true)."""
    parsed = cli.parse(command, _argv(command, trainer)[1:])
    capsys.readouterr()
    assert cli.main([*_argv(command, trainer), "--help"]) == 0
    text = capsys.readouterr().out
    for title, rows in _cli_spec.help_entries(command, trainer, *cli.help_defaults(command, trainer)):
        for name, shown, _ in rows:
            holder = next(obj for obj in parsed if hasattr(obj, name))
            value = "basis" if name == "trainer" else getattr(holder, name)  # --trainer's default, not the one given
            assert _same(shown, value), (title, name, shown, value)
            assert f"({_cli_spec.format_default(shown)})" in text
    assert "--activation_checkpointing, --gradient_checkpointing (false)" in text or command != "train"


def test_help_all_lists_every_option(capsys):
    assert cli.main(["train", "--help-all"]) == 0
    text = capsys.readouterr().out
    assert (
        len(text.splitlines()) > 1000 and "--gradient_accumulation_steps" in text and "--basis_temperature_num" in text
    )


def test_no_command_prints_usage_and_exits_2(capsys):
    assert cli.main([]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("usage: trl-basis") and not captured.out
    assert cli.main(["--help"]) == 0 and capsys.readouterr().out.startswith("usage: trl-basis")


def _fresh_process(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--help"],
        ["train", "--trainer", "maxpo", "--help"],
        ["estimate-references", "--help"],
        ["train", "--max_stepz", "3"],
        ["train", "--max_steps", "many"],
        ["train", "--bf16", "perhaps"],
        ["train", "--lr_scheduler_type", "fast"],
        ["train", "--trainer", "ppo"],
        ["train", "--model_name_or_path", "/no/such/model"],
        ["train", "--config", "{yaml}"],
        ["fine-tune"],
        [],
    ],
)
def test_help_and_argument_errors_import_nothing_heavy(argv, tmp_path):
    """The measure of "answers in well under 2 s" that does not depend on the machine's load: no torch,
    transformers, TRL or datasets is imported (importing them takes 3-10 s on 2 busy cores)."""
    config = tmp_path / "wrong_type.yaml"
    config.write_text("max_steps: 1.5\n")  # a YAML value of the wrong type
    argv = [str(config) if a == "{yaml}" else a for a in argv]
    code = (
        "import sys\nfrom trl_basis import cli\n"
        f"code = cli.main({argv!r})\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('EXIT', code, 'HEAVY', heavy)\n"
    )
    proc = _fresh_process(code)
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    expected = 0 if "--help" in argv else 2
    assert last == f"EXIT {expected} HEAVY []", (last, proc.stderr)
    if expected == 2:
        assert len(proc.stderr.strip().splitlines()) == 1 or not argv


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--max_steps", "many"], "argument --max_steps: invalid int value: 'many'"),
        (["--learning_rate", "fast"], "argument --learning_rate: invalid float value: 'fast'"),
        (["--bf16", "perhaps"], "argument --bf16: invalid bool value: 'perhaps'"),
        (["--lr_scheduler_type", "fast"], "argument --lr_scheduler_type: invalid choice: 'fast'"),
        (["--max-stepz", "3"], "unknown option --max_stepz (did you mean --max_steps?)"),
    ],
)
def test_fast_flag_errors_name_the_option(capsys, argv, fragment):
    assert cli.main(["train", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err, err
