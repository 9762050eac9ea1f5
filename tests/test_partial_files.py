"""Partial files: a writer killed with SIGKILL leaves its temporary file, and the next run removes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from preauth.files import atomic_path, partial_prefix, remove_stale_partials, staging_directory


def _dead_pid() -> int:
    """The id of a process that has certainly ended (ours, reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_kill_9_of_predict_leaves_a_part_file_that_the_next_run_removes(
    tmp_path: Path, bundled_data: Path, small_models_dir: Path
) -> None:
    header, *rows = bundled_data.read_text().splitlines()
    big = tmp_path / "big.csv"
    big.write_text(header + "\n" + ("\n".join(rows) + "\n") * 200)  # 200,000 applications
    results = tmp_path / "results"
    command = [sys.executable, "-m", "preauth", "--models-dir", str(small_models_dir), "predict"]
    writer = subprocess.Popen(
        [*command, str(big), "-o", str(results), "--format", "jsonl"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not (parts := list(results.glob(".*.part"))) and writer.poll() is None:
            assert time.monotonic() < deadline, "predict never started writing"
            time.sleep(0.002)
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.wait()
    assert writer.returncode == -signal.SIGKILL, "predict finished before it could be killed"
    assert [p.name for p in results.glob(".*.part")] == [p.name for p in parts]
    assert not list(results.glob("inference_results_*.jsonl"))  # never a half-written results file

    again = subprocess.run(
        [*command, str(bundled_data), "-o", str(results)], capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    assert [p.name for p in results.iterdir()] == [Path(again.stdout.split("→ ")[-1].strip()).name]


def test_only_partial_files_of_dead_writers_on_this_host_are_removed(tmp_path: Path) -> None:
    dead = _dead_pid()
    host = partial_prefix("x").rsplit("@", 1)[1].rstrip(".")
    with atomic_path(tmp_path / "live.csv") as live:  # this process is alive: its file stays
        stale = tmp_path / f".out.csv.{dead}@{host}.abc123.part"
        stale.write_text("half")
        stale_dir = tmp_path / f".staging.{dead}@{host}.def456.part"
        stale_dir.mkdir()
        (stale_dir / "model.ubj").write_text("half")
        elsewhere = tmp_path / f".out.csv.{dead}@some-other-host.abc123.part"
        elsewhere.write_text("another machine's, on a shared disk")
        unrelated = tmp_path / ".notes.part"
        unrelated.write_text("not named by preauth")
        removed = remove_stale_partials(tmp_path)
        assert sorted(removed) == sorted([stale, stale_dir])
        assert live.exists() and elsewhere.exists() and unrelated.exists()
        live.write_text("done")
    assert (tmp_path / "live.csv").read_text() == "done"


def test_a_staging_directory_is_named_like_a_partial_file(tmp_path: Path) -> None:
    staging = staging_directory(tmp_path, "staging")
    assert staging.name.startswith(partial_prefix("staging")) and staging.name.endswith(".part")
    assert remove_stale_partials(tmp_path) == [] and staging.is_dir()


def test_runs_starting_in_the_same_second_get_their_own_results_names(tmp_path: Path) -> None:
    """Results appear under their name only when complete, so two runs of one second both found
    the name free and the second rename replaced the first run's results (four concurrent
    predicts: one file, three runs' results gone, each told it was written)."""
    import threading
    from datetime import datetime

    from preauth.scoring import results_path

    second = datetime(2026, 12, 5, 10, 18, 31)
    held: list[Path] = []
    together = threading.Barrier(4)

    def run() -> None:
        with results_path(tmp_path, "jsonl", now=second) as path:
            together.wait(timeout=10)  # all four hold a name at once
            path.write_text("done\n")
            held.append(path)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(p.name for p in held) == [
        "inference_results_20261205_101831.jsonl",
        *(f"inference_results_20261205_101831_{n}.jsonl" for n in (1, 2, 3)),
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in held)  # no claim left
    with results_path(tmp_path, "jsonl", now=second) as path:  # the written ones are not reused
        assert path.name == "inference_results_20261205_101831_4.jsonl"


def test_a_claim_left_by_a_killed_run_is_taken_over_and_cleaned(tmp_path: Path) -> None:
    from datetime import datetime

    from preauth.files import _HOST
    from preauth.scoring import results_path

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)
    second = datetime(2026, 12, 5, 10, 18, 31)
    stale = tmp_path / ".inference_results_20261205_101831.jsonl.claim"
    stale.write_text(f"{pid}@{_HOST}\n")
    live = tmp_path / ".inference_results_20261205_101831_1.jsonl.claim"
    live.write_text(f"{os.getpid()}@{_HOST}\n")  # a live writer's claim: never taken
    with results_path(tmp_path, "jsonl", now=second) as path:
        assert path.name == "inference_results_20261205_101831.jsonl"
    other = tmp_path / ".inference_results_20261205_101900.jsonl.claim"
    other.write_text(f"{pid}@{_HOST}\n")
    remove_stale_partials(tmp_path)
    assert not other.exists() and live.exists()
