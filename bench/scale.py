"""Scoring at scale: `preauth predict` on one process and on a Dask LocalCluster, against the bare
booster and against what a user writes by hand, at several row counts, in one run.

    .venv/bin/python bench/scale.py [--rows 1000000 10000000] [--workers 2] [--trials 10] [--data DIR]
                                    [--formats parquet jsonl] [--inputs csv parquet jsonl]
                                    [--skip-dask] [--skip-hand]

``--data DIR`` keeps the generated files in DIR and reuses them on the next run (10M rows is 480 MB
of CSV and a minute to generate); without it they go to a temporary directory.

For each row count N it generates N valid applications (CSV; with ``--inputs``, the same rows also
as Parquet and as JSON Lines), then measures:

(a) the bare booster: ``inplace_predict`` on the already-encoded matrix, best of 3 (the floor);
(b) ``preauth predict IN --format F``, a new process, for each of ``--formats`` (the issue's table
    has Parquet and JSON Lines): start-up, streaming read, validation, scoring and writing (the
    rejects check included); the fastest of ``--repeat`` runs (default 1); from the CSV, and from each
    other input format of ``--inputs`` (printed side by side with the CSV's: each format's reader);
(c) ``preauth predict IN --format parquet --dask local:W``: the same on a LocalCluster of W worker
    processes (cluster start-up included);
(d) the hand-written script a user writes without preauth: pandas ``read_csv``, a scikit-learn
    pipeline (``OrdinalEncoder`` + ``XGBClassifier`` with the same trees' settings, fitted on the
    same labels), ``predict_proba``, ``to_json(lines=True)``; no validation.

Wall time, rows/s, CPU seconds (user + system, the process and its children) and peak memory
(the sum of the resident sets of the process and all its children, sampled every 50 ms) of each,
and the goals for each format: (b) ≤ 3x (a) at 1M rows and ≤ 2x at 10M,
(b)'s peak memory the same whatever N, (b) at least 2x as fast as (d). Ends with what 1 billion rows
would take on a cluster of W workers, from (c)'s measured rate per worker.

The goals are on wall time; the CPU seconds are there because the machine is shared: other
people's work slows (a) and (b) by different amounts (the bare booster has both cores to itself on a
quiet machine, and loses them first on a busy one), while the CPU each needs changes little.
"""

from __future__ import annotations

import argparse
import pickle
import resource
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from preauth.applications import FIELDS, feature_columns, read_applications
from preauth.applications.batches import iter_applications
from preauth.bundles import load_bundle
from preauth.features import encode
from preauth.labels import label_applications, write_labels
from preauth.pipeline import bundled_data
from preauth.training import TrainingConfig, train_from_file
from predict_throughput import generate
from processes import run_measured

HAND_WRITTEN = textwrap.dedent(
    """
    import pickle, sys
    import pandas as pd
    pipeline, columns = pickle.load(open(sys.argv[1], "rb"))
    frame = pd.read_csv(sys.argv[2])
    frame["probability"] = pipeline.predict_proba(frame[columns])[:, 1]
    frame["target"] = (frame["probability"] >= 0.5).map({True: "bad risk", False: "good risk"})
    frame.to_json(sys.argv[3], orient="records", lines=True)
    """
)


INPUTS = {"csv": "csv", "parquet": "parquet", "jsonl": "jsonl"}
"""Input formats (b) can read, and their files' suffixes."""


def input_files(rows: int, directory: Path, inputs: list[str]) -> dict[str, Path]:
    """The N applications in each input format (CSV always: (a) and (d) read it), generated once
    and written in every format that is not there yet, so that all hold the same rows."""
    paths = {
        kind: directory / f"applications_{rows}.{INPUTS[kind]}" for kind in dict.fromkeys(["csv", *inputs])
    }
    missing = [kind for kind, path in paths.items() if not path.exists()]
    if missing:
        directory.mkdir(parents=True, exist_ok=True)
        frame = generate(rows)
        for kind in missing:
            if kind == "csv":
                frame.to_csv(paths[kind], index=False)
            elif kind == "parquet":
                frame.to_parquet(paths[kind], index=False)
            else:
                frame.to_json(paths[kind], orient="records", lines=True)
    return paths


