"""The notebooks in notebooks/ run top to bottom, and are committed without outputs.

Each notebook is executed with nbclient in a fresh kernel of the interpreter running the tests (so it works from a
fresh `pip install -e ".[dev,math]"` venv, whatever kernels the machine has installed), offline, on CPU, with its
parameters cell pointed at the package's tiny model and built-in arithmetic task through `TRL_BASIS_NB_*`
environment variables, which the kernel inherits. The kernel's working directory is a temporary folder.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest

from trl_basis.tasks import tiny_model_path

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
KERNEL_NAME = "trl-basis-test-python3"

# Shared by every notebook: the tiny world, offline, CPU only.
COMMON_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "WANDB_MODE": "disabled",
    "TOKENIZERS_PARALLELISM": "false",
    "CUDA_VISIBLE_DEVICES": "",
    # One thread: the tiny model gains nothing from more, and on a shared 2-core machine extra torch threads
    # oversubscribe the CPU and make every step about 10x slower.
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TRL_BASIS_NB_DATASET": "tiny",
    "TRL_BASIS_NB_USE_CPU": "1",
    "TRL_BASIS_NB_BF16": "0",
    "TRL_BASIS_NB_GRADIENT_CHECKPOINTING": "0",
    "TRL_BASIS_NB_MAX_COMPLETION_LENGTH": "8",
    "TRL_BASIS_NB_EVAL_BATCH_SIZE": "64",
    "TRL_BASIS_NB_LEARNING_RATE": "2e-4",
    "TRL_BASIS_NB_USE_LORA": "1",
    "TRL_BASIS_NB_LORA_R": "4",
    "TRL_BASIS_NB_LORA_ALPHA": "8",
    "TRL_BASIS_NB_PUSH_TO_HUB": "0",
    "TRL_BASIS_NB_SEED": "0",
}

# Per notebook: sizes for a run of well under ~90 s on 2 CPU cores, and the figures it must save.
NOTEBOOKS = {
    "basis_gsm8k.ipynb": {
        "env": {
            # 64 prompts x 8 reference samples; the tiny model leaves >= 8 (one step's batch) with mixed
            # reference rewards after BASIS drops the always/never-solved ones.
            "TRL_BASIS_NB_NUM_TRAIN": "64",
            "TRL_BASIS_NB_NUM_EVAL": "8",
            "TRL_BASIS_NB_EVAL_SAMPLES": "4",
            "TRL_BASIS_NB_NUM_REFERENCE_SAMPLES": "8",
            "TRL_BASIS_NB_MAX_STEPS": "3",
            "TRL_BASIS_NB_PER_DEVICE_BATCH_SIZE": "4",
            "TRL_BASIS_NB_GRAD_ACCUM": "2",
        },
        "figures": ["reference_pass_rates.png", "basis_training_curves.png", "basis_accuracy.png"],
    },
    "maxpo_pass_at_k.ipynb": {
        "env": {
            "TRL_BASIS_NB_NUM_TRAIN": "32",
            "TRL_BASIS_NB_NUM_EVAL": "6",
            "TRL_BASIS_NB_EVAL_SAMPLES": "16",
            "TRL_BASIS_NB_NUM_GENERATIONS": "4",
            "TRL_BASIS_NB_MAX_K": "2",
            "TRL_BASIS_NB_MAX_STEPS": "2",
            "TRL_BASIS_NB_PER_DEVICE_BATCH_SIZE": "8",
            "TRL_BASIS_NB_GRAD_ACCUM": "2",
        },
        "figures": ["pass_at_k.png"],
    },
}


def test_the_default_evaluation_measures_a_change_beyond_noise():
    """200 held-out prompts by default: the standard error of an accuracy change is a few hundredths there, where
    8 prompts x 4 samples (the old tiny setting, "0.219 -> 0.250") put a one-answer change within noise."""
    first = next(
        c for c in nbformat.read(NOTEBOOK_DIR / "basis_gsm8k.ipynb", as_version=4).cells if c.cell_type == "code"
    )
    match = re.search(r'NUM_EVAL = param\("NUM_EVAL", (\d+), int\)', first.source)
    assert match and int(match.group(1)) >= 200


def test_the_documented_launcher_is_installed_by_the_dev_extras():
    """notebooks/README.md runs the notebooks with `jupyter execute` (nbclient, a dev extra), not a front end that
    the extras do not install."""
    import subprocess

    readme = (NOTEBOOK_DIR / "README.md").read_text()
    assert "jupyter execute notebooks/basis_gsm8k.ipynb" in readme
    assert all("pip install jupyterlab" in line for line in readme.splitlines() if "jupyter lab" in line)
    launcher = Path(sys.executable).parent / "jupyter-execute"
    assert launcher.is_file(), f"{launcher} missing: nbclient (a dev extra) installs it"
    proc = subprocess.run([str(launcher), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "--output" in proc.stdout


def test_every_notebook_is_tested():
    assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_committed_notebook_has_no_outputs_and_one_parameters_cell(name):
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    nbformat.validate(nb)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code_cells:
        assert cell.outputs == [], f"{name}: a code cell has outputs; clear them before committing"
        assert cell.execution_count is None, f"{name}: a code cell has an execution count; clear it"
    for cell in nb.cells:
        assert "attachments" not in cell or not cell.attachments, f"{name}: a cell has attachments"
    # The first code cell holds every parameter, each overridable from the environment; none elsewhere.
    first = code_cells[0].source
    assert 'MODEL = param("MODEL", "Qwen/Qwen2.5-0.5B-Instruct")' in first
    assert 'DATASET = param("DATASET", "openai/gsm8k")' in first
    assert 'PUSH_TO_HUB = param("PUSH_TO_HUB", False, bool)' in first or "PUSH_TO_HUB" not in first
    assert all("param(" not in c.source for c in code_cells[1:]), f"{name}: parameters outside the first code cell"
    for line in first.splitlines():
        constant = re.match(r"([A-Z][A-Z0-9_]*) = ", line)
        if constant and constant.group(1) != "HAS_GPU":
            assert f'param("{constant.group(1)}", ' in line, f"{name}: {constant.group(1)} is not overridable"
    for var in NOTEBOOKS[name]["env"]:
        assert f'param("{var.removeprefix("TRL_BASIS_NB_")}"' in first, f"{name}: the test sets unknown {var}"


def _kernel_manager(tmp_path: Path):
    """A kernel manager whose only kernel spec runs ipykernel in this interpreter (`sys.executable`)."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    kernels = tmp_path / "kernels"
    write_kernel_spec(path=kernels / KERNEL_NAME, overrides={"display_name": f"Python ({sys.executable})"})
    spec_manager = KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
    assert spec_manager.get_kernel_spec(KERNEL_NAME).argv[0] == sys.executable
    return AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=spec_manager)


