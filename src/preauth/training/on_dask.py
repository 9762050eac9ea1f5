"""Fitting the booster on a Dask cluster (``xgboost.dask``), for training data past one machine.

The rows are spread over the workers as a Dask array of row blocks; ``DaskQuantileDMatrix`` builds
the histogram cuts from all of them and ``xgboost.dask.train`` grows each tree with the workers'
histograms summed, so the booster is the one XGBoost's ``hist`` method grows on all rows at once
(on data whose quantile sketches are exact, tree for tree the same as :func:`xgboost.train`).
The result is a plain ``Booster``: saved with :func:`preauth.bundles.save_bundle`, ``serve`` and
``predict`` cannot tell it from one fitted on one machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..applications import GERMAN, Schema
from ..features import feature_types

PARTITION_ROWS = 100_000
"""Rows per block handed to a worker."""


def fit_booster_on_cluster(
    client: Any,
    x: Any,
    y: Any,
    features: Sequence[str],
    params: dict[str, Any],
    n_rounds: int,
    *,
    partition_rows: int = PARTITION_ROWS,
    schema: Schema = GERMAN,
) -> Any:
    """Train ``n_rounds`` trees with ``params`` on ``(x, y)`` across the cluster's workers.

    ``x`` is the encoded matrix (:func:`preauth.features.encode`) or a Dask array of its row blocks,
    ``y`` the labels (1 = bad risk) alike; numpy inputs are cut into blocks of ``partition_rows``.
    """
    import dask.array as da
    import xgboost.dask as dxgb

    if isinstance(x, np.ndarray):
        x = da.from_array(x, chunks=(partition_rows, -1))
    if isinstance(y, np.ndarray):
        y = da.from_array(y.astype(np.float32), chunks=partition_rows)
    dtrain = dxgb.DaskQuantileDMatrix(
        client,
        x,
        y,
        feature_names=list(features),
        feature_types=feature_types(features, schema),
        enable_categorical=True,
    )
    trained = dxgb.train(client, dict(params), dtrain, num_boost_round=n_rounds)
    return trained["booster"]
