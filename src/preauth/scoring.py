"""Scoring applications with a model bundle, and results in the original format.

A result object is, key for key, what the original pipeline wrote to
``results/inference_results<stamp>.json``::

    {"input_data": {...the row as given...}, "probability_fraud": p(bad risk), "is_fraud": p >= threshold,
     "target": "bad risk" | "good risk", "confidence": max(p, 1 - p), "timestamp": ISO 8601}

When the input names an id column, each result starts with the applicant's ``"id"`` too, so results
join back to applications by id, not by row order.

Large results never become a Python dict per row: they are assembled as an Arrow table and turned
into bytes by Arrow's native code (Parquet, CSV; JSON and JSON Lines through :mod:`.json_lines`).
The results files themselves, whole or a batch at a time, are written by :mod:`.results`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

from .applications import Applications
from .bundles import Bundle
from .decisions import (
    APPROVE,
    BAD_RISK,
    DECLINE,
    GOOD_RISK,
    REFER,
    RESULT_KEYS,
    RESULTS_FILE_COLUMNS,
    result_object,
)
from .errors import ConfigurationError
from .features import encode
from .files import DirectFile, claimed_name
from .formats import OutputFormat

REASONS = RESULTS_FILE_COLUMNS[-1]
"""The key of a result's principal reasons (with ``explain``), after the original keys."""


@dataclass
class Scored:
    """Probabilities and decisions for validated applications, with what produced them."""

    applications: Applications
    probability: np.ndarray
    threshold: float
    model_version: str
    timestamp: str
    reasons: list[list[dict[str, Any]]] | None = None
    decisions: list[str] | None = None
    """With ``explain``: approve, decline or refer (see :mod:`preauth.referral`), next to the reasons."""

    @property
    def is_bad(self) -> np.ndarray:
        return self.probability >= self.threshold

    @property
    def confidence(self) -> np.ndarray:
        return np.maximum(self.probability, 1.0 - self.probability)

    def __len__(self) -> int:
        return len(self.probability)


def score(bundle: Bundle, applications: Applications, *, explain: bool = False) -> Scored:
    """Score validated applications; with ``explain``, attach each decision's principal reasons."""
    if applications.schema is not bundle.schema and not applications.schema.same_as(bundle.schema):
        raise ConfigurationError(
            f"the applications were read with the schema '{applications.schema.name}', "
            f"the model {bundle.version} was trained on '{bundle.schema.name}'"
        )
    matrix = encode(applications.frame, bundle.features, bundle.schema)
    probability = bundle.predict_proba(matrix) if len(matrix) else np.zeros(0)
    reasons = None
    decisions = None
    if explain and len(matrix):
        from .reasons import explain as explain_rows
        from .referral import referral_reasons

        explained = explain_rows(bundle, matrix, applications.frame)
        rows = applications.frame[bundle.features].to_dict(orient="records")
        refer = [referral_reasons(bundle, row, float(p)) for row, p in zip(rows, probability, strict=True)]
        reasons = [[*ref, *(_reason_dict(r) for r in row)] for ref, row in zip(refer, explained, strict=True)]
        decisions = [
            REFER if ref else DECLINE if p >= bundle.threshold else APPROVE
            for ref, p in zip(refer, probability, strict=True)
        ]
    return Scored(
        applications,
        probability,
        bundle.threshold,
        bundle.version,
        datetime.now().isoformat(),
        reasons,
        decisions,
    )


def _reason_dict(reason: Any) -> dict[str, Any]:
    if isinstance(reason, dict):
        return reason
    if hasattr(reason, "model_dump"):
        return dict(reason.model_dump())
    if hasattr(reason, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(reason)
    return {"text": str(reason)}


def result_objects(scored: Scored) -> list[dict[str, Any]]:
    """The original result objects as Python dicts (for small batches and the service)."""
    given = scored.applications.given
    records = given.to_dict(orient="records")
    ids = scored.applications.ids.to_numpy(dtype=object) if scored.applications.has_ids else None
    out = []
    for i, record in enumerate(records):
        p = float(scored.probability[i])
        item: dict[str, Any] = {} if ids is None else {"id": _plain(ids[i])}
        inputs = {k: _plain(v) for k, v in record.items()}
        item |= result_object(inputs, p, bool(p >= scored.threshold), scored.timestamp)
        if scored.decisions is not None:
            item["decision"] = scored.decisions[i]
        if scored.reasons is not None:
            item[REASONS] = scored.reasons[i]
        out.append(item)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


# --------------------------------------------------------------------------------------------
# Files


@contextmanager
def results_path(directory: Path, fmt: OutputFormat, now: datetime | None = None) -> Iterator[Path]:
    """``inference_results_<YYYYmmdd_HHMMSS>.<ext>``, the original's name, never overwriting: held
    for the block against other runs starting in the same second (:func:`.files.claimed_name`)."""
    stamp = (now or datetime.now()).strftime("_%Y%m%d_%H%M%S")
    names = (directory / f"inference_results{stamp}{f'_{n}' if n else ''}.{fmt}" for n in itertools.count())
    with claimed_name(names) as path:
        yield path


def write_json_lines(scored: Scored, handle: IO[bytes] | DirectFile) -> None:
    """The results, one JSON object a line (:mod:`.json_lines`: built a column at a time in Arrow)."""
    for lines in _json_objects(scored, b"\n"):
        handle.write(lines)


def json_items(scored: Scored) -> list[Any]:
    """The results as the items of a compact JSON array: buffers of ``{...},{...}``, no brackets."""
    items = list(_json_objects(scored, b","))
    if items:
        items[-1] = items[-1][:-1]  # no comma after the last
    return items


def _json_objects(scored: Scored, end: bytes) -> Any:
    """Each result as a JSON object followed by ``end``; the reasons are JSON text already
    (:func:`result_table`), and go into each object as they are."""
    from .json_lines import json_lines

    return json_lines(result_table(scored, nested=True), raw=(REASONS,), end=end.decode())


def result_table(scored: Scored, nested: bool) -> Any:
    """The results as an Arrow table: ``input_data`` a struct (``nested``) or its columns spread out."""
    import pyarrow as pa
    import pyarrow.compute as pc

    given = scored.applications.given
    inputs = pa.Table.from_pandas(given.reset_index(drop=True), preserve_index=False).combine_chunks()
    columns: dict[str, Any] = {}
    if scored.applications.has_ids:
        columns["id"] = pa.array([_plain(v) for v in scored.applications.ids.to_numpy(dtype=object)])
    input_data, probability_fraud, is_fraud, target, confidence, timestamp = RESULT_KEYS
    if nested:
        columns[input_data] = pa.StructArray.from_arrays(
            [c.chunk(0) if c.num_chunks else pa.array([], c.type) for c in inputs.columns],
            names=inputs.column_names,
        )
    else:
        columns.update(zip(inputs.column_names, inputs.columns, strict=True))
    columns[probability_fraud] = pa.array(scored.probability, type=pa.float64())
    columns[is_fraud] = pa.array(scored.is_bad)
    # Built in Arrow, not as a million Python strings: these two took a third of a batch's table.
    columns[target] = pc.if_else(columns[is_fraud], BAD_RISK, GOOD_RISK)
    columns[confidence] = pa.array(scored.confidence, type=pa.float64())
    columns[timestamp] = pa.repeat(pa.scalar(scored.timestamp, pa.string()), len(scored))
    if scored.decisions is not None:
        columns["decision"] = pa.array(scored.decisions, type=pa.string())
    if scored.reasons is not None:
        columns[REASONS] = pa.array([orjson.dumps(r).decode() for r in scored.reasons])
    return pa.table(columns)
