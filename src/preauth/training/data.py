"""The labelled data a model learns from: read, validated, and traced to where it came from.

``Risk`` is carried along only to *measure*, never to train or tune, unless the run asked for
``--target risk``; rows without a label are left out and counted.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..applications import GERMAN, Reject, Schema, normalize_name, read_table, validate
from ..errors import InputError
from ..evaluation import agreement
from .config import _LABEL_CODES, MAX_REJECTS_KEPT, TARGET_COLUMN, Target, outcome_measure

# --------------------------------------------------------------------------------------------
# Labels


@dataclass(frozen=True)
class Sample:
    """What labelled rows drawn as a seeded sample of a larger input know about the whole of it.

    The workers decide per row, from the seed and the row's number, whether it is in the holdout
    (:mod:`preauth.training.rows`); ``holdout`` carries that decision for the sample's rows, so the
    search, calibration and evaluation on the sample keep to the split the boosters on all rows
    were fit with. ``fingerprint`` and ``seen`` are exact over the whole input (reduced per piece).
    """

    holdout: np.ndarray
    train_rows: int
    holdout_rows: int
    fingerprint: str
    seen: dict[str, Any]

    @property
    def rows(self) -> int:
        return self.train_rows + self.holdout_rows


@dataclass
class LabeledData:
    """Validated applications with a 0/1 label each (1 = bad risk) and, when known, the outcome."""

    frame: pd.DataFrame  # canonical columns, index = 1-based row in the source
    y: np.ndarray
    risk: np.ndarray | None  # 1 = bad, the real outcome; None when the file has no Risk column
    target: Target
    measured_against: str
    counts: dict[str, int]
    provenance: dict[str, Any]
    rejects: list[str] = field(default_factory=list)
    schema: Schema = GERMAN
    sample: Sample | None = None
    """Set when the rows are a seeded sample of a larger input (``train --dask``): what is known of the whole."""

    @property
    def outcome_measure(self) -> str:
        return outcome_measure(self.schema)


def load_labels(
    path: str | Path,
    target: Target = "llm",
    schema: Schema = GERMAN,
    truth: str | Path | None = None,
    table: pd.DataFrame | None = None,
) -> LabeledData:
    """Read a labels file: the application columns plus ``target`` (good risk/bad risk) or ``Risk``.

    Rows with an empty ``target`` are unlabeled and left out; rows that fail validation or carry
    an unreadable label are rejected with their reason; both are counted, never silently dropped.
    ``truth`` names another file whose ``Risk`` is the real outcome of these applicants (joined by
    id, or by row order, as ``preauth agreement`` joins): the model, trained on the provider's
    labels, is then measured against it too; it takes the place of a ``Risk`` column here.
    ``table``: the file's text cells when already read.
    """
    source = str(path)
    if truth is not None and target == "risk":
        raise InputError(
            "--truth measures a model trained on provider labels against real outcomes; "
            "with --target risk the outcome already is the label",
            source=source,
        )
    if truth is not None and schema.target is None:
        raise InputError(
            f"the schema '{schema.name}' has no [target] to hold the real outcomes", source=source
        )
    if table is None:
        table = read_table(path, schema)
    labeled = label_rows(table, source, target, schema, truth=truth)
    return labeled_data([labeled], labeled.tally, source, target, schema)


@dataclass
class Tally:
    """What is counted over a table's rows: exact, added up piece by piece when pieces are read apart.

    ``rejects`` holds the reasons (all of them, or the first ``MAX_REJECTS_KEPT`` when added up
    from pieces); ``rejected`` counts every one. ``markers`` counts the provider, model and prompt
    version cells of the rows used (what the label provenance names).
    """

    rows: int = 0
    unlabeled: int = 0
    rejected: int = 0
    used: int = 0
    bad: int = 0
    rejects: list[str] = field(default_factory=list)
    markers: dict[str, Counter[str]] = field(default_factory=dict)
    target_column: str | None = None
    joined: str | None = None
    truth_rejects: list[str] = field(default_factory=list)

    def plus(self, other: Tally, keep_rejects: int = MAX_REJECTS_KEPT) -> Tally:
        """This tally and the next piece's, rows in order; at most ``keep_rejects`` reasons kept."""
        markers = {name: Counter(counts) for name, counts in self.markers.items()}
        for name, counts in other.markers.items():
            markers.setdefault(name, Counter()).update(counts)
        return Tally(
            rows=self.rows + other.rows,
            unlabeled=self.unlabeled + other.unlabeled,
            rejected=self.rejected + other.rejected,
            used=self.used + other.used,
            bad=self.bad + other.bad,
            rejects=(self.rejects + other.rejects)[:keep_rejects],
            markers=markers,
            target_column=self.target_column or other.target_column,
            joined=self.joined or other.joined,
            truth_rejects=(self.truth_rejects + other.truth_rejects)[:keep_rejects],
        )

    def counts(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "rejected": self.rejected,
            "unlabeled": self.unlabeled,
            "used": self.used,
            "bad_risk": self.bad,
            "good_risk": self.used - self.bad,
        }


