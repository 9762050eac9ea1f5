"""Labels made anywhere, read as a :class:`LabelSet`, and measured against real outcomes.

Internal to :mod:`preauth.labels`, which re-exports everything public here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import evaluation
from ..applications import (
    GERMAN,
    Applications,
    OnUnknown,
    Reject,
    Schema,
    normalize_name,
    read_table,
    validate,
)
from ..errors import InputError
from ..prompts import BAD, GOOD, normalize_label

# ------------------------------------------------------------------------------------------
# Labels made anywhere, and how good they are


@dataclass
class LabelSet:
    """Applications with a label each: ``target`` is ``good risk``/``bad risk`` or None (unlabeled),
    indexed like ``applications.frame`` (1-based source rows)."""

    applications: Applications
    target: pd.Series
    description: pd.Series | None
    provenance: str
    has_id_column: bool

    @property
    def labeled(self) -> pd.Series:
        return self.target.notna()

    @property
    def bad(self) -> pd.Series:
        """1.0 for bad risk, 0.0 for good risk, NaN when unlabeled: the training target."""
        return self.target.map({BAD: 1.0, GOOD: 0.0}).astype("float64")


_ID_NAMES = frozenset({"id", "index", "unnamed_0", "application_id", "applicant_id"})


def _has_id_column(table: pd.DataFrame) -> bool:
    names = [str(c) for c in table.columns]
    return bool(names) and (names[0].strip() == "" or any(normalize_name(n) in _ID_NAMES for n in names))


def _column(table: pd.DataFrame, name: str) -> str | None:
    for raw in table.columns:
        if normalize_name(str(raw)) == name:
            return str(raw)
    return None


def _provenance(table: pd.DataFrame, source: str) -> str:
    provider, model = _column(table, "provider"), _column(table, "model")
    if provider and model:
        pairs = (table[provider].astype(str) + "/" + table[model].astype(str)).unique()
        return "labels from " + ", ".join(sorted(p for p in pairs if p != "/"))
    return f"labels from {Path(source).name}"


def read_labels(path: str | Path, *, on_unknown: OnUnknown = "error", schema: Schema = GERMAN) -> LabelSet:
    """Read any applications file with a ``target`` column (``good risk``/``bad risk``/empty).

    Rows with another target value are rejected with their reason, like any bad row.
    """
    source = str(path)
    table = read_table(path, schema)
    target_name = _column(table, "target")
    if target_name is None:
        raise InputError("no 'target' column (good risk / bad risk): not a labels file", source=source)
    applications = validate(table, source=source, on_unknown=on_unknown, schema=schema)
    positions = applications.frame.index.to_numpy() - 1
    raw = table[target_name].to_numpy(dtype=object)[positions]
    labels = [normalize_label(v) for v in raw]
    empty = np.array([str(v).strip() == "" for v in raw], dtype=bool)
    invalid = np.array([lab is None for lab in labels], dtype=bool) & ~empty
    if invalid.any():
        rows = applications.frame.index[invalid]
        for row, value in zip(rows, raw[invalid], strict=True):
            applications.rejects.append(
                Reject(
                    int(row),
                    target_name,
                    str(value),
                    f"'{value}' is not one of: good risk, bad risk, or empty",
                )
            )
        applications.rejects.sort(key=lambda r: r.row)
        keep = ~invalid
        applications = Applications(
            applications.frame[keep],
            applications.given[keep],
            applications.ids[keep],
            applications.rejects,
            applications.source,
            applications.columns,
        )
        labels = [lab for lab, k in zip(labels, keep, strict=True) if k]
        positions = positions[keep]
    target = pd.Series(labels, index=applications.frame.index, dtype=object, name="target")
    description_name = _column(table, "description")
    description = None
    if description_name is not None:
        description = pd.Series(
            table[description_name].to_numpy(dtype=object)[positions], index=applications.frame.index
        )
    return LabelSet(applications, target, description, _provenance(table, source), _has_id_column(table))


@dataclass(frozen=True)
class Agreement:
    """How often labels match the truth. Bad risk is the positive class of the confusion matrix."""

    measured_against: str
    n: int
    unlabeled: int
    accuracy: float
    kappa: float
    confusion: dict[str, int]
    majority_label: str
    majority_accuracy: float
    label_bad_rate: float
    truth_bad_rate: float
    labels: str = ""
    rejected: tuple[str, ...] = ()
    """One line per row left out as invalid (file, row, column: reason): the labels file's, then
    the truth file's."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_labels(values: Iterable[Any]) -> list[str | None]:
    return [normalize_label(v) for v in values]


