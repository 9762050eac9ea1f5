"""What the report measures against: the labels the model learned from, and real outcomes.

A model trained on provider labels is measured twice on the same holdout rows: against those
labels and against ``Risk`` when the data has it. The two are never mixed up: each carries its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..applications.reading import parquet_reason
from ..errors import ModelBundleError

HOLDOUT_FILE = "holdout.parquet"
RISK_NAME = "real outcome (Risk)"


@dataclass(frozen=True)
class Target:
    """One set of labels the model's scores are measured against (1 = bad risk)."""

    key: str
    name: str
    y: np.ndarray
    p: np.ndarray
    raw: np.ndarray | None = None
    """The booster's probability before calibration (bundles with a calibration map only)."""


def read_holdout(bundle_path: Path) -> pd.DataFrame:
    path = bundle_path / HOLDOUT_FILE
    if not path.exists():
        raise ModelBundleError(f"{bundle_path}: no {HOLDOUT_FILE}, so no report; retrain to get one")
    try:
        holdout = pd.read_parquet(path)
    except Exception as error:  # pyarrow raises several unrelated types for a broken file
        reason = parquet_reason(error, path)
        raise ModelBundleError(
            f"{bundle_path}: unreadable {HOLDOUT_FILE} ({reason}); retrain to get a report"
        ) from None
    missing = {"label", "probability"} - set(holdout.columns)
    if missing:
        raise ModelBundleError(f"{bundle_path}: {HOLDOUT_FILE} has no columns {sorted(missing)}")
    return holdout


def trained_label_name(meta: Mapping[str, Any]) -> str:
    """How the labels the model learned from are called everywhere in the report and on the page."""
    metrics = meta.get("metrics") or {}
    provenance = meta.get("label_provenance") or {}
    for value in (metrics.get("measured_against"), provenance.get("labels"), provenance.get("source")):
        if value:
            return str(value)
    return "the training labels"


def targets(meta: Mapping[str, Any], holdout: pd.DataFrame) -> list[Target]:
    """The trained labels first; real outcomes (Risk) second when known and different from them."""
    p = holdout["probability"].to_numpy(dtype=np.float64)
    raw = holdout["raw_probability"].to_numpy(dtype=np.float64) if "raw_probability" in holdout else None
    label = holdout["label"].to_numpy(dtype=np.int64)
    targets = [Target("label", trained_label_name(meta), label, p, raw)]
    if "risk" in holdout.columns:
        known = holdout["risk"].notna().to_numpy()
        risk = holdout["risk"].to_numpy(dtype=np.float64, na_value=np.nan)
        same = known.all() and np.array_equal(risk.astype(np.int64), label)
        if known.sum() >= 2 and not same:
            saved = (meta.get("metrics") or {}).get("against_risk") or {}
            name = str(saved.get("measured_against") or RISK_NAME)
            raw_known = raw[known] if raw is not None else None
            targets.append(Target("risk", name, risk[known].astype(np.int64), p[known], raw_known))
    return targets


# --------------------------------------------------------------------------------------------
# Metrics at the threshold