@dataclass
class LabeledRows:
    """One table's labelled rows (a whole file, or one piece of it read on a Dask worker).

    ``risk`` is None when no validated row of the table has a known outcome. ``found`` holds the
    rejects behind ``tally.rejects`` as rows, in the same order: a Dask worker checks a piece before
    it knows where the piece starts in the whole input, and numbers them in the whole afterwards.
    """

    frame: pd.DataFrame
    y: np.ndarray
    risk: np.ndarray | None
    tally: Tally
    found: list[Reject] = field(default_factory=list)


def label_rows(
    table: pd.DataFrame,
    source: str,
    target: Target = "llm",
    schema: Schema = GERMAN,
    *,
    first_row: int = 1,
    truth: str | Path | None = None,
) -> LabeledRows:
    """The one value check of labelled rows: validate ``table`` and read each row's label.

    ``first_row``: the number of the table's first row in the whole input (a piece of a larger
    input passes where it starts), so that rows and rejects keep their numbers in the whole.
    """
    target_column = next((c for c in table.columns if normalize_name(str(c)) == TARGET_COLUMN), None)
    if target == "llm" and target_column is None:
        raise InputError(
            "no 'target' column (good risk / bad risk); label the file with `preauth label`, "
            "or train on the real outcome with --target risk",
            source=source,
        )
    apps = validate(table, source=source, schema=schema, first_row=first_row)
    if target == "risk" and schema.target is None:
        raise InputError(
            f"the schema '{schema.name}' has no [target]: --target risk needs the real outcome", source=source
        )
    if target == "risk" and not apps.has_outcome:
        raise InputError(
            f"no '{apps.outcome_column}' column: --target risk needs the real outcome", source=source
        )
    positions = apps.frame.index.to_numpy() - first_row
    found = list(apps.rejects)
    joined: str | None = None
    truth_rejects: list[str] = []
    if truth is not None:
        from ..labels import join_outcomes
        from ..labels._agreement import _has_id_column

        # A refused row of the outcomes file is an unknown outcome here: the summary counts the
        # known, and the refused are named as `agreement` names them.
        outcomes, joined, truth_rejects = join_outcomes(
            apps, _has_id_column(table), len(table), source, truth, schema=schema
        )
        assert schema.target is not None
        apps.frame[schema.target.column] = outcomes.map({"bad risk": "bad", "good risk": "good"})
    # 1 bad, 0 good, NaN where a row has no outcome: such a row is neither trained on with
    # --target risk nor counted when measuring against Risk. It is never read as good risk.
    known_risk = apps.outcome().notna().to_numpy() if apps.has_outcome else None
    risk_all = None
    if known_risk is not None and known_risk.any():
        bad = (apps.outcome() == "bad").to_numpy(dtype=np.float64)
        risk_all = np.where(known_risk, bad, np.nan)

    if target == "llm":
        assert target_column is not None
        text = table[target_column].iloc[positions].astype(str).str.strip().str.lower().to_numpy()
        unlabeled = np.isin(text, ["", "nan", "none", "null", "na"])
        codes = pd.Series(text).map(_LABEL_CODES).to_numpy(dtype=np.float64)
        unreadable = np.isnan(codes) & ~unlabeled
        for i in np.flatnonzero(unreadable):
            raw = table[target_column].iloc[positions[i]]
            found.append(
                Reject(
                    row=int(positions[i]) + first_row,
                    column=str(target_column),
                    value=str(raw),
                    reason=f"'{raw}' is not a label (good risk / bad risk)",
                )
            )
        keep = ~unlabeled & ~unreadable
        y = codes[keep].astype(np.int64)
    else:
        assert known_risk is not None
        unlabeled = ~known_risk
        keep = known_risk
        y = (apps.outcome() == "bad").to_numpy(dtype=np.int64)[keep]

    markers = {} if target == "risk" else _markers(table, positions[keep])
    tally = Tally(
        rows=len(table),
        unlabeled=int(unlabeled.sum()),
        rejected=len(found),
        used=int(keep.sum()),
        bad=int(y.sum()),
        rejects=[r.message(source) for r in found],
        markers=markers,
        target_column=None if target_column is None else str(target_column),
        joined=joined,
        truth_rejects=truth_rejects,
    )
    return LabeledRows(apps.frame[keep], y, risk_all[keep] if risk_all is not None else None, tally, found)