def agreement(
    labels: Iterable[Any], truth: Iterable[Any], *, measured_against: str = "Risk", provenance: str = ""
) -> Agreement:
    """Accuracy, Cohen's kappa and the confusion matrix of labels against real outcomes.

    Both sides are read as good/bad (``good risk``, ``good``, ``bad risk``, ``bad``); pairs where
    the label is missing count as unlabeled, pairs with no truth are left out.
    """
    left, right = _as_labels(labels), _as_labels(truth)
    if len(left) != len(right):
        raise InputError(f"{len(left)} labels but {len(right)} outcomes; they must pair up one to one")
    pairs = [(a, b) for a, b in zip(left, right, strict=True) if b is not None]
    unlabeled = sum(a is None for a, _ in pairs)
    pairs = [(a, b) for a, b in pairs if a is not None]
    n = len(pairs)
    if n == 0:
        raise InputError("no labelled applicant has a known outcome; nothing to measure")
    codes = np.array([[a == BAD, b == BAD] for a, b in pairs], dtype=np.int64)
    measured = evaluation.agreement(codes[:, 0], codes[:, 1])
    label_bad, truth_bad = float(codes[:, 0].mean()), float(codes[:, 1].mean())
    return Agreement(
        measured_against=measured_against,
        n=n,
        unlabeled=unlabeled,
        accuracy=measured["accuracy"],
        kappa=measured["cohen_kappa"] or 0.0,  # no kappa when both sides are one class throughout
        confusion=measured["confusion"],
        majority_label=BAD if truth_bad > 0.5 else GOOD,
        majority_accuracy=measured["majority_baseline"],
        label_bad_rate=label_bad,
        truth_bad_rate=truth_bad,
        labels=provenance,
    )


def _truth(
    path: str | Path, on_unknown: OnUnknown, schema: Schema = GERMAN
) -> tuple[pd.Series, pd.Series, bool, int, str, list[str]]:
    """Outcomes from a file with ``Risk`` (or ``target``): (values by row, ids, has id, rows, name,
    one line per row of it refused), so that a refused outcome is named, not silently unknown."""
    source = str(path)
    table = read_table(path, schema)
    outcome = schema.target.column if schema.target is not None else None
    risk = _column(table, normalize_name(outcome)) if outcome is not None else None
    if risk is not None:
        applications = validate(table, source=source, on_unknown=on_unknown, required=(), schema=schema)
        values = applications.outcome().map({"good": GOOD, "bad": BAD})
        return (
            values,
            applications.ids,
            _has_id_column(table),
            len(table),
            f"{outcome} in {Path(source).name}",
            applications.reject_messages(),
        )
    if _column(table, "target") is not None:
        labels = read_labels(path, on_unknown=on_unknown, schema=schema)
        rows = len(table)
        return (
            labels.target,
            labels.applications.ids,
            labels.has_id_column,
            rows,
            f"target in {Path(source).name}",
            labels.applications.reject_messages(),
        )
    raise InputError(f"no '{outcome}' column with the real outcomes (good / bad)", source=source)


