"""`preauth predict` from a JSON array against the same rows as JSON Lines, in one run.

    .venv/bin/python bench/json_array_input.py [--rows 1000000] [--trials 2] [--compare-src DIR]

Generates N valid applications and writes them as JSON Lines; scores them once with ``preauth
predict --format json`` to get a results file (a compact JSON array of N result objects, each
``{"input_data": {...}, ...}``, what re-scoring a results file reads), and writes the same objects
as a pretty-printed array (two-space indent, one value a line). Then times ``preauth predict IN
--format jsonl`` from each as a new process: wall seconds, CPU seconds (user + system) and peak
resident memory (:func:`scale.run`), and the ratio of each array to JSON Lines.

``--compare-src DIR`` also runs each from another checkout's ``src`` (e.g. ``git archive`` of the
commit before), so that old and new code are measured in the same run on the same files.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import orjson

from preauth.applications import read_applications
from preauth.labels import label_applications, write_labels
from preauth.pipeline import bundled_data
from preauth.training import TrainingConfig, train_from_file
from predict_throughput import generate
from scale import run


def pretty_array(results: Path, path: Path) -> Path:
    """The results file's objects as an indented array, written an object at a time."""
    objects = orjson.loads(results.read_bytes())
    with path.open("wb") as out:
        out.write(b"[\n")
        for i, item in enumerate(objects):
            out.write((b",\n" if i else b"") + orjson.dumps(item, option=orjson.OPT_INDENT_2))
        out.write(b"\n]\n")
    return path


def measure(command: list[str], src: Path | None) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and peak resident bytes of ``command``, importing preauth from ``src``."""
    saved = os.environ.get("PYTHONPATH")
    if src is not None:
        os.environ["PYTHONPATH"] = str(src)
    try:
        seconds, peak, cpu = run(command)
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    return seconds, cpu, peak


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--compare-src", type=Path, default=None, help="another checkout's src to run too")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="preauth-json-array-") as tmp:
        work = Path(tmp)
        training = read_applications(bundled_data())
        labels = write_labels(label_applications(training, "rules", progress=False), work / "labels.csv")
        models = work / "models"
        train_from_file(labels, TrainingConfig(trials=args.trials), models, progress=False)
        predict = [sys.executable, "-m", "preauth", "--models-dir", str(models), "predict"]

        lines = work / "applications.jsonl"
        generate(args.rows).to_json(lines, orient="records", lines=True)
        measure([*predict, str(lines), "-o", str(work / "array"), "--format", "json"], None)
        [compact] = (work / "array").glob("inference_results_*.json")
        pretty = pretty_array(compact, work / "pretty.json")
        inputs = {"JSON Lines": lines, "results array": compact, "pretty array": pretty}
        sizes = ", ".join(f"{name} {path.stat().st_size / 1e6:.0f} MB" for name, path in inputs.items())
        print(f"{args.rows:,} applications: {sizes}; load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")

        sources: dict[str, Path | None] = {"this checkout": None}
        if args.compare_src is not None:
            sources[str(args.compare_src)] = args.compare_src
        print(f"\n`preauth predict IN --format jsonl`, {args.rows:,} rows:")
        print(
            f"  {'code':<28} {'input':<14} {'seconds':>8} {'CPU s':>7} {'peak MB':>8} {'time/JSONL':>10} {'mem/JSONL':>9}"
        )
        for label, src in sources.items():
            base: tuple[float, float, int] | None = None
            for name, path in inputs.items():
                out = work / "out" / name.replace(" ", "_")
                seconds, cpu, peak = measure([*predict, str(path), "-o", str(out), "--format", "jsonl"], src)
                base = base or (seconds, cpu, peak)
                print(
                    f"  {label[-28:]:<28} {name:<14} {seconds:>8.2f} {cpu:>7.2f} {peak / 1e6:>8.0f}"
                    f" {seconds / base[0]:>9.2f}x {peak / base[2]:>8.2f}x"
                )
        print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
