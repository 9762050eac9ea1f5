"""Baselines: what a model must beat, measured on the same rows as the model itself.

A figure alone cannot say whether a model is worth serving. Beside every evaluation the run
records the cost of approving everyone and of refusing everyone (the German Credit cost matrix),
the Brier score of a constant guess at the training part's rate of bad risk, and a plain logistic
regression (one-hot categories, standardised numbers) cross-validated on the search's own folds
and, fit on the training part, scored on the holdout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..applications import GERMAN, Schema
from ..evaluation import choose_threshold, expected_cost, roc_auc


def logistic_regression(features: Sequence[str], schema: Schema = GERMAN) -> Any:
    """The linear peer: one-hot categories (unknown levels ignored), standardised numbers (a missing
    number, which a lender's schema may allow, as the median plus a missing flag), L2, C=1."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    categories = [c for c in features if schema.field(c).is_category]
    numbers = [c for c in features if not schema.field(c).is_category]
    columns = ColumnTransformer(
        [
            ("categories", OneHotEncoder(handle_unknown="ignore"), categories),
            (
                "numbers",
                make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()),
                numbers,
            ),
        ]
    )
    return make_pipeline(columns, LogisticRegression(C=1.0, max_iter=2000))


def _inputs(frame: pd.DataFrame, features: Sequence[str], schema: Schema = GERMAN) -> pd.DataFrame:
    out = frame[list(features)].copy()
    for c in features:
        if schema.field(c).is_category:
            out[c] = out[c].astype(object).where(out[c].notna(), "missing").astype(str)
        else:
            out[c] = out[c].astype(np.float64)
    return out


def baselines(
    features: Sequence[str],
    train_frame: pd.DataFrame,
    y_train: np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    hold_frame: pd.DataFrame,
    holdout_truths: dict[str, tuple[np.ndarray, np.ndarray]],
    schema: Schema = GERMAN,
) -> dict[str, Any]:
    """Baselines on the training part's folds and on the holdout rows, per labelling.

    ``holdout_truths`` maps a labelling's name to ``(positions in the holdout, 0/1 labels)``: the
    trained labels on every holdout row, and ``Risk`` where it is known.
    """
    x_train = _inputs(train_frame, features, schema)
    oof = np.empty(len(y_train), dtype=np.float64)
    fold_aucs = []
    for fit_part, score_part in splits:
        model = logistic_regression(features, schema).fit(x_train.iloc[fit_part], y_train[fit_part])
        oof[score_part] = model.predict_proba(x_train.iloc[score_part])[:, 1]
        fold_aucs.append(roc_auc(y_train[score_part], oof[score_part]) or 0.5)
    threshold = choose_threshold(y_train, oof, schema.costs).threshold
    model = logistic_regression(features, schema).fit(x_train, y_train)
    p_hold = model.predict_proba(_inputs(hold_frame, features, schema))[:, 1]
    rate = float(np.mean(y_train))
    holdout: dict[str, Any] = {}
    for name, (positions, y) in holdout_truths.items():
        p = p_hold[positions]
        holdout[name] = {
            "n": len(y),
            "approve_all_cost": schema.costs.approve_bad * float(np.mean(y)),
            "refuse_all_cost": schema.costs.refuse_good * float(1 - np.mean(y)),
            "base_rate_brier": float(np.mean((rate - y) ** 2)),
            "logistic_auc": roc_auc(y, p),
            "logistic_brier": float(np.mean((p - y) ** 2)),
            "logistic_cost": expected_cost(y, p, threshold, schema.costs),
        }
    return {
        "cv": {
            "rows": f"the search's {len(splits)} folds of the {len(y_train)}-row training part",
            "logistic_auc": float(np.mean(fold_aucs)),
            "logistic_auc_std": float(np.std(fold_aucs)),
        },
        "holdout": holdout,
        "base_rate": rate,
        "logistic_threshold": threshold,
        "logistic": "one-hot categories, standardised numbers, L2 (C=1); its threshold the lowest "
        "expected cost on its own out-of-fold predictions",
    }
