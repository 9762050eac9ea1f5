"""Helpers for the training tests (a uniquely named module: every test area has a conftest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from preauth.training import TrainingConfig

DATA = Path(__file__).resolve().parents[2] / "src" / "preauth" / "data"
FAST = TrainingConfig(trials=4, folds=3, seed=7)


def rubric_labels(frame: pd.DataFrame) -> pd.Series:
    """A stand-in provider: a plain rule of the kind the rules provider uses, not fitted to Risk."""
    bad = (frame["Duration"] >= 30) | (
        (frame["Checking account"] == "little") & (frame["Credit amount"] > 4000)
    )
    bad |= (frame["Saving accounts"].isna()) & (frame["Age"] < 25)
    return pd.Series(np.where(bad, "bad risk", "good risk"), index=frame.index)


def make_labels_file(
    path: Path, *, with_risk: bool = True, unlabeled: int = 0, provider: bool = True
) -> Path:
    """A labels file in the `preauth label` layout, from the bundled German Credit data."""
    frame = pd.read_csv(DATA / "german_credit_risk.csv", index_col=0)
    out = frame.drop(columns=[] if with_risk else ["Risk"]).copy()
    out.insert(0, "id", [f"app-{i}" for i in range(len(out))])
    out["description"] = "an applicant"
    out["target"] = rubric_labels(frame)
    if unlabeled:
        out.loc[out.index[:unlabeled], "target"] = ""
    if provider:
        out["rationale"] = "rule"
        out["provider"] = "rules"
        out["model"] = "rubric-v1"
        out["prompt_version"] = "rubric-v1"
        out["raw_answer"] = out["target"]
    out.to_csv(path, index=False)
    return path
