"""A booster that raises XGBoost's own error on any batch holding an applicant aged 77.

It travels to Dask workers by value (``cloudpickle.register_pickle_by_value``), so a real cluster's
worker processes meet the failure on exactly the piece that holds that row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MARKED_AGE = 77
ERROR = (
    "[01:02:03] /workspace/src/predictor/cpu_predictor.cc:123: Check failed: allocation of the "
    "prediction buffer\nStack trace:\n  [bt] (0) libxgboost.so(+0x1234)"
)


class RefusingBooster:
    """Delegates to a real booster, except for batches with an applicant aged :data:`MARKED_AGE`."""

    def __init__(self, booster: Any, age_column: int) -> None:
        self.booster = booster
        self.age_column = age_column

    def inplace_predict(self, matrix: Any, *args: Any, **kwargs: Any) -> Any:
        import xgboost

        ages = np.asarray(matrix)[:, self.age_column]  # the encoded matrix score() hands over
        if (ages == MARKED_AGE).any():
            raise xgboost.core.XGBoostError(ERROR)
        return self.booster.inplace_predict(matrix, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "booster":  # while unpickling, before __dict__ is filled
            raise AttributeError(name)
        return getattr(self.booster, name)
