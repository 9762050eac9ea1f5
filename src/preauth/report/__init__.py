"""The evaluation report: one self-contained HTML page per model bundle.

Training calls :func:`write_report` once it has written ``bundle.json``, ``holdout.parquet`` and
``trials.csv``; ``preauth report V --rebuild`` calls it again. The page opens from disk with no
network: figures are inline SVG, the stylesheet is inline. Everything is computed from the holdout
rows the search never saw, and every number says which labels it was measured against, because a
model trained on provider labels can look excellent against them and mediocre against real outcomes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..bundles import bundle_threshold, read_bundle_schema, read_meta
from ..evaluation import baseline_rows
from ..files import write_text_atomic
from . import effects, fairness, monotone, performance, provenance, search
from .effects import contributions
from .fairness import AGE_BANDS, age_band
from .figures import readable
from .performance import metric_table, threshold_metrics
from .search import param_importances, read_trials
from .targets import HOLDOUT_FILE, RISK_NAME, Target, read_holdout, targets, trained_label_name

REPORT_FILE = "report.html"


def write_report(bundle_path: Path) -> Path:
    """Build ``report.html`` in the bundle directory (atomically) and return its path."""
    bundle_path = Path(bundle_path)
    html = render_report(bundle_path)
    target = bundle_path / REPORT_FILE
    write_text_atomic(target, html)
    return target


def render_report(bundle_path: Path) -> str:
    """The report's HTML for a bundle directory."""
    import jinja2

    meta = read_meta(bundle_path)
    schema = read_bundle_schema(bundle_path, meta)
    holdout = read_holdout(bundle_path)
    threshold = bundle_threshold(bundle_path, meta)
    measured = targets(meta, holdout)
    trained = measured[0]
    context = {
        "meta": meta,
        "version": meta.get("version", bundle_path.name),
        "threshold": threshold,
        "threshold_rule": _threshold_rule(meta.get("threshold_rule")),
        "calibration_text": _calibration_text(meta.get("calibration")),
        "outcome_column": schema.target.column if schema.target is not None else "Risk",
        "costs": schema.costs,
        "baselines": baseline_rows(meta.get("metrics") or {}),
        "baselines_cv": ((meta.get("metrics") or {}).get("baselines") or {}).get("cv"),
        "targets": measured,
        "n_holdout": len(holdout),
        "summary": metric_table(meta, measured, threshold, schema.costs),
        "performance": performance.section(measured, threshold, schema.costs),
        "effects": effects.section(bundle_path, meta, holdout, schema),
        "monotone": monotone.section(_booster(bundle_path), meta, holdout, schema),
        "fairness": fairness.section(holdout, threshold, measured, meta, schema),
        "provenance": provenance.section(meta, holdout, trained),
        "search": search.section(bundle_path, meta),
    }
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("preauth", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["pct"] = lambda v: "\u2013" if v is None or np.isnan(v) else f"{100 * v:.1f}%"
    env.filters["num"] = lambda v, d=3: "\u2013" if v is None or np.isnan(float(v)) else f"{float(v):.{d}f}"
    return env.get_template("report.html.j2").render(**context)


def _booster(bundle_path: Path) -> Any:
    from ..bundles import load_booster

    booster = load_booster(bundle_path)
    booster.set_param({"nthread": 1})  # a few thousand rows: threads cost more than they share
    return booster


def _threshold_rule(rule: Any) -> str:
    if not isinstance(rule, Mapping):
        return readable(rule) if rule else ""
    text = str(rule.get("rule", ""))
    if rule.get("validation_cost") is not None:
        text += f"; expected cost {readable(rule['validation_cost'])} per applicant there"
    if rule.get("validation_rows"):
        text += f" ({rule['validation_rows']} rows)"
    return text


def _calibration_text(calibration: Any) -> str:
    if not isinstance(calibration, Mapping) or calibration.get("method") in (None, "none"):
        return (
            "No calibration map: the probabilities are the booster's own scores, which the class "
            "weighting pushes above the observed rate of bad risk."
        )
    method = calibration["method"]
    text = {"platt": "Platt scaling", "isotonic": "Isotonic regression"}.get(method, str(method))
    text += " maps the booster's scores to probabilities, fitted on the search's out-of-fold predictions"
    if calibration.get("chosen_by"):
        text += f" (chosen by {calibration['chosen_by']}"
        losses = calibration.get("cv_log_loss") or {}
        if losses:
            text += ": " + ", ".join(f"{k} {readable(v)}" for k, v in losses.items())
        text += ")"
    return text + (
        ". Every probability shown, served or written is calibrated and the threshold is on that "
        "scale; feature effects and reasons explain the booster's margin (log-odds) before the map."
    )


# --------------------------------------------------------------------------------------------
# Inputs

__all__ = [
    "AGE_BANDS",
    "HOLDOUT_FILE",
    "REPORT_FILE",
    "RISK_NAME",
    "Target",
    "age_band",
    "contributions",
    "param_importances",
    "read_trials",
    "render_report",
    "threshold_metrics",
    "trained_label_name",
    "write_report",
]
