"""How many torch threads a CPU run should use: the cores this process may use that nobody else is busy on.

torch starts one intra-op thread per core. On an idle machine that is right; on a shared one, its threads spin
against the other processes' and a step can be ten times slower (measured on 2 cores, both busy: the README's Python
snippet took 5 min 57 s with 2 threads and 43 s with 1). One thread wastes the idle cores instead (1.6x slower on
an idle 2-core machine). So the count is measured once per process: the usable cores (`sched_getaffinity`) minus
the cores other processes kept busy over a short sample of `/proc/stat`. `OMP_NUM_THREADS` is the user's
override and is kept.
"""

from __future__ import annotations

import os
import time

#: Seconds of `/proc/stat` sampled to see how busy the usable cores are (this process sleeps meanwhile).
SAMPLE_SECONDS = 0.25
#: A core counts as taken by others when they kept it busy more than this fraction of the sample.
BUSY_FRACTION = 0.5

_chosen: int | None = None


def usable_cores() -> list[int]:
    """The cores this process may run on (its CPU affinity), or all of them where affinity is unknown."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _core_times(cores: list[int]) -> dict[int, tuple[int, int]] | None:
    """(busy, total) jiffies of each core in `cores` from /proc/stat; None where it cannot be read."""
    try:
        with open("/proc/stat") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    times = {}
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cores:
            values = [int(v) for v in fields[:8]]
            idle = values[3] + values[4]  # idle + iowait
            times[int(name[3:])] = (sum(values) - idle, sum(values))
    return times if len(times) == len(cores) else None


def busy_cores(cores: list[int], seconds: float = SAMPLE_SECONDS) -> int | None:
    """How many of `cores` other processes keep busy now (this process sleeps while it samples); None: unknown."""
    before = _core_times(cores)
    if before is None:
        return None
    time.sleep(seconds)
    after = _core_times(cores)
    if after is None:
        return None
    busy = 0
    for core in cores:
        total = after[core][1] - before[core][1]
        if total > 0 and (after[core][0] - before[core][0]) / total > BUSY_FRACTION:
            busy += 1
    return busy


def threads_for(usable: int, busy: int | None) -> int:
    """Threads for `usable` cores of which `busy` are taken by others: the free ones, at least 1."""
    if busy is None:  # no load information (not Linux): torch's own default, one per usable core
        return max(1, usable)
    return max(1, usable - busy)


def choose_num_threads() -> int | None:
    """Set torch's thread count for a CPU run (once per process) and return it; None when the user chose it.

    `OMP_NUM_THREADS` in the environment is the user's choice: then nothing is changed.
    """
    global _chosen
    import torch

    if os.environ.get("OMP_NUM_THREADS"):
        return None
    if _chosen is not None:  # measured already in this process: keep one choice (a second trainer, the CLI)
        torch.set_num_threads(_chosen)
        return _chosen
    cores = usable_cores()
    _chosen = threads_for(len(cores), busy_cores(cores))
    torch.set_num_threads(_chosen)
    return _chosen
