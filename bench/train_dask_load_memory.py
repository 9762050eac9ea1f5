"""Peak memory of each Dask worker while `train --dask` loads the labels: what one worker holds.

`train --dask` reads, checks, encodes and splits the labels on the workers and keeps the encoded
pieces there for the boosters. This measures that load alone (:meth:`ClusterTraining.load`, the
part of a run where the pieces' text cells exist) on a real ``LocalCluster`` of worker processes:

* generated labelled applications (the schema's categories and ranges, a real outcome), ``--rows``
  in all, written as ``--files`` CSV files (the last one as Parquet with ``--parquet``) and cut in
  pieces of 100,000 rows as ``predict --dask`` cuts them;
* each worker's peak resident memory during the load (the kernel's high-water mark, reset just
  before it: ``/proc/PID/clear_refs``), its resident memory once loaded (what it keeps for the
  fits), and the CPU seconds (user + sys) the workers and this process spent, with the load average;
* the peak's excess over what the worker keeps, against the floor it is compared with: one piece's
  text cells (the first piece read here), which a worker must hold while it checks that piece:
  the excess should stay a few pieces' worth at any input size, not grow with it.

    .venv/bin/python bench/train_dask_load_memory.py [--rows 3000000] [--files 3] [--parquet]

Run it with ``PYTHONPATH`` at another preauth's ``src`` to measure that one.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from train_dask_memory import labels_csv


def _reset_peak() -> None:
    """Reset this process's resident-memory high-water mark (Linux: 5 → clear_refs)."""
    Path(f"/proc/{os.getpid()}/clear_refs").write_text("5")


def _memory() -> dict[str, float]:
    """This process's peak and current resident memory (MB) and CPU seconds (user + sys)."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines())
    times = os.times()
    return {
        "peak_mb": int(status["VmHWM"].split()[0]) / 1024,
        "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
        "cpu_s": times.user + times.system,
    }


def split_labels(source: Path, directory: Path, files: int, parquet: bool) -> Path:
    """The rows of ``source`` as ``files`` files in ``directory`` (the last as Parquet if asked)."""
    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    step = -(-len(frame) // files)
    for i in range(files):
        part = frame.iloc[i * step : (i + 1) * step]
        if parquet and i == files - 1:
            part.to_parquet(directory / f"labels_{i:02d}.parquet", row_group_size=50_000, index=False)
        else:
            part.to_csv(directory / f"labels_{i:02d}.csv", index=False)
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--files", type=int, default=3)
    parser.add_argument("--parquet", action="store_true", help="write the last file as Parquet")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    from preauth.cluster import input_files, plan, read_piece
    from preauth.training import TrainingConfig
    from preauth.training.on_dask import ClusterTraining

    with tempfile.TemporaryDirectory(prefix="preauth-load-") as tmp:
        work = Path(tmp)
        (work / "labels").mkdir()
        whole = labels_csv(args.rows, work / "whole.csv")
        source = split_labels(whole, work / "labels", args.files, args.parquet)
        whole.unlink()
        size = sum(p.stat().st_size for p in source.iterdir()) / 1e6
        first = plan(input_files(str(source)))[0]
        piece_mb = read_piece(first).memory_usage(deep=True).sum() / 1e6
        with (
            LocalCluster(
                n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            config = TrainingConfig(target="risk")
            client.run(lambda: __import__("preauth.training.on_dask"))  # imports are not the load
            client.run(_reset_peak)
            before = client.run(_memory)
            own = os.times()
            load = os.getloadavg()[0]
            started = time.perf_counter()
            held = ClusterTraining(client, f"local:{args.workers}").load(str(source), config)
            seconds = time.perf_counter() - started
            own_after = os.times()
            after = client.run(_memory)
            counts = held.data.counts
            held.release()
        workers_cpu = sum(after[w]["cpu_s"] - before[w]["cpu_s"] for w in after)
        own_cpu = own_after.user + own_after.system - own.user - own.system
        print(
            f"{args.rows:,} rows in {args.files} files ({size:,.0f} MB{', last Parquet' if args.parquet else ''}), "
            f"{counts['used']:,} used: load {seconds:.1f} s wall, CPU {workers_cpu:.1f} s workers + "
            f"{own_cpu:.1f} s here, load average {load:.2f} → {os.getloadavg()[0]:.2f}"
        )
        for number, worker in enumerate(sorted(after)):
            peak, kept = after[worker]["peak_mb"], after[worker]["rss_mb"]
            print(
                f"  worker {number}: peak {peak:,.0f} MB during the load, {kept:,.0f} MB once loaded "
                f"(before it {before[worker]['rss_mb']:,.0f} MB): peak - once loaded {peak - kept:,.0f} MB, "
                f"{(peak - kept) / piece_mb:.1f}x one piece's text cells ({piece_mb:,.1f} MB; goal: the same at any input size)"
            )


if __name__ == "__main__":
    main()
