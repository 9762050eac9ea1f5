"""Label provenance: which labels trained the model, and how they agree with real outcomes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd

from .. import evaluation
from .figures import readable
from .targets import Target

NESTED_TITLES = {"agreement_with_risk": "Agreement with real outcomes (Risk), on all labeled rows"}


def section(meta: Mapping[str, Any], holdout: pd.DataFrame, trained: Target) -> dict[str, Any]:
    """The provenance saved by training, and the labels' agreement with Risk on the holdout."""
    provenance = meta.get("label_provenance") or {}
    items = [(str(k), readable(v)) for k, v in provenance.items() if not isinstance(v, Mapping)]
    # the labels file by name: the trainer's directories mean nothing to a reader, and the
    # report is served over HTTP, where no internal path may appear
    items = [(k, PurePath(v).name if k == "source" and v else v) for k, v in items]
    nested = {
        NESTED_TITLES.get(str(k), str(k)): [(str(kk), readable(vv)) for kk, vv in v.items()]
        for k, v in provenance.items()
        if isinstance(v, Mapping)
    }
    agreement = None
    if "risk" in holdout.columns and holdout["risk"].notna().sum() >= 2:
        known = holdout["risk"].notna().to_numpy()
        risk = holdout["risk"].to_numpy(dtype=np.float64, na_value=np.nan)[known].astype(np.int64)
        label = holdout["label"].to_numpy(dtype=np.int64)[known]
        if not np.array_equal(risk, label):
            measured = evaluation.agreement(label, risk)
            agreement = {
                "n": measured["n"],
                "accuracy": measured["accuracy"],
                "kappa": measured["cohen_kappa"],
                "majority": measured["majority_baseline"],
                "both_good": int(np.sum((risk == 0) & (label == 0))),
                "label_bad_risk_good": int(np.sum((risk == 0) & (label == 1))),
                "label_good_risk_bad": int(np.sum((risk == 1) & (label == 0))),
                "both_bad": int(np.sum((risk == 1) & (label == 1))),
                "label_bad_share": float(np.mean(label)),
                "risk_bad_share": float(np.mean(risk)),
            }
    trained_on_risk = provenance.get("target") == "risk" or (
        "risk" in holdout.columns and agreement is None and bool(holdout["risk"].notna().all())
    )
    return {
        "name": trained.name,
        "items": items,
        "nested": nested,
        "agreement": agreement,
        "trained_on_risk": trained_on_risk,
        "fingerprint": meta.get("data_fingerprint"),
    }


# --------------------------------------------------------------------------------------------
# The hyperparameter search
