"""``preauth train --dask``: labels larger than one machine, read, checked and fit on the workers.

What runs where:

* **on the workers, piece by piece**: the labels (a file, a directory or a glob of CSV/Parquet
  files) are cut into pieces as ``predict --dask`` cuts them (:func:`preauth.cluster.plan`); each
  piece is parsed, put through the one value check (:func:`preauth.training.data.label_rows`) and
  encoded in one task (:func:`check_piece`), so a worker holds the text cells of the piece it is
  checking and of no other. Its rows are numbered within the piece; once every piece's row count
  is back, each is numbered in the whole input (:func:`place_piece`: a reject names its row as on
  one machine) and split: whether a row is in the holdout is drawn from the seed and the row's
  number (:mod:`preauth.training.rows`), so no row travels to decide it. The encoded blocks stay
  on the workers;
* **what comes back to the train process is bounded**: per piece, its counts (rows, rejects and
  the first reasons, labels), its training ranges for the refer rule, its fingerprint, and a
  seeded sample of at most ``search_rows`` rows over the whole input (each row's own draw; the
  ``search_rows`` smallest win, whatever the pieces). On that sample the train process runs the
  single-machine :func:`preauth.training.train`: the search (add ``--study-storage`` to spread its
  trials), calibration, threshold, baselines, and the holdout figures on the sample's holdout rows;
* **the two boosters on many rows** (the training part, measured on the holdout, and the refit
  on every row) are fit with ``xgboost.dask`` on ``DaskQuantileDMatrix`` over the blocks the
  workers hold: every labelled row, not the sample.

So the train process's memory is bounded by ``search_rows`` whatever the input's size. When the
input has at most ``search_rows`` labelled rows the sample is all of them: the train process
then gets every row, makes the single-machine holdout split, and the run is the one-process run
with the boosters fit across the workers (on data whose quantile sketches are exact and with
every row in every tree, tree for tree the same as :func:`xgboost.train`; with ``subsample`` < 1
each worker draws its own rows, so the trees differ slightly, as two seeds' would).

The result is a plain ``Booster``: saved with :func:`preauth.bundles.save_bundle`, ``serve`` and
``predict`` cannot tell it from one fitted on one machine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..applications import GERMAN, Schema
from ..applications.batches import BATCH_ROWS
from ..errors import ClusterError, InputError
from ..features import encode, feature_types
from ..referral import merge_seen, seen_in_training
from .booster_fit import FitPart, FitRequest
from .config import MAX_REJECTS_KEPT, TrainingConfig
from .data import LabeledData, LabeledRows, Sample, Tally, data_fingerprint, label_rows, labeled_data
from .rows import SAMPLE, draws, in_holdout

if TYPE_CHECKING:
    from ..cluster import Piece

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
    workers = _workers(client)
    try:
        dtrain = dxgb.DaskQuantileDMatrix(
            client,
            x,
            y,
            feature_names=list(features),
            feature_types=feature_types(features, schema),
            enable_categorical=True,
        )
        trained = dxgb.train(client, dict(params), dtrain, num_boost_round=n_rounds)
    except Exception as error:
        # xgboost.dask cannot lose a worker mid-fit ("Resilience is not yet supported"): its
        # allreduce fails, or it refuses the worker Dask started in its place, each in words of
        # its own. Any error with a worker gone is that loss; the run stops before any bundle.
        lost = workers - _workers(client)
        if not lost:
            raise
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ClusterError(
            f"the Dask cluster lost {len(lost)} of its {len(workers)} workers while fitting "
            f"({type(error).__name__}: {reason}); nothing was written, run again"
        ) from None
    return trained["booster"]


def _workers(client: Any) -> set[str]:
    """The addresses of the cluster's workers now (a worker restarted after a kill has a new one)."""
    return set(client.scheduler_info()["workers"])


SEARCH_ROWS = 200_000
"""Labelled rows the train process gets by default (``--search-rows``): its memory bound."""


