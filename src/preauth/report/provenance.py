"""Label provenance: which labels trained the model, and how they agree with real outcomes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd

from .. import evaluation
from .figures import key_name, readable
from .targets import Target

NESTED_TITLES = {
    "agreement_with_risk": "Agreement with real outcomes (Risk), on all labeled rows",
    "counts": "Rows of the labels file",
}
NAMES = {
    "source": "Labels file",
    "target": "Trained on",
    "target_column": "Label column",
    "measured_against": "Metrics call these labels",
    "provider": "Label provider",
    "model": "Provider's model",
    "prompt_version": "Prompt version",
    "rejected_rows": "Rows rejected while reading the labels",
    # agreement_with_risk
    "n": "Applicants compared",
    "accuracy": "Accuracy",
    "cohen_kappa": "Cohen's kappa",
    "majority_baseline": "Majority class alone",
    "confusion": "Label against Risk",
    # counts
    "rows": "Rows read",
    "rejected": "Rejected",
    "unlabeled": "Without a label",
    "used": "Used for training",
    "bad_risk": "Labeled bad risk",
    "good_risk": "Labeled good risk",
}
"""What a reader sees for each key training saves; a key not here is shown with its underscores as spaces."""
TRAINED_ON = {"llm": "labels from a provider", "risk": "real outcomes (Risk)"}
CONFUSION_WORDS = {
    "tn": "both good",
    "fp": "label bad, Risk good",
    "fn": "label good, Risk bad",
    "tp": "both bad",
}


def _value(key: str, value: Any) -> str:
    if key == "source" and value:
        # the labels file by name: the trainer's directories mean nothing to a reader, and the
        # report is served over HTTP, where no internal path may appear
        return PurePath(str(value)).name
    if key == "target" and value in TRAINED_ON:
        return TRAINED_ON[value]
    if key == "confusion" and isinstance(value, Mapping):
        return " \u00b7 ".join(
            f"{CONFUSION_WORDS.get(str(k), str(k))} {readable(v)}" for k, v in value.items()
        )
    if key == "rejected_rows" and isinstance(value, list | tuple):
        return f"{len(value)} kept in bundle.json" if value else "none"
    return readable(value)


def section(meta: Mapping[str, Any], holdout: pd.DataFrame, trained: Target) -> dict[str, Any]:
    """The provenance saved by training, and the labels' agreement with Risk on the holdout."""
    provenance = meta.get("label_provenance") or {}
    items = [
        (key_name(str(k), NAMES), _value(str(k), v))
        for k, v in provenance.items()
        if not isinstance(v, Mapping)
    ]
    nested = {
        NESTED_TITLES.get(str(k), key_name(str(k), NAMES)): [
            (key_name(str(kk), NAMES), _value(str(kk), vv)) for kk, vv in v.items()
        ]
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
