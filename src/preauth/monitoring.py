"""Monitoring: is a served model still seeing what it was trained on, and is it still right?

:func:`monitor` reads one model's decisions from the decision store over a window and answers
with plain data (the CLI prints it, the service returns it as JSON and as Prometheus gauges, the
page draws it: one path):

* drift: the population stability index of every model input and of the score against the
  model's training reference (:mod:`preauth.drift`), flagged ``watch`` at 0.1 and ``act`` at 0.25;
* decision rates per day or week: approve, decline, refer (and the score's PSI per period);
* once outcomes exist (``preauth outcomes import``): live AUC with a bootstrap interval,
  calibration (mean predicted vs observed default rate, ECE) and approval vs default rate by
  score band.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import sqlalchemy as sa

from .applications import Schema
from .bundles import read_bundle_schema, read_meta
from .calibration import expected_calibration_error
from .decisions import APPROVE, BAD_RISK, DECLINE, REFER
from .drift import (
    ACT,
    EPSILON,
    WATCH,
    bin_labels,
    canonical_column_values,
    flag,
    live_shares,
    psi,
    reference_for,
    reference_shares,
)
from .evaluation import bootstrap_intervals, roc_auc
from .outcomes import outcomes
from .store import DecisionStore, as_utc, decisions, filtered

Every = Literal["day", "week"]
BANDS = 10
"""Score bands for approval vs default: equal-width bands of P(bad risk), 0–10%, 10–20%, ..."""
AUC_RESAMPLES = 200
"""Bootstrap resamples of the live AUC's interval (a 95% percentile interval)."""
FEW_ROWS = 100
"""Below this many decisions PSI is mostly noise (about bins/rows): the report says so."""


@dataclass(frozen=True)
class Decided:
    """The columns of the stored decisions monitoring reads, one array per column."""

    created_at: list[datetime]
    inputs: list[dict[str, Any]]
    probability: np.ndarray
    decision: list[str]
    outcome: list[str | None]


def read_decided(
    store: DecisionStore, model_version: str, *, since: datetime | None, until: datetime | None
) -> Decided:
    """One model's decisions in ``[since, until)`` with their outcomes (None when not known yet)."""
    query = (
        sa.select(
            decisions.c.created_at,
            decisions.c.input,
            decisions.c.probability,
            decisions.c.decision,
            decisions.c.target,
            outcomes.c.outcome,
        )
        .select_from(decisions.outerjoin(outcomes, outcomes.c.decision_id == decisions.c.id))
        .where(decisions.c.model_version == model_version)
        .order_by(decisions.c.created_at)
    )
    with store.engine.connect() as connection:
        rows = list(connection.execute(filtered(query, since=since, until=until)))
    return Decided(
        created_at=[as_utc(r.created_at) for r in rows],
        inputs=[dict(r.input or {}) for r in rows],
        probability=np.array([float(r.probability) for r in rows], dtype=np.float64),
        # a decision stored before the decision column: approve or decline by its target
        decision=[r.decision or (DECLINE if r.target == BAD_RISK else APPROVE) for r in rows],
        outcome=[r.outcome for r in rows],
    )


def by_field(inputs: Sequence[Mapping[str, Any]], schema: Schema) -> list[dict[str, Any]]:
    """Stored applications (kept as given, under any alias) keyed by the schema's field names."""
    names: dict[str, str | None] = {}
    out = []
    for given in inputs:
        row = {}
        for key, value in given.items():
            if key not in names:
                names[key] = schema.canonical_column(str(key))
            name = names[key]
            if name is not None:
                row[name] = value
        out.append(row)
    return out


def drift_of(reference: Mapping[str, Any], values: Sequence[Any]) -> dict[str, Any]:
    """PSI of live values against one reference, its flag, and the shares bin by bin."""
    expected = reference_shares(reference)
    actual = live_shares(reference, values)
    value = psi(expected, actual) if len(values) else None
    return {
        "psi": value,
        "flag": flag(value),
        "bins": [
            {"bin": label, "reference": float(e), "live": float(a)}
            for label, e, a in zip(bin_labels(reference), expected, actual, strict=True)
        ],
    }


def rates(decided: Sequence[str]) -> dict[str, float | None]:
    """Share of approve, decline and refer among decisions (None when there are none)."""
    n = len(decided)
    return {
        f"{name}_rate": (sum(1 for d in decided if d == name) / n) if n else None
        for name in (APPROVE, DECLINE, REFER)
    }


def period_start(moment: datetime, every: Every) -> datetime:
    """Midnight UTC of the day, or of the Monday of the ISO week, a moment falls in."""
    day = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    return day - timedelta(days=day.weekday()) if every == "week" else day