@dataclass(frozen=True)
class ClusterTraining:
    """The cluster a ``train --dask`` run uses: its client, how it was named, rows per block, how
    many labelled rows the train process may hold (the sample the search runs on), and rows per piece."""

    client: Any
    spec: str
    partition_rows: int = PARTITION_ROWS
    search_rows: int = SEARCH_ROWS
    piece_rows: int = BATCH_ROWS
    """CSV lines or Parquet rows per piece the labels are cut into (:func:`preauth.cluster.plan`):
    one task reads and checks one piece, so a worker holds about this many rows of text cells at a
    time. Tests and benchmarks cut small pieces; the bundle does not record it."""

    def load(self, source: str, config: TrainingConfig, schema: Schema = GERMAN) -> ClusterLabels:
        """Read, check, encode and split the labels on the workers; the train process gets a sample."""
        return load_on_cluster(self, source, config, schema)

    def meta(self) -> dict[str, Any]:
        """What the bundle records about the cluster that trained it."""
        return {
            "name": "dask",
            "scheduler": self.spec,
            "workers": len(self.client.scheduler_info()["workers"]),
            "partition_rows": self.partition_rows,
            "search_rows": self.search_rows,
        }


@dataclass
class CheckedPiece:
    """One piece's labelled rows as its worker checked and encoded them, numbered from 1 within the
    piece: where the piece starts in the whole input is known only once every piece is counted.
    The text cells it was read from are gone (they live only inside :func:`check_piece`)."""

    labeled: LabeledRows
    x: np.ndarray


@dataclass
class PreparedPiece:
    """One piece's labelled rows as a worker keeps them: checked, encoded, numbered in the whole
    input, split, with each row's sample draw. Only what :class:`PieceSummary` holds of it leaves
    the worker, and the sample."""

    labeled: LabeledRows
    x: np.ndarray
    holdout: np.ndarray
    draws: np.ndarray


@dataclass
class PieceSummary:
    """What the train process learns of a piece: counts, ranges, fingerprint, the smallest draws."""

    tally: Tally
    train_rows: int
    holdout_rows: int
    fingerprint: str
    seen: dict[str, Any]
    smallest: np.ndarray


def check_piece(
    piece: Piece, source: str, config: TrainingConfig, schema: Schema, rename: bool
) -> CheckedPiece | None:
    """The worker's first part for one piece: read it, the value check and the encoding (None: no rows).

    Reading and checking in one task is what bounds a worker's memory: a piece's text cells exist
    only while its own check runs, never beside the other pieces' (the rows are numbered within
    the piece, so nothing waits for the pieces before it to be read).
    """
    from ..cluster import read_piece

    table = read_piece(piece)
    if not len(table):
        return None
    if rename:  # files may spell a column differently
        table.columns = pd.Index([schema.canonical_column(str(c)) or str(c) for c in table.columns])
    try:
        labeled = label_rows(table, source, config.target, schema)
    except InputError as error:
        if error.row is not None or piece.path == source:
            raise
        # A column missing (or a target) is the file's, not the whole input's: among many
        # files, the one to fix is named. Rows keep the input's name: they are numbered in it.
        raise InputError(error.message, source=piece.path, column=error.column) from None
    kept = labeled.found[:MAX_REJECTS_KEPT]
    labeled.tally.rejects = []  # written by place_piece, once the rows have their numbers in the whole
    return CheckedPiece(
        labeled=LabeledRows(labeled.frame, labeled.y, labeled.risk, labeled.tally, kept),
        x=encode(labeled.frame, config.features(schema), schema),
    )


def rows_read(piece: CheckedPiece | None) -> int:
    """How many rows the piece's table had (the rows its rejects and unlabeled rows count in)."""
    return 0 if piece is None else piece.labeled.tally.rows


