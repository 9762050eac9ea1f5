"""Peak memory of the `preauth train --dask` process at two input sizes: the goal is flat.

`train --dask` reads, checks, encodes and keeps the labels on the workers and hands the train
process at most `--search-rows` labelled rows (a seeded sample for the search, calibration,
threshold and holdout figures); the boosters on all rows are fit on the workers. So the train
process's peak resident memory should not grow with the input. This runs, for each size,

    preauth train labels.csv --target risk --dask local:2 --trials T --search-rows S

as a fresh process on generated applications (the schema's categories and ranges, a real outcome
that depends on amount, duration and balances, so the model has something to learn), samples the
resident memory of the train process alone and of its whole tree (the train process plus the
LocalCluster's scheduler and two worker processes) every 50 ms, and prints both peaks per size
and the ratio large/small of the train process's.

    .venv/bin/python bench/train_dask_memory.py [--rows 200000 2000000] [--search-rows 20000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from predict_throughput import generate
from processes import run_measured


def labels_csv(rows: int, path: Path, seed: int = 0) -> Path:
    """``rows`` generated applications with a ``Risk`` outcome, written in blocks."""
    rng = np.random.default_rng(seed)
    block = 500_000
    with path.open("w") as handle:
        for start in range(0, rows, block):
            frame = generate(min(block, rows - start), seed=seed + start)
            score = (
                frame["Credit amount"].to_numpy() / 8_000
                + frame["Duration"].to_numpy() / 30
                - (frame["Checking account"] == "rich").to_numpy() * 0.8
                - 1.8
            )
            bad = rng.random(len(frame)) < 1 / (1 + np.exp(-score))
            frame["Risk"] = np.where(bad, "bad", "good")
            frame.to_csv(handle, index=False, header=start == 0)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs=2, default=[200_000, 2_000_000])
    parser.add_argument(
        "--search-rows",
        type=int,
        default=20_000,
        help="0: leave the option out (to measure a preauth from before it, PYTHONPATH=its src)",
    )
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    figures = []
    with tempfile.TemporaryDirectory(prefix="preauth-train-dask-") as tmp:
        work = Path(tmp)
        for rows in args.rows:
            source = labels_csv(rows, work / f"labels_{rows}.csv")
            models = work / f"models_{rows}"
            command = [
                sys.executable, "-m", "preauth", "--models-dir", str(models), "train", str(source),
                "--target", "risk", "--dask", f"local:{args.workers}", "--trials", str(args.trials),
                "--folds", "3", "--no-progress",
            ]  # fmt: skip
            if args.search_rows > 0:
                command += ["--search-rows", str(args.search_rows)]
            seconds, own, tree = run_measured(command)
            [bundle] = models.iterdir()
            meta = json.loads((bundle / "bundle.json").read_text())
            engine = meta["training"]["engine"]
            print(
                f"{rows:>10,} rows ({source.stat().st_size / 1e6:,.0f} MB CSV): {seconds:6.1f} s; "
                f"train process peak {own / 1e6:,.0f} MB, with the cluster {tree / 1e6:,.0f} MB; "
                f"boosters fit on {engine.get('fit_rows', 'all')}, search on "
                f"{engine.get('search_sample_rows', meta['training']['rows']['train'])} rows; "
                f"holdout AUC {meta['metrics']['holdout']['roc_auc']:.3f}",
                flush=True,
            )
            figures.append((rows, own, tree))
            source.unlink()
    (small, own_small, tree_small), (large, own_large, tree_large) = figures
    print(
        f"{large / small:.0f}x the rows: train process peak {own_large / own_small:.2f}x "
        f"({own_small / 1e6:,.0f} → {own_large / 1e6:,.0f} MB; goal: flat), whole tree "
        f"{tree_large / tree_small:.2f}x ({tree_small / 1e6:,.0f} → {tree_large / 1e6:,.0f} MB)"
    )


if __name__ == "__main__":
    main()
