"""Baselines on the same rows: approve-all, refuse-all, a constant guess, logistic regression."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from preauth.training import RISK_MEASURE, load_labels
from preauth.training.baselines import _inputs, logistic_regression


def test_every_evaluation_carries_its_baselines_on_the_same_rows(labels_file: Path, trained) -> None:
    data = load_labels(labels_file)
    compared = trained.metrics["baselines"]
    holdout = trained.holdout
    y_hold = holdout["label"].to_numpy()
    y_train = pd.Series(data.y, index=data.frame.index).loc[trained.train_rows].to_numpy()
    labels = compared["holdout"][trained.metrics["measured_against"]]
    assert labels["n"] == len(y_hold) == trained.metrics["holdout"]["n"]
    assert labels["approve_all_cost"] == pytest.approx(5 * y_hold.mean())
    assert labels["refuse_all_cost"] == pytest.approx(1 - y_hold.mean())
    assert labels["base_rate_brier"] == pytest.approx(np.mean((y_train.mean() - y_hold) ** 2))
    assert labels["model_auc"] == trained.metrics["holdout"]["roc_auc"]
    risk = compared["holdout"][RISK_MEASURE]
    known = holdout["risk"].notna().to_numpy()
    assert risk["n"] == int(known.sum()) == trained.metrics["against_risk"]["n"]
    assert risk["approve_all_cost"] == pytest.approx(5 * holdout["risk"][known].astype(int).mean())

    # logistic regression on the search's own folds, recomputed independently
    frame = data.frame.loc[trained.train_rows]
    x = _inputs(frame, trained.features)
    aucs = []
    for fit_part, score_part in trained.search.splits:
        model = logistic_regression(trained.features).fit(x.iloc[fit_part], y_train[fit_part])
        aucs.append(roc_auc_score(y_train[score_part], model.predict_proba(x.iloc[score_part])[:, 1]))
    assert compared["cv"]["logistic_auc"] == pytest.approx(np.mean(aucs))
    assert compared["cv"]["model_auc"] == trained.search.cv_auc
    full = logistic_regression(trained.features).fit(x, y_train)
    p = full.predict_proba(_inputs(holdout, trained.features))[:, 1]
    assert labels["logistic_auc"] == pytest.approx(roc_auc_score(y_hold, p))
    assert labels["logistic_brier"] == pytest.approx(np.mean((p - y_hold) ** 2))