def run_notebook(name: str, tmp_path: Path, monkeypatch, env: dict[str, str]) -> tuple[nbformat.NotebookNode, float]:
    """Execute notebooks/`name` top to bottom in a fresh kernel (cwd = tmp_path); raise on any cell error."""
    from nbclient import NotebookClient

    for key, value in env.items():
        monkeypatch.setenv(key, value)  # the kernel process inherits this environment
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    client = NotebookClient(
        nb,
        km=_kernel_manager(tmp_path),
        timeout=300,  # per cell
        startup_timeout=120,
        allow_errors=False,
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
    )
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        elapsed = time.perf_counter() - start
        nbformat.write(nb, tmp_path / f"executed_{name}")  # kept for debugging a failure
    print(f"\n{name}: executed in {elapsed:.1f} s")
    return nb, elapsed


def _stream_text(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def _tiny_env(name: str, tmp_path: Path) -> dict[str, str]:
    return {
        **COMMON_ENV,
        **NOTEBOOKS[name]["env"],
        "TRL_BASIS_NB_MODEL": tiny_model_path(),
        "TRL_BASIS_NB_OUTPUT_DIR": str(tmp_path / "out"),
        "TRL_BASIS_CACHE": str(tmp_path / "cache"),
        "HF_HOME": str(tmp_path / "hf_home"),  # nothing from the run lands in the user's caches
        "MPLCONFIGDIR": str(tmp_path / "mpl"),
    }


def _check_figures(name: str, nb, out: Path) -> None:
    for figure in NOTEBOOKS[name]["figures"]:
        path = out / figure
        assert path.is_file() and path.stat().st_size > 1000, f"{name} did not save {figure}"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{figure} is not a PNG"
    displayed = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert displayed >= len(NOTEBOOKS[name]["figures"]), f"{name} displayed {displayed} figures"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_runs_on_the_tiny_model(name, tmp_path, monkeypatch):
    env = _tiny_env(name, tmp_path)
    out = tmp_path / "out"
    nb, _ = run_notebook(name, tmp_path, monkeypatch, env)
    _check_figures(name, nb, out)

    if name == "basis_gsm8k.ipynb":
        assert "PUSH_TO_HUB is False: nothing was uploaded." in _stream_text(nb)
        results = json.loads((out / "basis_results.json").read_text())
        assert 0.0 <= results["accuracy_before"] <= 1.0 and 0.0 <= results["accuracy_after"] <= 1.0
        assert len(results["temperature"]) == int(env["TRL_BASIS_NB_MAX_STEPS"])
        # The change is shown with its standard error, and one within noise is labelled a smoke run, not a gain.
        change = results["accuracy_after"] - results["accuracy_before"]
        assert results["num_eval_prompts"] == int(env["TRL_BASIS_NB_NUM_EVAL"]) and results["change_se"] >= 0
        assert results["beyond_noise"] == (abs(change) > 2 * results["change_se"])
        text = _stream_text(nb)
        assert f"change {change:+.3f} ± {results['change_se']:.3f} (standard error;" in text
        assert ("noise, not a measured gain (a smoke run)" in text) == (not results["beyond_noise"])
        assert all(0.01 - 1e-9 <= b <= 5.0 + 1e-9 for b in results["temperature"])
        adapter = out / "final"
        assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    else:
        results = json.loads((out / "pass_at_k.json").read_text())
        k_max = int(env["TRL_BASIS_NB_EVAL_SAMPLES"])
        assert results["k"] == list(range(1, k_max + 1))
        assert set(results["curves"]) == {"base", "GRPO", "MaxPO"}
        for label, curve in results["curves"].items():
            assert len(curve) == k_max, label
            assert all(0.0 <= v <= 1.0 for v in curve), label
            assert all(a <= b + 1e-9 for a, b in zip(curve, curve[1:], strict=False)), f"{label}: not monotone in k"
        steps = int(env["TRL_BASIS_NB_MAX_STEPS"])
        assert results["steps"] == {"GRPO": steps, "MaxPO": steps}


@pytest.mark.slow
def test_basis_notebook_gsm8k_branch_on_a_local_gsm8k_style_dataset(tmp_path, monkeypatch):
    """The default (non-tiny) data path: GSM8K rows ("question", "... #### n") -> prompts, math-verify reward."""
    from trl_basis.tasks import make_arithmetic_dataset

    data = tmp_path / "gsm8k_local"
    data.mkdir()
    splits = make_arithmetic_dataset(num_train=16, num_test=4, seed=1)
    for split in ("train", "test"):
        with open(data / f"{split}.jsonl", "w") as f:
            for row in splits[split]:
                question = f"What is {row['prompt'][0]['content'].rstrip('=')}?"
                answer = f"We compute it step by step.\n#### {int(row['answer']):,}"  # GSM8K's format, with commas
                f.write(json.dumps({"question": question, "answer": answer}) + "\n")

    name = "basis_gsm8k.ipynb"
    env = {
        **_tiny_env(name, tmp_path),
        "TRL_BASIS_NB_DATASET": str(data),
        "TRL_BASIS_NB_DATASET_CONFIG": "",
        "TRL_BASIS_NB_NUM_TRAIN": "16",
        "TRL_BASIS_NB_NUM_EVAL": "4",
        "TRL_BASIS_NB_EVAL_SAMPLES": "2",
        "TRL_BASIS_NB_NUM_REFERENCE_SAMPLES": "2",
        "TRL_BASIS_NB_FILTER_CONSTANT_PROMPTS": "0",  # the tiny model rarely solves worded problems
        "TRL_BASIS_NB_MAX_STEPS": "1",
        "TRL_BASIS_NB_USE_LORA": "0",  # and the full-fine-tuning path
    }
    nb, _ = run_notebook(name, tmp_path, monkeypatch, env)
    _check_figures(name, nb, tmp_path / "out")
    text = _stream_text(nb)
    assert "You are a careful math tutor" in text  # the system prompt is in the printed first row
    assert "reward 1.0 <- " in text and "reward 0.0 <- " in text  # math-verify judged the hand-written answers
    assert (tmp_path / "out" / "final" / "model.safetensors").is_file()
