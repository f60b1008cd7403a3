"""`trl_basis/_threads.py`: a CPU run uses the usable cores that other processes leave free; OMP_NUM_THREADS wins."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from trl_basis import _threads


@pytest.fixture
def fresh_choice(monkeypatch):
    """Each test measures anew, and torch's thread count is restored afterwards."""
    before = torch.get_num_threads()
    monkeypatch.setattr(_threads, "_chosen", None)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(("usable", "busy", "expected"), [(2, 0, 2), (2, 1, 1), (2, 2, 1), (2, 5, 1), (16, 3, 13)])
def test_threads_are_the_free_usable_cores_and_at_least_one(usable, busy, expected):
    assert _threads.threads_for(usable, busy) == expected


def test_unknown_load_keeps_one_thread_per_usable_core():
    assert _threads.threads_for(4, None) == 4


def test_usable_cores_follow_the_affinity():
    cores = _threads.usable_cores()
    assert cores and len(cores) <= (os.cpu_count() or 1)
    if hasattr(os, "sched_getaffinity"):
        assert set(cores) == os.sched_getaffinity(0)


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs Linux /proc/stat")
def test_busy_cores_sees_processes_that_spin_on_every_usable_core(fresh_choice):
    cores = _threads.usable_cores()
    spin = "import time\nend = time.time() + 30\nwhile time.time() < end: pass\n"
    spinners = [subprocess.Popen([sys.executable, "-c", spin]) for _ in cores]
    try:
        time.sleep(0.5)  # let them start spinning
        assert _threads.busy_cores(cores, seconds=0.5) == len(cores)
        assert _threads.choose_num_threads() == 1 and torch.get_num_threads() == 1
    finally:
        for proc in spinners:
            proc.kill()
            proc.wait()


def test_omp_num_threads_is_the_users_override(fresh_choice, monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert _threads.choose_num_threads() is None
    assert torch.get_num_threads() == 1  # untouched


def test_one_measurement_per_process(fresh_choice, monkeypatch):
    first = _threads.choose_num_threads()
    assert first is not None and 1 <= first <= len(_threads.usable_cores())
    monkeypatch.setattr(_threads, "busy_cores", lambda *a, **k: pytest.fail("measured twice"))
    torch.set_num_threads(max(1, first + 1))
    assert _threads.choose_num_threads() == first and torch.get_num_threads() == first


def test_a_trainer_on_cpu_sets_the_measured_thread_count(fresh_choice, tmp_path):
    from _trainer_utils import CPU, arithmetic_train, prompt_reward, tiny_model_path

    from trl_basis import MaxPOConfig, MaxPOTrainer

    _threads._chosen = 1  # as measured on a busy machine
    torch.set_num_threads(2)
    args = MaxPOConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=8, num_generations=8, max_steps=1)
    MaxPOTrainer(tiny_model_path(), prompt_reward, args=args, train_dataset=arithmetic_train(16))
    assert torch.get_num_threads() == 1
