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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .bundles import read_bundle_schema, read_meta
from .calibration import chance_fields, expected_calibration_error
from .decisions import APPROVE
from .drift import ACT, EPSILON, WATCH, bin_labels, flag, live_counts, psi, reference_for, reference_shares
from .evaluation import auc_interval, roc_auc
from .monitoring_reads import DECISIONS
from .monitoring_window import Decided, WindowCache
from .store import DecisionStore

Every = Literal["day", "week"]
BANDS = 10
"""Score bands for approval vs default: equal-width bands of P(bad risk), 0–10%, 10–20%, ..."""
AUC_RESAMPLES = 200
"""Bootstrap resamples of the live AUC's interval (a 95% percentile interval)."""
FEW_ROWS = 100
"""Below this many decisions PSI is mostly noise (about bins/rows): the report says so."""


def drift_of(reference: Mapping[str, Any], values: Sequence[Any] | np.ndarray) -> dict[str, Any]:
    """PSI of live values against one reference, its flag, and the shares bin by bin."""
    return counted_drift(reference, live_counts(reference, values), len(values))


def counted_drift(reference: Mapping[str, Any], counts: np.ndarray, n: int) -> dict[str, Any]:
    """:func:`drift_of` from the live counts per bin of ``n`` values."""
    expected = reference_shares(reference)
    actual = counts / n if n else counts
    value = psi(expected, actual) if n else None
    return {
        "psi": value,
        "flag": flag(value),
        "bins": [
            {"bin": label, "reference": float(e), "live": float(a)}
            for label, e, a in zip(bin_labels(reference), expected, actual, strict=True)
        ],
    }


def rates(decided: np.ndarray) -> dict[str, float | None]:
    """Share of approve, decline and refer among decisions (indices in :data:`DECISIONS`; None when none)."""
    n = len(decided)
    return {
        f"{name}_rate": (int(np.count_nonzero(decided == i)) / n) if n else None
        for i, name in enumerate(DECISIONS)
    }


def periods(decided: Decided, every: Every, reference: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Per day or week: decisions, their rates, and the score's PSI in that period."""
    starts = decided.day
    if every == "week":  # back to the Monday: 1970-01-01, day 0, was a Thursday
        starts = starts - (starts.astype(np.int64) + 3) % 7
    found, group = np.unique(starts, return_inverse=True)
    if not len(found):
        return []
    order = np.argsort(group, kind="stable")
    bounds = np.cumsum(np.bincount(group, minlength=len(found)))
    out = []
    for start, rows in zip(found.tolist(), np.split(order, bounds[:-1]), strict=True):
        score_psi = (
            drift_of(reference["score"], decided.probability[rows])["psi"] if reference is not None else None
        )
        out.append(
            {
                "start": datetime(start.year, start.month, start.day, tzinfo=UTC).isoformat(),
                "decisions": len(rows),
                **rates(decided.decision[rows]),
                "score_psi": score_psi,
            }
        )
    return out


def live_quality(
    decided: Decided, *, resamples: int = AUC_RESAMPLES, seed: int = 0, cache: WindowCache | None = None
) -> dict[str, Any] | None:
    """AUC (with interval), calibration and bands, on the decisions with an outcome; None without.

    ``cache``: a refresher's :class:`WindowCache`, which keeps the interval while nothing changed."""
    known = decided.known
    if not known.any():
        return None
    y = decided.defaulted[known].astype(np.int64)
    p = decided.probability[known]
    auc = roc_auc(y, p)
    interval = None
    if auc is not None:
        draw = cache.auc_interval if cache is not None else auc_interval
        interval = draw(y, p, resamples=resamples, seed=seed)
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
            **chance_fields(p),
        },
        "bands": score_bands(decided),
    }


def score_bands(decided: Decided) -> list[dict[str, Any]]:
    """Per band of P(bad risk): decisions, approval rate, outcomes known and their default rate."""
    index = np.minimum((decided.probability * BANDS).astype(np.int64), BANDS - 1)
    inside = index >= 0

    def per_band(mask: np.ndarray) -> list[int]:
        return np.bincount(index[inside & mask], minlength=BANDS).tolist()

    every = per_band(np.ones(len(index), dtype=bool))
    approved = per_band(decided.decision == DECISIONS.index(APPROVE))
    known = per_band(decided.known)
    defaulted = per_band(decided.known & decided.defaulted)
    return [
        {
            "band": f"{b / BANDS:.0%}–{(b + 1) / BANDS:.0%}",
            "low": b / BANDS,
            "high": (b + 1) / BANDS,
            "decisions": every[b],
            "approval_rate": approved[b] / every[b],
            "outcomes": known[b],
            "default_rate": (defaulted[b] / known[b]) if known[b] else None,
        }
        for b in range(BANDS)
        if every[b]
    ]


def monitor(
    store: DecisionStore,
    bundle_dir: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    every: Every = "day",
    resamples: int = AUC_RESAMPLES,
    cache: WindowCache | None = None,
) -> dict[str, Any]:
    """The monitoring report of the model in ``bundle_dir`` over ``[since, until)`` (JSON-ready).

    Whoever asks again and again (the service's gauges) passes the same ``cache``: a refresh then
    reads only the decisions and outcomes stored since the last (:mod:`preauth.monitoring_window`),
    for the same report.
    """
    meta = read_meta(bundle_dir)
    schema = read_bundle_schema(bundle_dir, meta)
    version = str(meta["version"])
    reference = reference_for(bundle_dir, meta, schema)
    cache = cache or WindowCache()
    decided = cache.read(store, version, since=since, until=until, reference=reference, schema=schema)
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
        "live": live_quality(decided, resamples=resamples, cache=cache),
    }
    if reference is None:
        report["notes"].append(
            f"model {version} has no training reference (bundle.json) and no holdout.parquet: "
            "PSI cannot be computed for it (retrain to get one)"
        )
    elif n:
        for name, ref in reference["inputs"].items():
            report["inputs"].append({"feature": name, **counted_drift(ref, decided.input_counts[name], n)})
        report["score"] = drift_of(reference["score"], decided.probability)
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
