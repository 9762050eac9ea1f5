"""Provider-style labels for the report and page tests, made from the bundled German Credit data.

A points rubric with seeded noise, as an LLM's labels would have: not ``Risk``, so the report has
provider labels and real outcomes to compare. The file is laid out as `preauth label` writes it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from preauth import applications


def rubric_labels(frame: pd.DataFrame, seed: int = 0) -> np.ndarray:
    """1 = bad risk: balances, duration, amount, age and housing add points; noise blurs the cut."""
    points = (
        2.0 * (frame["Checking account"] == "little")
        - 1.0 * (frame["Checking account"] == "unknown")
        + 2.0 * (frame["Duration"] > 24)
        + 1.0 * (frame["Credit amount"] > 5000)
        + 1.0 * (frame["Age"] < 25)
        + 1.0 * (frame["Saving accounts"] == "little")
        + 1.0 * (frame["Housing"] == "rent")
    ).to_numpy(dtype=np.float64)
    noise = np.random.default_rng(seed).normal(0.0, 1.2, len(points))
    return (points + noise >= 4.0).astype(np.int64)


def labels_file(risk_csv: Path, out: Path) -> Path:
    """A labels file: the applications, Risk, the rubric's ``target`` and its provenance columns."""
    apps = applications.read_applications(risk_csv)
    table = pd.read_csv(risk_csv, index_col=0)
    table["id"] = apps.ids.to_numpy()
    table["target"] = np.where(rubric_labels(apps.frame) == 1, "bad risk", "good risk")
    table["provider"], table["model"], table["prompt_version"] = "rules", "test-rubric", "rubric-test"
    table.to_csv(out, index=False)
    return out