def place_piece(piece: CheckedPiece, before: int, source: str, config: TrainingConfig) -> PreparedPiece:
    """The worker's second part: number the piece's rows in the whole input (``before`` rows come
    first) and draw each row's holdout flag and sample draw from that number.

    The result shares the checked piece's arrays (a new index, not a copy of the rows).
    """
    labeled = piece.labeled
    frame = labeled.frame.copy(deep=False)
    frame.index = frame.index + before
    found = [replace(r, row=r.row + before) for r in labeled.found]
    tally = replace(labeled.tally, rejects=[r.message(source) for r in found])
    rows = frame.index.to_numpy()
    return PreparedPiece(
        labeled=LabeledRows(frame, labeled.y, labeled.risk, tally, found),
        x=piece.x,
        holdout=in_holdout(rows, config.holdout_fraction, config.seed),
        draws=draws(rows, config.seed, SAMPLE),
    )


def summarize(piece: PreparedPiece, config: TrainingConfig, schema: Schema, search_rows: int) -> PieceSummary:
    """The bounded part of a piece that goes to the train process."""
    labeled = piece.labeled
    fit = labeled.frame if config.refit else labeled.frame[~piece.holdout]
    smallest = _smallest(piece.draws, search_rows)
    return PieceSummary(
        tally=labeled.tally,
        train_rows=int((~piece.holdout).sum()),
        holdout_rows=int(piece.holdout.sum()),
        fingerprint=data_fingerprint(labeled.frame, labeled.y, schema),
        seen=seen_in_training(fit, config.features(schema), schema),
        smallest=smallest,
    )


def sample_of(piece: PreparedPiece, below: float | None) -> tuple[LabeledRows, np.ndarray]:
    """The piece's rows whose draw is at most ``below`` (None: all), with their holdout flags."""
    labeled = piece.labeled
    if below is None:
        return labeled, piece.holdout
    keep = piece.draws <= below
    risk = labeled.risk[keep] if labeled.risk is not None else None
    return LabeledRows(labeled.frame[keep], labeled.y[keep], risk, labeled.tally), piece.holdout[keep]


def block(piece: PreparedPiece, part: FitPart, labels: bool) -> np.ndarray:
    """The encoded rows (or their labels) of ``part`` in this piece, for ``DaskQuantileDMatrix``."""
    rows = ~piece.holdout if part == "training part" else slice(None)
    return piece.labeled.y[rows].astype(np.float32) if labels else piece.x[rows]


@dataclass
class ClusterLabels:
    """The labels held on the cluster: the train process's sample (``data``) and the workers' pieces.

    :meth:`fit` is the :data:`preauth.training.booster_fit.BoosterFit` of the run: on the request's
    arrays when the sample is every row, else on every row of its part, from the blocks on the workers.
    """

    cluster: ClusterTraining
    data: LabeledData
    pieces: list[Any]
    summaries: list[PieceSummary]
    fit_rows: dict[str, int] = field(default_factory=dict)

    def fit(self, request: FitRequest) -> Any:
        client, rows = self.cluster.client, self.cluster.partition_rows
        if self.data.sample is None:
            x, y = request.x, request.y
        else:
            x, y = self._blocks(request.part, len(request.features))
        self.fit_rows[request.part] = int(x.shape[0])
        return fit_booster_on_cluster(
            client,
            x,
            y,
            request.features,
            request.params,
            request.n_rounds,
            partition_rows=rows,
            schema=request.schema,
        )

    def _blocks(self, part: FitPart, columns: int) -> tuple[Any, Any]:
        """Dask arrays over the pieces' blocks of ``part``, which never leave the workers."""
        import dask
        import dask.array as da

        client = self.cluster.client
        xs, ys = [], []
        for piece, summary in zip(self.pieces, self.summaries, strict=True):
            n = summary.train_rows if part == "training part" else summary.train_rows + summary.holdout_rows
            if n == 0:
                continue
            x = client.submit(block, piece, part, False, pure=False)
            y = client.submit(block, piece, part, True, pure=False)
            xs.append(da.from_delayed(dask.delayed(x), shape=(n, columns), dtype=np.float32))
            ys.append(da.from_delayed(dask.delayed(y), shape=(n,), dtype=np.float32))
        return da.concatenate(xs), da.concatenate(ys)

    def meta(self) -> dict[str, Any]:
        """The engine block of ``bundle.json``: the cluster, and the rows each fit and the search had."""
        return {
            **self.cluster.meta(),
            "sampled": self.data.sample is not None,
            "search_sample_rows": len(self.data.y),
            "fit_rows": dict(self.fit_rows),
        }

    def release(self) -> None:
        """Let the workers drop the pieces (Dask forgets a result once no future refers to it)."""
        self.pieces = []


