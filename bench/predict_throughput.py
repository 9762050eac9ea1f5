"""Batch scoring throughput: `preauth predict` end to end against the bare booster, in one run.

    .venv/bin/python bench/predict_throughput.py [--rows 1000000] [--trials 10]

1. Generates N valid applications from the schema (every category, ranges, missing balances).
2. Trains a model the normal way (rules labels, Optuna search) into a temporary models directory.
3. Times (a) the bare booster's ``inplace_predict`` on the already-encoded matrix (best of 3), and
   (b) ``preauth predict IN --format F`` as a subprocess, for each format: reading the CSV,
   validating, encoding, scoring and writing the results file, process start-up included.
Prints rows/s for each and the ratio (b)/(a) in time. Goal: JSONL and Parquet within 3x.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from preauth.applications import FIELDS, read_applications
from preauth.bundles import load_bundle
from preauth.features import encode
from preauth.formats import FORMATS
from preauth.labels import label_applications, write_labels
from preauth.pipeline import bundled_data
from preauth.results import write_results
from preauth.scoring import results_path, score
from preauth.training import TrainingConfig, train_from_file


def generate(rows: int, seed: int = 0) -> pd.DataFrame:
    """Valid applications drawn from the schema's own categories and ranges."""
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {}
    for f in FIELDS:
        if f.is_category:
            levels = list(f.categories) + ([""] if f.missing_is_unknown else [])
            columns[f.name] = rng.choice(levels, rows)
        elif f.positive:
            high = 20_000 if f.name == "Credit amount" else 72
            columns[f.name] = rng.integers(1, high, rows)
        else:
            columns[f.name] = rng.integers(int(f.minimum or 0), int(f.maximum or 0) + 1, rows)
    return pd.DataFrame(columns)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="preauth-bench-") as tmp:
        work = Path(tmp)
        source = work / "applications.csv"
        generate(args.rows).to_csv(source, index=False)
        print(f"generated {args.rows:,} applications: {source.stat().st_size / 1e6:.0f} MB CSV")

        training = read_applications(bundled_data())
        labels = write_labels(label_applications(training, "rules", progress=False), work / "labels.csv")
        models = work / "models"
        trained = train_from_file(labels, TrainingConfig(trials=args.trials), models, progress=False)
        bundle = load_bundle(models, trained.version)
        rounds = bundle.booster.num_boosted_rounds()
        print(f"model {bundle.version}: {rounds} trees, max_depth {bundle.meta['params'].get('max_depth')}")

        applications = read_applications(source)
        matrix = encode(applications.frame, bundle.features)
        bare = min(_timed(lambda: bundle.booster.inplace_predict(matrix)) for _ in range(3))
        print(
            f"\n(a) bare inplace_predict on the encoded matrix: {bare:.3f} s, {args.rows / bare:,.0f} rows/s"
        )

        scored = score(bundle, applications)
        print("\nin-process stages (for orientation):")
        print(f"  read + validate  {_timed(lambda: read_applications(source)):.3f} s")
        print(f"  encode + predict {_timed(lambda: score(bundle, applications)):.3f} s")
        for fmt in FORMATS:
            seconds = _timed(lambda fmt=fmt: write_results(scored, results_path(work / "inproc", fmt), fmt))
            print(f"  write {fmt:<8} {seconds:.3f} s")

        print("\n(b) `preauth predict` end to end (process start-up included):")
        print(f"  {'format':<8} {'seconds':>8} {'rows/s':>12} {'(b)/(a)':>8}")
        for fmt in FORMATS:
            command = [sys.executable, "-m", "preauth", "--models-dir", str(models), "predict", str(source),
                       "-o", str(work / "results"), "--format", fmt]  # fmt: skip
            seconds = _timed(lambda command=command: subprocess.run(command, check=True, capture_output=True))
            print(f"  {fmt:<8} {seconds:>8.2f} {args.rows / seconds:>12,.0f} {seconds / bare:>7.1f}x")


def _timed(work: object) -> float:
    started = time.perf_counter()
    work()  # type: ignore[operator]
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
