"""Importing XGBoost for scoring without the 1–3 s it spends importing scikit-learn.

``import xgboost`` imports scikit-learn (and SciPy) whenever it is installed, only to offer its
scikit-learn estimator classes (``XGBClassifier``...). Scoring uses the ``Booster`` alone, so
``predict`` and ``serve`` import XGBoost with scikit-learn hidden for the duration of that one
import: the process pays for scikit-learn only if something it does needs it (training does, and
imports it itself). XGBoost's estimator classes (and SciPy's special functions they import) are left out;
the first use of one (``from xgboost import XGBClassifier``) imports them then, on the real
scikit-learn, so they work in that process as in any other.
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
        # ``None`` in sys.modules makes an import fail. XGBoost's estimator module goes too: it
        # imports SciPy's special functions (0.2 s), and XGBoost skips it when it cannot import it.
        sys.modules["sklearn"] = None  # type: ignore[assignment]
        sys.modules["xgboost.sklearn"] = None  # type: ignore[assignment]
    try:
        import xgboost as xgb
        import xgboost.data  # noqa: F401  # what predicting imports later, on the same terms
    finally:
        if hidden:
            del sys.modules["sklearn"], sys.modules["xgboost.sklearn"]
    if hidden:
        # XGBoost's compatibility module took scikit-learn for absent. Whatever imports it from now
        # on (the estimators, xgboost.dask) gets a fresh one, which finds scikit-learn if installed.
        sys.modules.pop("xgboost.compat", None)
        xgb.__dict__["__getattr__"] = _on_first_use  # PEP 562: asked for a name the module lacks
    return xgb


LATER = {
    **dict.fromkeys(
        ("XGBModel", "XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor"),
        "xgboost.sklearn",
    ),
    **dict.fromkeys(("plot_importance", "plot_tree", "to_graphviz"), "xgboost.plotting"),
}
"""XGBoost's names left out of a scoring-only import, and the module each is imported from on first use."""


def _on_first_use(name: str) -> Any:
    if name not in LATER:
        raise AttributeError(f"module 'xgboost' has no attribute '{name}'")
    import importlib

    value = getattr(importlib.import_module(LATER[name]), name)
    setattr(sys.modules["xgboost"], name, value)
    return value
