"""``preauth train --dask``: the labels read by the workers, the big boosters fit across them.

What runs where:

* **reading**: the labels (a file, a directory or a glob of CSV/Parquet files) are cut into pieces
  as ``predict --dask`` cuts them (:func:`preauth.cluster.plan`), each piece parsed on a worker;
  the pieces come back in order and go through the same :func:`preauth.training.load_labels`
  (the one value check, rejects counted and named) as on one machine;
* **the search**: Optuna's trials and their cross-validation folds run in this process, as on one
  machine, so the same seed chooses the same parameters; to spread the trials over processes or
  machines, add ``--study-storage`` (one study in PostgreSQL, see ``training.shared_study``);
* **the two boosters on many rows** (the training part before the holdout evaluation, and the
  refit on every row) are fit across the workers with ``xgboost.dask``.

So the client holds the validated rows and the search's folds (what one machine's search needs);
the workers hold the boosting matrices, the costliest memory of the fits on all rows.

The rows are spread over the workers as a Dask array of row blocks; ``DaskQuantileDMatrix`` builds
the histogram cuts from all of them and ``xgboost.dask.train`` grows each tree with the workers'
histograms summed, so the booster is the one XGBoost's ``hist`` method grows on all rows at once
(on data whose quantile sketches are exact and with every row in every tree, tree for tree the
same as :func:`xgboost.train`; with ``subsample`` < 1 each worker draws its own rows, so the trees
differ slightly from one process's, as two seeds' would).
The result is a plain ``Booster``: saved with :func:`preauth.bundles.save_bundle`, ``serve`` and
``predict`` cannot tell it from one fitted on one machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..applications import GERMAN, MALFORMED_ROWS, Schema
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


@dataclass(frozen=True)
class ClusterTraining:
    """The cluster a ``train --dask`` run uses: its client, how it was named, rows per block."""

    client: Any
    spec: str
    partition_rows: int = PARTITION_ROWS

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        features: list[str],
        params: dict[str, Any],
        n_rounds: int,
        schema: Schema,
    ) -> Any:
        """A :data:`preauth.training.fit.BoosterFit` that fits across the workers."""
        return fit_booster_on_cluster(
            self.client, x, y, features, params, n_rounds, partition_rows=self.partition_rows, schema=schema
        )

    def read_table(self, source: str, schema: Schema = GERMAN) -> pd.DataFrame:
        """The labels as text cells, read piece by piece on the workers."""
        return read_on_cluster(self.client, source, schema)

    def meta(self) -> dict[str, Any]:
        """What the bundle records about the cluster that trained it."""
        return {
            "name": "dask",
            "scheduler": self.spec,
            "workers": len(self.client.scheduler_info()["workers"]),
            "partition_rows": self.partition_rows,
        }


def read_on_cluster(client: Any, source: str, schema: Schema = GERMAN) -> pd.DataFrame:
    """A file, directory or glob of CSV/Parquet as one table of text cells, rows in file-name order.

    Each piece is parsed on a worker (:func:`preauth.cluster.read_piece`); the rows a piece could
    not parse keep their place as blank rows, renumbered here into the whole table, so that
    validation rejects them by their row as on one machine.
    """
    from ..cluster import input_files, plan, read_piece

    pieces = plan(input_files(source), schema=schema)
    tables: list[pd.DataFrame] = client.gather(client.map(read_piece, pieces, pure=False))
    malformed: dict[int, Any] = {}
    offset = 0
    for table in tables:
        malformed.update({offset + row: value for row, value in table.attrs.get(MALFORMED_ROWS, {}).items()})
        if len({piece.path for piece in pieces}) > 1:  # files may spell a column differently
            table.columns = pd.Index([schema.canonical_column(str(c)) or str(c) for c in table.columns])
        offset += len(table)
    whole = pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
    whole.attrs = {MALFORMED_ROWS: malformed} if malformed else {}
    return whole