def run(command: list[str]) -> tuple[float, int, float]:
    """Wall seconds, peak resident memory (bytes, the process tree summed) and CPU seconds (user +
    system of the process and the children it waited for) of a command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds, _, tree = run_measured(command)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return seconds, tree, cpu


def bare_seconds(bundle: object, source: Path) -> tuple[float, float]:
    """inplace_predict on the encoded matrix, in batches (so 10M rows fit), best of 3 per batch:
    wall seconds, and the CPU seconds of that fastest run (all of XGBoost's threads)."""
    total = cpu = 0.0
    for applications in iter_applications(source, batch_rows=1_000_000):
        matrix = encode(applications.frame, bundle.features)  # type: ignore[attr-defined]
        best = (float("inf"), 0.0)
        for _ in range(3):
            started, started_cpu = time.perf_counter(), time.process_time()
            bundle.booster.inplace_predict(matrix)  # type: ignore[attr-defined]
            best = min(best, (time.perf_counter() - started, time.process_time() - started_cpu))
        total += best[0]
        cpu += best[1]
    return total, cpu


def hand_written_model(labels: Path, params: dict, rounds: int, work: Path) -> Path:
    """The user's own pipeline: ordinal-encoded categories into XGBClassifier, fitted on the labels."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder
    from xgboost import XGBClassifier

    columns = [f.name for f in FIELDS if f.name in feature_columns()]
    categories = [f.name for f in FIELDS if f.is_category and f.name in columns]
    import pandas as pd

    table = pd.read_csv(labels)
    y = (table["target"] == "bad risk").astype(int)
    encoder = ColumnTransformer(
        [("categories", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), categories)],
        remainder="passthrough",
    )
    model = XGBClassifier(
        n_estimators=rounds,
        max_depth=params.get("max_depth", 4),
        learning_rate=params.get("learning_rate", 0.1),
    )
    pipeline = Pipeline([("encode", encoder), ("model", model)])
    pipeline.fit(table[columns], y)
    path = work / "pipeline.pkl"
    path.write_bytes(pickle.dumps((pipeline, columns)))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--data", type=Path, default=None, help="keep and reuse the generated files here")
    parser.add_argument(
        "--formats", nargs="+", default=["parquet", "jsonl"], choices=["parquet", "jsonl", "csv", "json"]
    )
    parser.add_argument(
        "--inputs",
        nargs="+",
        default=["csv"],
        choices=list(INPUTS),
        help="measure (b) from these input formats too (the same rows), beside the CSV",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each (b) this many times and keep the fastest (as (a) is best of 3)",
    )
    parser.add_argument("--skip-dask", action="store_true", help="leave (c) out")
    parser.add_argument(
        "--skip-hand", action="store_true", help="leave (d) out (it needs ~13 GB at 10M rows)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="preauth-scale-") as tmp:
        work = Path(tmp)
        training = read_applications(bundled_data())
        labels = write_labels(label_applications(training, "rules", progress=False), work / "labels.csv")
        models = work / "models"
        trained = train_from_file(labels, TrainingConfig(trials=args.trials), models, progress=False)
        bundle = load_bundle(models, trained.version)
        rounds = bundle.booster.num_boosted_rounds()
        params = bundle.meta.get("params", {})
        print(f"model {bundle.version}: {rounds} trees, max_depth {params.get('max_depth')}")
        pipeline = hand_written_model(labels, params, rounds, work)
        script = work / "hand_written.py"
        script.write_text(HAND_WRITTEN)
        preauth = [sys.executable, "-m", "preauth", "--models-dir", str(models), "predict"]

        figures = []
        cpus: dict[int, float] = {}  # (a)'s CPU seconds by row count
        for rows in args.rows:
            paths = input_files(rows, args.data or work, args.inputs)
            source = paths["csv"]
            print(f"\n{rows:,} applications: {source.stat().st_size / 1e6:.0f} MB of CSV")
            bare, bare_cpu = bare_seconds(bundle, source)
            singles = {
                fmt: min(
                    run([*preauth, str(source), "-o", str(work / "r1"), "--format", fmt])
                    for _ in range(args.repeat)
                )
                for fmt in args.formats
            }
            by_input = {
                kind: {
                    fmt: min(
                        run([*preauth, str(path), "-o", str(work / "r1"), "--format", fmt])
                        for _ in range(args.repeat)
                    )
                    for fmt in args.formats
                }
                for kind, path in paths.items()
                if kind != "csv"
            }
            dask = (0.0, 0, 0.0) if args.skip_dask else run([*preauth, str(source), "-o", str(work / "r2"),
                        "--format", "parquet", "--dask", f"local:{args.workers}"])  # fmt: skip
            hand = (
                (0.0, 0, 0.0)
                if args.skip_hand
                else run([sys.executable, str(script), str(pipeline), str(source), str(work / "hand.jsonl")])
            )
            figures.append((rows, bare, singles, dask, hand))
            cpus[rows] = bare_cpu
            print(f"  {'':<34} {'seconds':>8} {'rows/s':>11} {'vs bare':>8} {'peak MB':>8} {'CPU s':>7}")
            print(
                f"  {'(a) bare inplace_predict':<34} {bare:>8.2f} {rows / bare:>11,.0f} {'1.0x':>8} {'-':>8} "
                f"{bare_cpu:>7.2f}"
            )
            for name, (seconds, peak, cpu) in (
                *((f"(b) preauth predict --format {fmt}", singles[fmt]) for fmt in args.formats),
                *(
                    (f"(b) {kind} input, --format {fmt}", measured[fmt])
                    for kind, measured in by_input.items()
                    for fmt in args.formats
                ),
                (f"(c) preauth predict --dask local:{args.workers}", dask),
                ("(d) hand-written pandas + sklearn", hand),
            ):
                if seconds:
                    print(
                        f"  {name:<34} {seconds:>8.2f} {rows / seconds:>11,.0f} {seconds / bare:>7.1f}x "
                        f"{peak / 1e6:>8,.0f} {cpu:>7.2f}"
                    )
            for fmt in args.formats if hand[0] else ():
                print(
                    f"  (d)/(b) {fmt}: preauth is {hand[0] / singles[fmt][0]:.1f}x as fast as the "
                    "hand-written script (goal ≥ 2x)"
                )
            for fmt in args.formats if by_input else ():
                sides = [
                    ("csv", singles[fmt]),
                    *((kind, measured[fmt]) for kind, measured in by_input.items()),
                ]
                print(
                    f"  input formats side by side, --format {fmt}: "
                    + "; ".join(
                        f"{kind} {seconds:.2f} s, {cpu:.2f} CPU s ({cpu / singles[fmt][2]:.2f}x csv's CPU)"
                        for kind, (seconds, _, cpu) in sides
                    )
                )
            if args.data is None:
                for path in paths.values():
                    path.unlink()

        print("\ngoals")
        for fmt in args.formats:
            for rows, bare, singles, _, _ in figures:
                goal = 3 if rows <= 1_000_000 else 2
                ratio = singles[fmt][0] / bare
                verdict = "met" if ratio <= goal else "not met"
                print(
                    f"  {fmt:>7} {rows:>11,} rows: end to end {ratio:.2f}x bare (goal ≤ {goal}x): {verdict}; "
                    f"CPU {singles[fmt][2]:.1f} s, {singles[fmt][2] / cpus[rows]:.2f}x bare's {cpus[rows]:.1f} s"
                )
            peaks = [singles[fmt][1] / 1e6 for _, _, singles, _, _ in figures]
            print(
                f"  {fmt:>7} peak memory of (b): {', '.join(f'{p:,.0f} MB' for p in peaks)} for {args.rows} rows"
            )
        if args.skip_dask:
            return
        rows, _, _, dask, _ = figures[-1]
        per_worker = rows / dask[0] / args.workers
        basis = f"(c)'s {per_worker:,.0f} rows/s per worker at {rows:,} rows, start-up included"
        if len(figures) > 1:  # the rate past the fixed costs (start-up, cluster start): the slope
            (n1, _, _, d1, _), (n2, _, _, d2, _) = figures[-2], figures[-1]
            if d2[0] > d1[0]:
                per_worker = (n2 - n1) / (d2[0] - d1[0]) / args.workers
                basis = f"(c)'s marginal {per_worker:,.0f} rows/s per worker between {n1:,} and {n2:,} rows"
        print(f"\n1 billion rows on paper, from {basis}:")
        for workers in (2, 16, 64, 256):
            hours = 1e9 / (per_worker * workers) / 3600
            print(f"  {workers:>4} workers: {hours:6.2f} h")


if __name__ == "__main__":
    main()