def measure_labels(
    labels_path: str | Path,
    truth_path: str | Path | None = None,
    *,
    on_unknown: OnUnknown = "unknown",
    schema: Schema = GERMAN,
) -> Agreement:
    """Measure a labels file against real outcomes.

    The truth is ``Risk`` in ``truth_path`` (or in the labels file itself when no truth file is
    named). Rows are joined by id when both files have an id column, otherwise by row order, in
    which case the files must have the same number of rows.
    """
    labels = read_labels(labels_path, on_unknown=on_unknown, schema=schema)
    if not len(labels.applications) and labels.applications.rejects:
        first = labels.applications.rejects[0]  # name the row, not only that nothing is left
        raise InputError(
            f"{first.reason}; no row left to measure",
            source=str(labels_path),
            row=first.row,
            column=first.column,
        )
    result, truth_rejected = _measure(labels, labels_path, truth_path, on_unknown, schema)
    return replace(result, rejected=(*labels.applications.reject_messages(), *truth_rejected))


def _measure(
    labels: LabelSet,
    labels_path: str | Path,
    truth_path: str | Path | None,
    on_unknown: OnUnknown,
    schema: Schema = GERMAN,
) -> tuple[Agreement, list[str]]:
    """The agreement, and one line per row of the truth file refused (left out of it)."""
    if truth_path is None:
        outcome = labels.applications.outcome_column
        if not labels.applications.has_outcome:
            raise InputError(
                f"no '{outcome}' column to measure against; name a file with --truth", source=str(labels_path)
            )
        truth = labels.applications.outcome().map({"good": GOOD, "bad": BAD})
        measured = agreement(
            labels.target,
            truth,
            measured_against=f"{outcome} in {Path(labels_path).name}",
            provenance=labels.provenance,
        )
        return measured, []
    label_rows = len(labels.applications.frame) + len(labels.applications.rejects)
    truth, joined, truth_rejected = join_outcomes(
        labels.applications,
        labels.has_id_column,
        label_rows,
        labels_path,
        truth_path,
        on_unknown=on_unknown,
        schema=schema,
    )
    measured = agreement(
        labels.target, truth.to_numpy(dtype=object), measured_against=joined, provenance=labels.provenance
    )
    return measured, truth_rejected


def join_outcomes(
    applications: Applications,
    has_id_column: bool,
    rows: int,
    labels_path: str | Path,
    truth_path: str | Path,
    *,
    on_unknown: OnUnknown = "unknown",
    schema: Schema = GERMAN,
) -> tuple[pd.Series, str, list[str]]:
    """The real outcome (``good risk``/``bad risk``/None) of each application, from another file.

    Rows are joined by id when both files have an id column, otherwise by row order, in which case
    the files must have the same number of rows (``rows`` counts this file's, rejected ones too).
    Returns the outcomes indexed like ``applications.frame``, a sentence naming the file and
    the join, and one line per row of the outcomes file refused (its outcome is left unknown). ``preauth agreement`` and ``preauth train --truth`` both join through here.
    """
    values, ids, truth_has_id, truth_rows, name, refused = _truth(truth_path, on_unknown, schema)
    if has_id_column and truth_has_id:
        ids = ids.astype(str).str.strip()
        duplicated = ids[ids.duplicated()]
        if len(duplicated):
            raise InputError(f"id '{duplicated.iloc[0]}' appears twice", source=str(truth_path), column="id")
        by_id = pd.Series(values.to_numpy(dtype=object), index=ids.to_numpy())
        label_ids = applications.ids.astype(str).str.strip()
        if not label_ids.isin(by_id.index).any():
            raise InputError(f"no id in {labels_path} matches an id in {truth_path}", source=str(labels_path))
        joined = by_id.reindex(label_ids.to_numpy()).to_numpy(dtype=object)
        return (
            pd.Series(joined, index=applications.frame.index, dtype=object),
            f"{name}, joined by id",
            refused,
        )
    if rows != truth_rows:
        raise InputError(
            f"{rows} rows here but {truth_rows} in {truth_path}; without an id column in both files "
            "rows are joined by order, so the counts must match",
            source=str(labels_path),
        )
    joined = values.reindex(applications.frame.index).to_numpy(dtype=object)
    by_order = pd.Series(joined, index=applications.frame.index, dtype=object)
    return by_order, f"{name}, joined by row order", refused
