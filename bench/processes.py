"""Running a command as the benchmarks do: wall time and peak resident memory, its own and its tree's."""

from __future__ import annotations

import subprocess
import time

import psutil


def run_measured(command: list[str]) -> tuple[float, int, int]:
    """Wall seconds, the peak resident memory (bytes) of the process, and of the process tree
    summed (the process and all its children: a LocalCluster's workers, say), sampled every 50 ms."""
    started = time.perf_counter()
    process = psutil.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    own = tree = 0
    while process.poll() is None:
        try:
            own = max(own, process.memory_info().rss)
            members = [process, *process.children(recursive=True)]
            tree = max(tree, sum(p.memory_info().rss for p in members if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{process.stderr.read().decode()[-2000:]}")
    return seconds, own, tree