def periods(decided: Decided, every: Every, reference: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Per day or week: decisions, their rates, and the score's PSI in that period."""
    groups: dict[datetime, list[int]] = {}
    for i, moment in enumerate(decided.created_at):
        groups.setdefault(period_start(moment, every), []).append(i)
    out = []
    for start, rows in sorted(groups.items()):
        score_psi = (
            drift_of(reference["score"], decided.probability[rows].tolist())["psi"]
            if reference is not None
            else None
        )
        out.append(
            {
                "start": start.isoformat(),
                "decisions": len(rows),
                **rates([decided.decision[i] for i in rows]),
                "score_psi": score_psi,
            }
        )
    return out


def live_quality(decided: Decided, *, resamples: int = AUC_RESAMPLES, seed: int = 0) -> dict[str, Any] | None:
    """AUC (with interval), calibration and bands, on the decisions with an outcome; None without."""
    known = np.array([o is not None for o in decided.outcome], dtype=bool)
    if not known.any():
        return None
    y = np.array([o == "defaulted" for o in decided.outcome], dtype=np.int64)[known]
    p = decided.probability[known]
    auc = roc_auc(y, p)
    interval = (
        bootstrap_intervals(y, p, 0.5, resamples=resamples, seed=seed)["roc_auc"] if auc is not None else None
    )
    return {
        "outcomes": int(known.sum()),
        "defaulted": int(y.sum()),
        "auc": auc,
        "auc_interval": interval,
        "auc_method": f"95% percentile bootstrap over {resamples} resamples"
        if auc is not None
        else "needs both repaid and defaulted outcomes",
        "calibration": {
            "mean_predicted": float(p.mean()),
            "observed_default_rate": float(y.mean()),
            "ece": expected_calibration_error(y, p),
        },
        "bands": score_bands(decided),
    }


def score_bands(decided: Decided) -> list[dict[str, Any]]:
    """Per band of P(bad risk): decisions, approval rate, outcomes known and their default rate."""
    index = np.minimum((decided.probability * BANDS).astype(np.int64), BANDS - 1)
    bands = []
    for b in range(BANDS):
        rows = np.flatnonzero(index == b)
        if not len(rows):
            continue
        known = [decided.outcome[i] for i in rows if decided.outcome[i] is not None]
        bands.append(
            {
                "band": f"{b / BANDS:.0%}–{(b + 1) / BANDS:.0%}",
                "low": b / BANDS,
                "high": (b + 1) / BANDS,
                "decisions": int(len(rows)),
                "approval_rate": sum(1 for i in rows if decided.decision[i] == APPROVE) / len(rows),
                "outcomes": len(known),
                "default_rate": (sum(1 for o in known if o == "defaulted") / len(known)) if known else None,
            }
        )
    return bands


def monitor(
    store: DecisionStore,
    bundle_dir: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    every: Every = "day",
    resamples: int = AUC_RESAMPLES,
) -> dict[str, Any]:
    """The monitoring report of the model in ``bundle_dir`` over ``[since, until)`` (JSON-ready)."""
    meta = read_meta(bundle_dir)
    schema = read_bundle_schema(bundle_dir, meta)
    version = str(meta["version"])
    reference = reference_for(bundle_dir, meta, schema)
    decided = read_decided(store, version, since=since, until=until)
    n = len(decided.decision)
    report: dict[str, Any] = {
        "model_version": version,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "every": every,
        "decisions": n,
        "thresholds": {"watch": WATCH, "act": ACT, "epsilon": EPSILON},
        "reference": (
            {"source": reference.get("source"), "rows": reference.get("rows")}
            if reference is not None
            else None
        ),
        "notes": [],
        **rates(decided.decision),
        "inputs": [],
        "score": None,
        "periods": periods(decided, every, reference),
        "live": live_quality(decided, resamples=resamples),
    }
    if reference is None:
        report["notes"].append(
            f"model {version} has no training reference (bundle.json) and no holdout.parquet: "
            "PSI cannot be computed for it (retrain to get one)"
        )
    elif n:
        rows = by_field(decided.inputs, schema)
        for name, ref in reference["inputs"].items():
            values = canonical_column_values([row.get(name) for row in rows], name, schema)
            found = drift_of(ref, values)
            report["inputs"].append({"feature": name, **found})
        report["score"] = drift_of(reference["score"], decided.probability.tolist())
    if n == 0:
        report["notes"].append(f"no decisions by model {version} in this window: nothing to monitor yet")
    elif n < FEW_ROWS:
        report["notes"].append(f"only {n} decisions: PSI on fewer than {FEW_ROWS} is mostly noise")
    report["worst"] = worst_flag(report)
    return report


def worst_flag(report: Mapping[str, Any]) -> str | None:
    """The most serious flag of any input or of the score: ``act``, ``watch``, ``ok`` or None."""
    found = [item.get("flag") for item in report.get("inputs", [])]
    if report.get("score"):
        found.append(report["score"].get("flag"))
    for level in ("act", "watch", "ok"):
        if level in found:
            return level
    return None
