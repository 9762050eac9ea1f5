"""Importing XGBoost for scoring without the 1–3 s it spends importing scikit-learn.

``import xgboost`` imports scikit-learn (and SciPy) whenever it is installed, only to offer its
scikit-learn estimator classes (``XGBClassifier``...). Scoring uses the ``Booster`` alone, so
``predict`` and ``serve`` import XGBoost with scikit-learn hidden for the duration of that one
import: the process pays for scikit-learn only if something it does needs it (training does, and
imports it itself). XGBoost's estimator classes, built on stand-ins while scikit-learn was hidden,
are forgotten; the first use of one (``from xgboost import XGBClassifier``) imports them again on
the real scikit-learn, so they work in that process too.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any


def xgboost() -> ModuleType:
    """The ``xgboost`` module, imported without scikit-learn unless that is already loaded."""
    if "xgboost" in sys.modules:
        return sys.modules["xgboost"]
    hidden = "sklearn" not in sys.modules
    if hidden:
        sys.modules["sklearn"] = None  # type: ignore[assignment]  # makes `import sklearn` fail
    try:
        import xgboost as xgb
    finally:
        if hidden:
            del sys.modules["sklearn"]
    if hidden:
        for name in ("xgboost.sklearn", "xgboost.compat"):
            sys.modules.pop(name, None)
        for name in (*ESTIMATORS, "sklearn", "compat"):
            xgb.__dict__.pop(name, None)
        xgb.__dict__["__getattr__"] = _estimator  # PEP 562: asked for a name the module lacks
    return xgb


ESTIMATORS = ("XGBModel", "XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor")
"""XGBoost's scikit-learn estimator classes, imported on first use after a scoring-only import."""


def _estimator(name: str) -> Any:
    if name not in ESTIMATORS:
        raise AttributeError(f"module 'xgboost' has no attribute '{name}'")
    import importlib

    value = getattr(importlib.import_module("xgboost.sklearn"), name)
    setattr(sys.modules["xgboost"], name, value)
    return value
