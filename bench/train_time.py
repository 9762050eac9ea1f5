"""How long `preauth train` takes on the bundled 1,000 German Credit rows with the default trials.

Compares, in one run:
  (a) floor: one plain XGBoost fit (200 rounds, default parameters) on the same rows, in-process;
  (b) `preauth train --target risk` end to end through the real CLI (a fresh process: imports,
      reading, the Optuna search with k-fold CV, the refit, the holdout evaluation, the bundle and
      the report), and the search alone as the bundle records it;
and prints (b)/(a), plus the ratio to the original pipeline's SageMaker tuning job, which took
6 min 8 s for 10 trials (a quoted figure: it cannot be rerun here).

    .venv/bin/python bench/train_time.py [--trials N] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "src" / "preauth" / "data" / "german_credit_risk.csv"
PREAUTH = Path(sys.executable).parent / "preauth"
SAGEMAKER_SECONDS, SAGEMAKER_TRIALS = 368.0, 10


def floor_fit_seconds(repeat: int) -> float:
    import numpy as np
    import xgboost as xgb

    from preauth.applications import feature_columns, read_applications
    from preauth.features import encode, feature_types

    apps = read_applications(DATA)
    columns = feature_columns()
    x = encode(apps.frame, columns)
    y = (apps.frame["Risk"] == "bad").to_numpy(dtype=np.float32)
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        data = xgb.DMatrix(x, label=y, feature_types=feature_types(columns), enable_categorical=True)
        xgb.train({"objective": "binary:logistic", "nthread": 1, "verbosity": 0}, data, 200)
        best = min(best, time.perf_counter() - started)
    return best


def train_seconds(trials: int | None, repeat: int) -> tuple[float, dict]:
    best, meta = float("inf"), {}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as models:
            args = [
                str(PREAUTH),
                "--models-dir",
                models,
                "train",
                str(DATA),
                "--target",
                "risk",
                "--no-progress",
            ]
            if trials is not None:
                args += ["--trials", str(trials)]
            started = time.perf_counter()
            subprocess.run(args, check=True, capture_output=True)
            elapsed = time.perf_counter() - started
            if elapsed < best:
                best = elapsed
                meta = json.loads((Path(models) / "v1" / "bundle.json").read_text())
    return best, meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=None, help="default: preauth's own default")
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()

    floor = floor_fit_seconds(options.repeat)
    wall, meta = train_seconds(options.trials, options.repeat)
    search = meta["search"]
    n_trials = search["n_trials"]
    print(f"data: {DATA.name}, 1,000 rows; best of {options.repeat} runs")
    print(f"(a) one plain XGBoost fit, 200 rounds:            {floor * 1000:8.1f} ms")
    print(f"(b) preauth train, {n_trials} trials ({search['n_pruned']} pruned), {search['objective']}:")
    print(f"      end to end (CLI process):                     {wall:8.2f} s")
    print(f"      search alone:                                 {search['duration_s']:8.2f} s")
    print(f"      training without the report:                  {meta['training']['duration_s']:8.2f} s")
    print(f"ratio (b end to end)/(a):                           {wall / floor:8.1f}x")
    per_trial = search["duration_s"] / n_trials
    sagemaker_per_trial = SAGEMAKER_SECONDS / SAGEMAKER_TRIALS
    print(
        f"per trial: {per_trial * 1000:.0f} ms vs the original SageMaker job's {sagemaker_per_trial:.1f} s "
        f"(quoted) = {sagemaker_per_trial / per_trial:.0f}x faster; whole run {SAGEMAKER_SECONDS / wall:.0f}x "
        f"faster than its {SAGEMAKER_SECONDS:.0f} s for {SAGEMAKER_TRIALS} trials"
    )
    print(f"holdout ROC AUC vs Risk: {meta['metrics']['holdout']['roc_auc']:.3f}")


if __name__ == "__main__":
    main()
