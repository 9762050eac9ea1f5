"""Importing XGBoost for scoring without the 1–3 s it spends importing scikit-learn.

``import xgboost`` imports scikit-learn (and SciPy) whenever it is installed, only to offer its
scikit-learn estimator classes (``XGBClassifier``...). Scoring uses the ``Booster`` alone, so
``predict`` and ``serve`` import XGBoost with scikit-learn hidden for the duration of that one
import: the process pays for scikit-learn only if something it does needs it (training does, and
imports it itself; XGBoost's own estimator classes are then not usable in that process).
"""

from __future__ import annotations

import sys
from types import ModuleType


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
    return xgb
