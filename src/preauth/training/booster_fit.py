"""Fitting one of a run's boosters on many rows: what is asked (:class:`FitRequest`) and who fits it.

:func:`preauth.training.train` fits two boosters on many rows (both candidates on the training
part, and the refit on every row). It asks a :data:`BoosterFit` for each: :func:`fit_here` in
this process, or a ``train --dask`` run's :meth:`preauth.training.on_dask.ClusterLabels.fit`
across the workers. Both take the same one value, which lives here so that neither module has to
import the other for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..applications import Schema
from .search import _dmatrix

FitPart = Literal["training part", "all rows"]
"""Which of the two boosters on many rows a fit is: before the holdout evaluation, or the refit."""


@dataclass(frozen=True, eq=False, kw_only=True)
class FitRequest:
    """One booster to fit: ``n_rounds`` trees with ``params`` on ``part`` of the data.

    One value rather than seven arguments because the fit is written in three places (the type
    below, :func:`fit_here`, the cluster's fit) and asked for in three (:func:`.fit.train`): as
    arguments, each new piece of the fit meant three signatures kept equal by hand; as a value it
    is one field that every implementation reads and mypy checks. ``x`` and ``y`` are the encoded
    rows of ``part`` this process holds: all of them in one process; on a cluster, when they are a
    sample of a larger input, the cluster fits on every row of ``part`` from its workers' blocks.
    Frozen, so that an implementation cannot change what the next fit is asked (:func:`.fit.train`
    derives the default candidate's request from the tuned one's); no ``==`` or hash (arrays).
    """

    part: FitPart
    x: np.ndarray
    y: np.ndarray
    features: list[str]
    params: dict[str, Any]
    n_rounds: int
    schema: Schema


BoosterFit = Callable[[FitRequest], Any]
"""Fits the booster a :class:`FitRequest` asks for and returns it (an ``xgboost.Booster``)."""


def fit_here(request: FitRequest) -> Any:
    """The booster fit in this process on ``request.x``, ``request.y`` (the search's folds always are)."""
    import xgboost as xgb

    nthread = int(request.params.get("nthread", 1))
    dtrain = _dmatrix(request.x, request.y, request.features, nthread, request.schema)
    return xgb.train(request.params, dtrain, num_boost_round=request.n_rounds)