def labeled_data(
    parts: list[LabeledRows],
    tally: Tally,
    source: str,
    target: Target,
    schema: Schema = GERMAN,
    *,
    sample: Sample | None = None,
) -> LabeledData:
    """The rows of ``parts`` (in order) as one :class:`LabeledData`, counted as ``tally`` says.

    ``tally`` covers the whole input; with ``sample`` the parts hold only a seeded sample of it.
    """
    counts = tally.counts()
    if counts["used"] == 0:
        # Every row refused says the same thing in nearly every such file (a column empty, a
        # coding the schema does not know): the first reason is what to fix.
        first = f"; the first: {tally.rejects[0].removeprefix(f'{source}, ')}" if tally.rejects else ""
        raise InputError(
            f"no labeled rows to train on ({counts['unlabeled']} unlabeled, {counts['rejected']} rejected){first}",
            source=source,
        )
    frame = pd.concat([p.frame for p in parts]) if len(parts) > 1 else parts[0].frame
    y = np.concatenate([p.y for p in parts]) if len(parts) > 1 else parts[0].y
    risk = None
    if any(p.risk is not None for p in parts):
        risk = np.concatenate([p.risk if p.risk is not None else np.full(len(p.y), np.nan) for p in parts])
    provenance = _provenance(tally, source, target, y, risk, schema)
    if tally.joined is not None:
        provenance["truth"] = {
            "source": tally.joined,
            "known": int((~np.isnan(risk)).sum()) if risk is not None else 0,
            "rejected": len(tally.truth_rejects),
            "rejected_rows": tally.truth_rejects[:MAX_REJECTS_KEPT],
        }
    return LabeledData(
        frame=frame,
        y=y,
        risk=risk,
        target=target,
        measured_against=provenance["measured_against"],
        counts=counts,
        provenance={**provenance, "counts": counts, "rejected_rows": tally.rejects[:MAX_REJECTS_KEPT]},
        rejects=tally.rejects,
        schema=schema,
        sample=sample,
    )


def _known(risk: np.ndarray | None) -> np.ndarray | None:
    """Where the outcome is known, or None when it is known nowhere."""
    if risk is None:
        return None
    known = ~np.isnan(risk)
    return known if known.any() else None


def _agreement_where_known(y: np.ndarray, risk: np.ndarray | None) -> dict[str, Any] | None:
    known = _known(risk)
    if risk is None or known is None:
        return None
    return agreement(y[known], risk[known].astype(np.int64))


def _markers(table: pd.DataFrame, positions: np.ndarray) -> dict[str, Counter[str]]:
    """Per provenance column present (provider, model, prompt_version), its non-empty cells' counts."""
    markers: dict[str, Counter[str]] = {}
    for name in _MARKERS:
        column = next((c for c in table.columns if normalize_name(str(c)) == name), None)
        if column is not None:
            markers[name] = Counter(v.strip() for v in table[column].iloc[positions].astype(str) if v.strip())
    return markers


def _most_common(markers: dict[str, Counter[str]], name: str) -> str | None:
    counts = markers.get(name)
    return counts.most_common(1)[0][0] if counts else None


_MARKERS = ("provider", "model", "prompt_version")


def _provenance(
    tally: Tally,
    source: str,
    target: Target,
    y: np.ndarray,
    risk: np.ndarray | None,
    schema: Schema = GERMAN,
) -> dict[str, Any]:
    if target == "risk":
        assert schema.target is not None
        return {
            "source": source,
            "target": "risk",
            "target_column": schema.target.column,
            "measured_against": outcome_measure(schema),
            "provider": None,
            "model": None,
            "prompt_version": None,
            "agreement_with_risk": None,
        }
    provider = _most_common(tally.markers, "provider")
    model = _most_common(tally.markers, "model")
    prompt = _most_common(tally.markers, "prompt_version")
    if provider:
        # The model names the labeller (two LLMs behind one prompt are different labels); the
        # prompt version is added when it is not the model's own (rules: rubric-v1 is both).
        measured = f"labels from {provider}/{model or prompt or 'unknown model'}"
        if prompt and model and prompt != model:
            measured += f" (prompts {prompt})"
    else:
        measured = f"labels from {Path(source).name}"
    return {
        "source": source,
        "target": "llm",
        "target_column": tally.target_column,
        "measured_against": measured,
        "provider": provider,
        "model": model,
        "prompt_version": prompt,
        "agreement_with_risk": _agreement_where_known(y, risk),
    }


def data_fingerprint(frame: pd.DataFrame, y: np.ndarray, schema: Schema = GERMAN) -> str:
    """sha256 of the training rows as the model saw them (canonical values and the 0/1 label)."""
    rows = frame[list(schema.field_names)].copy()
    rows["label"] = y
    return hashlib.sha256(rows.to_csv(index=True, lineterminator="\n").encode("utf-8")).hexdigest()