def load_on_cluster(
    cluster: ClusterTraining, source: str, config: TrainingConfig, schema: Schema = GERMAN
) -> ClusterLabels:
    """A file, directory or glob of CSV/Parquet checked on the workers, rows in file-name order.

    The train process holds the pieces' summaries (one at a time while they arrive, to merge their
    smallest draws) and then the sample: at most ``cluster.search_rows`` labelled rows.
    """
    from distributed import as_completed

    from ..cluster import input_files, plan

    client = cluster.client
    pieces = plan(input_files(source), cluster.piece_rows, schema=schema)
    rename = len({piece.path for piece in pieces}) > 1
    checked = client.map(
        check_piece, pieces, source=source, config=config, schema=schema, rename=rename, pure=False
    )
    sizes: list[int] = client.gather(client.map(rows_read, checked, pure=False))
    if sum(sizes) == 0:
        raise InputError("no applications (header only)", source=source)
    befores = np.cumsum([0, *sizes])[:-1]
    prepared = [
        client.submit(place_piece, piece, int(before), source, config, pure=False)
        for piece, before, size in zip(checked, befores, sizes, strict=True)
        if size
    ]
    del checked  # each checked piece is dropped once placed: the placed one shares its arrays
    summaries: list[PieceSummary | None] = [None] * len(prepared)
    smallest = np.empty(0)
    futures = client.map(
        summarize, prepared, config=config, schema=schema, search_rows=cluster.search_rows, pure=False
    )
    keys = {future.key: i for i, future in enumerate(futures)}
    for future, summary in as_completed(futures, with_results=True):
        smallest = _smallest(np.concatenate([smallest, summary.smallest]), cluster.search_rows)
        summary.smallest = np.empty(0)
        summaries[keys[future.key]] = summary
    done = [s for s in summaries if s is not None]
    tally = Tally()
    for summary in done:
        tally = tally.plus(summary.tally)
    used = sum(s.train_rows + s.holdout_rows for s in done)
    below = None if used <= cluster.search_rows else float(smallest.max())
    parts: list[tuple[LabeledRows, np.ndarray]] = client.gather(
        client.map(sample_of, prepared, below=below, pure=False)
    )
    sample = None
    if below is not None:
        fingerprint = hashlib.sha256("".join(s.fingerprint for s in done).encode("ascii")).hexdigest()
        seen: dict[str, Any] = {}
        for summary in done:
            seen = merge_seen(seen, summary.seen)
        sample = Sample(
            holdout=np.concatenate([holdout for _, holdout in parts]),
            train_rows=sum(s.train_rows for s in done),
            holdout_rows=sum(s.holdout_rows for s in done),
            fingerprint=fingerprint,
            seen=seen,
        )
    data = labeled_data([rows for rows, _ in parts], tally, source, config.target, schema, sample=sample)
    held = ClusterLabels(cluster, data, prepared, done)
    if sample is None:
        held.release()  # the train process has every row: the fits take them from here
    return held


def _smallest(values: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` smallest of ``values`` (all of them when there are fewer), in no order."""
    return values if len(values) <= k else np.partition(values, k - 1)[:k]
