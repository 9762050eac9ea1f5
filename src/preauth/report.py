"""The evaluation report: one self-contained HTML page per model bundle.

Training calls :func:`write_report` once it has written ``bundle.json``, ``holdout.parquet`` and
``trials.csv``; ``preauth report V --rebuild`` calls it again. The page opens from disk with no
network: figures are inline SVG, the stylesheet is inline. Everything is computed from the holdout
rows the search never saw, and every number says which labels it was measured against, because a
model trained on provider labels can look excellent against them and mediocre against real outcomes.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .applications import field_by_name
from .bundles import MODEL_FILE, read_meta
from .errors import ModelBundleError
from .features import encode

REPORT_FILE = "report.html"
HOLDOUT_FILE = "holdout.parquet"
TRIALS_FILE = "trials.csv"
COST_BAD_APPROVED = 5.0
"""German Credit cost matrix: approving an applicant who turns out bad costs five times..."""
COST_GOOD_REFUSED = 1.0
"""...refusing one who would have repaid."""
AGE_BANDS: tuple[tuple[str, float, float], ...] = (
    ("<25", 0, 25),
    ("25\u201335", 25, 35),
    ("35\u201350", 35, 50),
    ("50+", 50, float("inf")),
)
RISK_NAME = "real outcome (Risk)"
MIN_GROUP = 10
"""Groups smaller than this are shown but left out of the gap call-outs: their rates are noise."""
TOP_EFFECTS = 4
POSITIVE_COLOR, NEGATIVE_COLOR, ACCENT = "#c0392b", "#2e86c1", "#6c3483"


@dataclass(frozen=True)
class Target:
    """One set of labels the model's scores are measured against (1 = bad risk)."""

    key: str
    name: str
    y: np.ndarray
    p: np.ndarray


def write_report(bundle_path: Path) -> Path:
    """Build ``report.html`` in the bundle directory (atomically) and return its path."""
    bundle_path = Path(bundle_path)
    html = render_report(bundle_path)
    target = bundle_path / REPORT_FILE
    fd, tmp = tempfile.mkstemp(prefix=f".{REPORT_FILE}.", dir=bundle_path)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(html)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; the report is meant to be read and served
    os.replace(tmp, target)
    return target


def render_report(bundle_path: Path) -> str:
    """The report's HTML for a bundle directory."""
    import jinja2

    meta = read_meta(bundle_path)
    holdout = _read_holdout(bundle_path)
    threshold = float(meta["threshold"])
    targets = _targets(meta, holdout)
    trained = targets[0]
    context = {
        "meta": meta,
        "version": meta.get("version", bundle_path.name),
        "threshold": threshold,
        "threshold_rule": _threshold_rule(meta.get("threshold_rule")),
        "targets": targets,
        "n_holdout": len(holdout),
        "summary": _metric_table(meta, targets, threshold),
        "performance": _performance(targets, threshold),
        "effects": _effects(bundle_path, meta, holdout),
        "fairness": _fairness(holdout, threshold, targets, meta),
        "provenance": _provenance(meta, holdout, trained),
        "search": _search(bundle_path, meta),
    }
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("preauth", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["pct"] = lambda v: "\u2013" if v is None or np.isnan(v) else f"{100 * v:.1f}%"
    env.filters["num"] = lambda v, d=3: "\u2013" if v is None or np.isnan(float(v)) else f"{float(v):.{d}f}"
    return env.get_template("report.html.j2").render(**context)


def _threshold_rule(rule: Any) -> str:
    if not isinstance(rule, Mapping):
        return readable(rule) if rule else ""
    text = str(rule.get("rule", ""))
    if rule.get("validation_cost") is not None:
        text += f"; expected cost {readable(rule['validation_cost'])} per applicant there"
    if rule.get("validation_rows"):
        text += f" ({rule['validation_rows']} rows)"
    return text


# --------------------------------------------------------------------------------------------
# Inputs


def _read_holdout(bundle_path: Path) -> pd.DataFrame:
    path = bundle_path / HOLDOUT_FILE
    if not path.exists():
        raise ModelBundleError(f"{bundle_path}: no {HOLDOUT_FILE}, so no report; retrain to get one")
    holdout = pd.read_parquet(path)
    missing = {"label", "probability"} - set(holdout.columns)
    if missing:
        raise ModelBundleError(f"{path}: missing columns {sorted(missing)}")
    return holdout


def trained_label_name(meta: Mapping[str, Any]) -> str:
    """How the labels the model learned from are called everywhere in the report and on the page."""
    metrics = meta.get("metrics") or {}
    provenance = meta.get("label_provenance") or {}
    for value in (metrics.get("measured_against"), provenance.get("labels"), provenance.get("source")):
        if value:
            return str(value)
    return "the training labels"


def _targets(meta: Mapping[str, Any], holdout: pd.DataFrame) -> list[Target]:
    """The trained labels first; real outcomes (Risk) second when known and different from them."""
    p = holdout["probability"].to_numpy(dtype=np.float64)
    label = holdout["label"].to_numpy(dtype=np.int64)
    targets = [Target("label", trained_label_name(meta), label, p)]
    if "risk" in holdout.columns:
        known = holdout["risk"].notna().to_numpy()
        risk = holdout["risk"].to_numpy(dtype=np.float64, na_value=np.nan)
        same = known.all() and np.array_equal(risk.astype(np.int64), label)
        if known.sum() >= 2 and not same:
            saved = (meta.get("metrics") or {}).get("against_risk") or {}
            name = str(saved.get("measured_against") or RISK_NAME)
            targets.append(Target("risk", name, risk[known].astype(np.int64), p[known]))
    return targets


# --------------------------------------------------------------------------------------------
# Metrics at the threshold


def threshold_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    """The metric dict of the bundle contract, for labels ``y`` (1 = bad risk) and scores ``p``."""
    from sklearn import metrics as skm

    refused = p >= threshold
    tp = int(np.sum(refused & (y == 1)))
    fp = int(np.sum(refused & (y == 0)))
    fn = int(np.sum(~refused & (y == 1)))
    tn = int(np.sum(~refused & (y == 0)))
    both = len(np.unique(y)) == 2
    fpr, tpr, _ = skm.roc_curve(y, p) if both else (np.zeros(1), np.zeros(1), None)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "roc_auc": float(skm.roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(skm.average_precision_score(y, p)) if both else float("nan"),
        "accuracy": (tp + tn) / len(y),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "specificity": tn / (tn + fp) if tn + fp else 0.0,
        "ks": float(np.max(tpr - fpr)),
        "brier": float(np.mean((p - y) ** 2)),
        "log_loss": float(skm.log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "confusion": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        "threshold": threshold,
        "n": len(y),
        "positives": int(np.sum(y == 1)),
    }


METRIC_ROWS: tuple[tuple[str, str], ...] = (
    ("roc_auc", "ROC AUC"),
    ("pr_auc", "PR AUC (average precision)"),
    ("accuracy", "Accuracy"),
    ("precision", "Precision (refused who are bad)"),
    ("recall", "Recall / TPR (bad who are refused)"),
    ("f1", "F1"),
    ("specificity", "Specificity (good who are approved)"),
    ("ks", "KS statistic"),
    ("brier", "Brier score (lower is better)"),
    ("log_loss", "Log loss (lower is better)"),
)


def _metric_table(meta: Mapping[str, Any], targets: Sequence[Target], threshold: float) -> dict[str, Any]:
    """Holdout metrics side by side per label set; training's own figures where it saved them."""
    saved = meta.get("metrics") or {}
    saved_by_key = {"label": saved.get("holdout"), "risk": saved.get("against_risk")}
    columns: list[dict[str, Any]] = []
    for target in targets:
        computed = threshold_metrics(target.y, target.p, threshold)
        stored = saved_by_key.get(target.key)
        values: dict[str, Any] = {**computed, **stored} if isinstance(stored, Mapping) else computed
        columns.append({"name": target.name, "values": values, "cost": _mean_cost(values["confusion"])})
    rows = [{"label": label, "cells": [c["values"].get(key) for c in columns]} for key, label in METRIC_ROWS]
    extras = [(k, saved.get(k)) for k in ("train_auc", "cv_auc", "auc_gap") if saved.get(k) is not None]
    return {"columns": columns, "rows": rows, "extras": extras}


def _mean_cost(confusion: Mapping[str, int]) -> float:
    n = sum(confusion.values())
    return (COST_BAD_APPROVED * confusion["fn"] + COST_GOOD_REFUSED * confusion["fp"]) / n if n else 0.0


# --------------------------------------------------------------------------------------------
# Figures


def _svg(
    name: str,
    draw: Callable[..., None],
    *,
    width: float = 5.2,
    height: float = 3.6,
    ncols: int = 1,
    nrows: int = 1,
) -> str:
    """Draw a figure and return it as inline SVG; no pyplot, so no global state and no GUI backend.

    The hash salt makes element ids unique per figure: several SVGs share one HTML document.
    """
    import matplotlib
    from matplotlib.figure import Figure

    style: dict[str, Any] = {
        "svg.fonttype": "none",
        "svg.hashsalt": name,
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
    }
    with matplotlib.rc_context(style):  # type: ignore[arg-type]
        figure = Figure(figsize=(width, height), layout="constrained")
        draw(figure, figure.subplots(nrows, ncols, squeeze=False))
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg")
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]


def _performance(targets: Sequence[Target], threshold: float) -> dict[str, Any]:
    from sklearn import metrics as skm
    from sklearn.calibration import calibration_curve

    usable = [t for t in targets if len(np.unique(t.y)) == 2]

    def roc(_f: Any, ax: Any) -> None:
        for i, t in enumerate(usable):
            fpr, tpr, _ = skm.roc_curve(t.y, t.p)
            ax[0, 0].plot(
                fpr, tpr, ls="-" if i == 0 else "--", label=f"vs {t.name}: AUC {skm.auc(fpr, tpr):.3f}"
            )
        ax[0, 0].plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
        ax[0, 0].set(xlabel="False positive rate (good refused)", ylabel="True positive rate (bad refused)")
        ax[0, 0].legend(loc="lower right", fontsize=8)

    def pr(_f: Any, ax: Any) -> None:
        for i, t in enumerate(usable):
            precision, recall, _ = skm.precision_recall_curve(t.y, t.p)
            ap = skm.average_precision_score(t.y, t.p)
            line = ax[0, 0].plot(
                recall, precision, ls="-" if i == 0 else "--", label=f"vs {t.name}: AP {ap:.3f}"
            )
            ax[0, 0].axhline(t.y.mean(), color=line[0].get_color(), lw=0.8, ls=":")
        ax[0, 0].set(xlabel="Recall (bad refused)", ylabel="Precision (refused who are bad)", ylim=(0, 1.02))
        ax[0, 0].legend(loc="upper right", fontsize=8)

    def calibration(_f: Any, ax: Any) -> None:
        for i, t in enumerate(usable):
            observed, predicted = calibration_curve(t.y, t.p, n_bins=8, strategy="quantile")
            ax[0, 0].plot(predicted, observed, marker="o", ls="-" if i == 0 else "--", label=f"vs {t.name}")
        ax[0, 0].plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":", label="perfectly calibrated")
        ax[0, 0].set(xlabel="Predicted probability of bad risk (quantile bins)", ylabel="Observed share bad")
        ax[0, 0].legend(loc="upper left", fontsize=8)

    def distributions(_f: Any, ax: Any) -> None:
        bins = np.linspace(0, 1, 26)
        for j, t in enumerate(usable):
            a = ax[0, j]
            a.hist(t.p[t.y == 0], bins=bins, alpha=0.6, color=NEGATIVE_COLOR, label="good risk")
            a.hist(t.p[t.y == 1], bins=bins, alpha=0.6, color=POSITIVE_COLOR, label="bad risk")
            a.axvline(threshold, color="black", ls="--", lw=1, label=f"threshold {threshold:.2f}")
            a.set(
                title=f"classes by {t.name}", xlabel="Predicted probability of bad risk", ylabel="Applicants"
            )
            a.legend(fontsize=8)

    def cost_f1(_f: Any, ax: Any) -> None:
        grid = np.linspace(0.0, 1.0, 101)
        for j, t in enumerate(usable):
            a = ax[0, j]
            refused = t.p[None, :] >= grid[:, None]
            fn = np.sum(~refused & (t.y == 1), axis=1)
            fp = np.sum(refused & (t.y == 0), axis=1)
            tp = np.sum(refused & (t.y == 1), axis=1)
            cost = (COST_BAD_APPROVED * fn + COST_GOOD_REFUSED * fp) / len(t.y)
            f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros(len(grid)), where=(2 * tp + fp + fn) > 0)
            a.plot(grid, cost, color=POSITIVE_COLOR, label="expected cost per applicant")
            a.set(
                title=f"vs {t.name}",
                xlabel="Threshold (refuse when p \u2265 threshold)",
                ylabel="Cost (5\u00d7FN + 1\u00d7FP) / n",
            )
            twin = a.twinx()
            twin.plot(grid, f1, color=NEGATIVE_COLOR, label="F1")
            twin.set(ylabel="F1", ylim=(0, 1))
            twin.grid(False)
            a.axvline(threshold, color="black", ls="--", lw=1)
            a.annotate(
                f"chosen {threshold:.2f}",
                (threshold, cost.max()),
                xytext=(4, -2),
                textcoords="offset points",
                fontsize=8,
            )
            lines = a.get_lines()[:1] + twin.get_lines()
            a.legend(lines, [str(line.get_label()) for line in lines], loc="upper center", fontsize=8)

    wide: dict[str, Any] = {"ncols": len(usable), "width": 5.0 * len(usable)}
    confusions = []
    for t in targets:
        c = threshold_metrics(t.y, t.p, threshold)["confusion"]
        confusions.append({"name": t.name, **c, "n": len(t.y)})
    return {
        "roc": _svg("roc", roc),
        "pr": _svg("pr", pr),
        "calibration": _svg("calibration", calibration),
        "distributions": _svg("distributions", distributions, **wide),
        "cost_f1": _svg("cost_f1", cost_f1, **wide),
        "confusions": confusions,
        "usable": [t.name for t in usable],
    }


# --------------------------------------------------------------------------------------------
# Global feature effects from the model's own contributions (TreeSHAP)


def contributions(booster: Any, meta: Mapping[str, Any], frame: pd.DataFrame) -> np.ndarray:
    """Per-row, per-feature contributions to the log-odds of bad risk; the last column is the bias."""
    import xgboost as xgb

    features = list(meta["features"])
    matrix = encode(frame, features)
    dmatrix = xgb.DMatrix(
        matrix, feature_names=features, feature_types=list(meta["feature_types"]), enable_categorical=True
    )
    return np.asarray(booster.predict(dmatrix, pred_contribs=True), dtype=np.float64)


def _effects(bundle_path: Path, meta: Mapping[str, Any], holdout: pd.DataFrame) -> dict[str, Any]:
    import xgboost as xgb

    try:
        booster = xgb.Booster(model_file=str(bundle_path / MODEL_FILE))
    except xgb.core.XGBoostError as error:
        raise ModelBundleError(
            f"{bundle_path}: cannot load {MODEL_FILE} ({str(error).strip()[:120]})"
        ) from None
    features = list(meta["features"])
    contrib = contributions(booster, meta, holdout)[:, : len(features)]
    importance = np.abs(contrib).mean(axis=0)
    order = list(np.argsort(importance)[::-1])
    top = order[: min(TOP_EFFECTS, len(features))]

    def bars(_f: Any, ax: Any) -> None:
        names = [features[i] for i in order][::-1]
        ax[0, 0].barh(names, importance[order][::-1], color=ACCENT)
        ax[0, 0].set(xlabel="Mean |contribution| to the log-odds of bad risk")

    def dependence(_f: Any, ax: Any) -> None:
        rng = np.random.default_rng(0)
        for k, i in enumerate(top):
            a = ax[k // 2, k % 2]
            name = features[i]
            f = field_by_name(name)
            y = contrib[:, i]
            colors = np.where(y > 0, POSITIVE_COLOR, NEGATIVE_COLOR)
            if f.is_category:
                levels = list(f.levels())
                codes = pd.Categorical(holdout[name], categories=levels).codes
                a.scatter(codes + rng.uniform(-0.2, 0.2, len(codes)), y, s=9, c=colors, alpha=0.6)
                a.set_xticks(range(len(levels)), levels, rotation=30, ha="right", fontsize=7)
            else:
                a.scatter(holdout[name].to_numpy(dtype=np.float64), y, s=9, c=colors, alpha=0.6)
            a.axhline(0, color="grey", lw=0.8)
            a.set(title=name, ylabel="contribution (log-odds)")
        for k in range(len(top), 4):
            ax[k // 2, k % 2].set_visible(False)

    rows = [
        {
            "feature": features[i],
            "mean_abs": float(importance[i]),
            "towards_bad": float(np.mean(contrib[:, i] > 0)),
            "max_push": float(contrib[:, i].max()),
        }
        for i in order
    ]
    excluded = list(meta.get("excluded") or [])
    return {
        "bars": _svg("importance", bars, height=0.35 * len(features) + 1.0),
        "dependence": _svg("dependence", dependence, ncols=2, nrows=2, width=9.0, height=6.4),
        "rows": rows,
        "top": [features[i] for i in top],
        "excluded": excluded,
    }


# --------------------------------------------------------------------------------------------
# Fairness


def age_band(age: pd.Series) -> pd.Series:
    """The report's age bands: <25, 25–35, 35–50, 50+ (lower bound inclusive)."""
    values = age.to_numpy(dtype=np.float64)
    out = np.full(len(values), None, dtype=object)
    for name, low, high in AGE_BANDS:
        out[(values >= low) & (values < high)] = name
    return pd.Series(out, index=age.index)


def _group_rates(
    groups: pd.Series, refused: np.ndarray, targets: Sequence[Target], holdout: pd.DataFrame
) -> list[dict[str, Any]]:
    rows = []
    known_risk = (
        holdout["risk"].notna().to_numpy() if "risk" in holdout.columns else np.zeros(len(holdout), bool)
    )
    order = [g for g in _group_order(groups) if g is not None]
    for group in order:
        mask = (groups == group).to_numpy()
        row: dict[str, Any] = {
            "group": str(group),
            "n": int(mask.sum()),
            "approval": float(np.mean(~refused[mask])),
        }
        for t in targets:
            sub = mask if t.key == "label" else mask[known_risk]
            r = refused if t.key == "label" else refused[known_risk]
            bad, good = sub & (t.y == 1), sub & (t.y == 0)
            row[f"tpr_{t.key}"] = float(np.mean(r[bad])) if bad.any() else float("nan")
            row[f"fpr_{t.key}"] = float(np.mean(r[good])) if good.any() else float("nan")
        rows.append(row)
    return rows


def _group_order(groups: pd.Series) -> list[Any]:
    bands = [b[0] for b in AGE_BANDS]
    present = list(pd.unique(groups.dropna()))
    return [b for b in bands if b in present] if set(present) <= set(bands) else sorted(present)


def _gaps(rows: Sequence[Mapping[str, Any]], metrics: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """The largest difference per rate between groups large enough to mean something."""
    sized = [r for r in rows if r["n"] >= MIN_GROUP]
    gaps = []
    for key, label in metrics:
        valid = [r for r in sized if not np.isnan(r[key])]
        if len(valid) < 2:
            continue
        low = min(valid, key=lambda r: r[key])
        high = max(valid, key=lambda r: r[key])
        gap = {
            "metric": label,
            "low": low["group"],
            "low_value": low[key],
            "high": high["group"],
            "high_value": high[key],
            "gap": high[key] - low[key],
        }
        if key == "approval" and high[key] > 0:
            gap["ratio"] = low[key] / high[key]
        gaps.append(gap)
    return sorted(gaps, key=lambda g: -g["gap"])


def _fairness(
    holdout: pd.DataFrame, threshold: float, targets: Sequence[Target], meta: Mapping[str, Any]
) -> dict[str, Any]:
    refused = holdout["probability"].to_numpy(dtype=np.float64) >= threshold
    metrics = [("approval", "Approval rate")]
    for t in targets:
        metrics += [(f"tpr_{t.key}", f"TPR vs {t.name}"), (f"fpr_{t.key}", f"FPR vs {t.name}")]
    groupings = []
    if "Sex" in holdout.columns and holdout["Sex"].notna().any():
        groupings.append(("Sex", holdout["Sex"].astype(object).where(holdout["Sex"].notna(), None)))
    if "Age" in holdout.columns:
        groupings.append(("Age band", age_band(holdout["Age"])))
    sections: list[dict[str, Any]] = []
    for title, groups in groupings:
        rows = _group_rates(groups, refused, targets, holdout)
        sections.append({"title": title, "rows": rows, "gaps": _gaps(rows, metrics)})
    # The approval gap of each grouping always, then its largest TPR/FPR gaps.
    largest: list[dict[str, Any]] = []
    for section in sections:
        approval = [g for g in section["gaps"] if g["metric"] == "Approval rate"]
        others = [g for g in section["gaps"] if g["metric"] != "Approval rate"][:2]
        largest += [dict(g, grouping=section["title"]) for g in approval + others]

    def chart(_f: Any, ax: Any) -> None:
        for j, section in enumerate(sections):
            a = ax[0, j]
            names = [r["group"] for r in section["rows"]]
            a.bar(names, [r["approval"] for r in section["rows"]], color=NEGATIVE_COLOR)
            for x, r in enumerate(section["rows"]):
                a.annotate(
                    f"{100 * r['approval']:.0f}%\nn={r['n']}",
                    (x, r["approval"]),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    xytext=(0, 2),
                    textcoords="offset points",
                )
            a.set(title=f"Approval rate by {section['title']}", ylim=(0, 1.2), ylabel="Share approved")

    features = list(meta.get("features") or [])
    return {
        "sections": sections,
        "metrics": metrics,
        "largest": largest,
        "chart": _svg("fairness", chart, ncols=max(1, len(sections)), width=4.5 * max(1, len(sections)))
        if sections
        else "",
        "sex_in_model": "Sex" in features,
        "min_group": MIN_GROUP,
    }


# --------------------------------------------------------------------------------------------
# Label provenance


NESTED_TITLES = {"agreement_with_risk": "Agreement with real outcomes (Risk), on all labeled rows"}


def readable(value: Any) -> str:
    """A metadata value as short text: floats to 4 significant digits, small dicts on one line."""
    if value is None:
        return "\u2013"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else f"{float(value):.4g}"
    if isinstance(value, Mapping):
        return " \u00b7 ".join(f"{k} {readable(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(readable(v) for v in value)
    return str(value)


def _provenance(meta: Mapping[str, Any], holdout: pd.DataFrame, trained: Target) -> dict[str, Any]:
    provenance = meta.get("label_provenance") or {}
    items = [(str(k), readable(v)) for k, v in provenance.items() if not isinstance(v, Mapping)]
    nested = {
        NESTED_TITLES.get(str(k), str(k)): [(str(kk), readable(vv)) for kk, vv in v.items()]
        for k, v in provenance.items()
        if isinstance(v, Mapping)
    }
    agreement = None
    if "risk" in holdout.columns and holdout["risk"].notna().sum() >= 2:
        from sklearn.metrics import cohen_kappa_score

        known = holdout["risk"].notna().to_numpy()
        risk = holdout["risk"].to_numpy(dtype=np.float64, na_value=np.nan)[known].astype(np.int64)
        label = holdout["label"].to_numpy(dtype=np.int64)[known]
        if not np.array_equal(risk, label):
            majority = max(np.mean(risk), 1 - np.mean(risk))
            agreement = {
                "n": int(known.sum()),
                "accuracy": float(np.mean(risk == label)),
                "kappa": float(cohen_kappa_score(risk, label)),
                "majority": float(majority),
                "both_good": int(np.sum((risk == 0) & (label == 0))),
                "label_bad_risk_good": int(np.sum((risk == 0) & (label == 1))),
                "label_good_risk_bad": int(np.sum((risk == 1) & (label == 0))),
                "both_bad": int(np.sum((risk == 1) & (label == 1))),
                "label_bad_share": float(np.mean(label)),
                "risk_bad_share": float(np.mean(risk)),
            }
    trained_on_risk = provenance.get("target") == "risk" or (
        "risk" in holdout.columns and agreement is None and bool(holdout["risk"].notna().all())
    )
    return {
        "name": trained.name,
        "items": items,
        "nested": nested,
        "agreement": agreement,
        "trained_on_risk": trained_on_risk,
        "fingerprint": meta.get("data_fingerprint"),
    }


# --------------------------------------------------------------------------------------------
# The hyperparameter search


def read_trials(bundle_path: Path) -> pd.DataFrame | None:
    path = bundle_path / TRIALS_FILE
    if not path.exists() or path.stat().st_size == 0:
        return None
    trials = pd.read_csv(path)
    return trials if {"number", "value"} <= set(trials.columns) else None


def param_importances(trials: pd.DataFrame) -> dict[str, float]:
    """Optuna's fANOVA importances, on a study rebuilt from the saved trials (ranges as observed)."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    done = trials[(trials.get("state", "COMPLETE") == "COMPLETE") & trials["value"].notna()]
    distributions: dict[str, Any] = {}
    for column in [c for c in done.columns if c.startswith("params_")]:
        values = done[column].dropna()
        if values.nunique() < 2 or len(values) < len(done):
            continue
        name = column.removeprefix("params_")
        if pd.api.types.is_integer_dtype(values):
            distributions[name] = IntDistribution(int(values.min()), int(values.max()))
        elif pd.api.types.is_float_dtype(values):
            distributions[name] = FloatDistribution(float(values.min()), float(values.max()))
        else:
            distributions[name] = CategoricalDistribution(sorted(values.astype(str).unique()))
    if len(done) < 2 or not distributions:
        return {}
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(direction="maximize")
    finally:
        optuna.logging.set_verbosity(verbosity)
    for _, row in done.iterrows():
        params = {
            k: (
                str(row[f"params_{k}"])
                if isinstance(d, CategoricalDistribution)
                else int(row[f"params_{k}"])
                if isinstance(d, IntDistribution)
                else float(row[f"params_{k}"])
            )
            for k, d in distributions.items()
        }
        study.add_trial(
            optuna.trial.create_trial(params=params, distributions=distributions, value=float(row["value"]))
        )
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    return dict(optuna.importance.get_param_importances(study, evaluator=evaluator))


def _search(bundle_path: Path, meta: Mapping[str, Any]) -> dict[str, Any] | None:
    trials = read_trials(bundle_path)
    settings = meta.get("search") or {}
    info = (
        [(str(k), readable(v)) for k, v in settings.items() if not isinstance(v, Mapping | list)]
        if isinstance(settings, Mapping)
        else []
    )
    if trials is None:
        return {"info": info, "trials": None}
    states = (
        trials["state"].astype(str) if "state" in trials.columns else pd.Series(["COMPLETE"] * len(trials))
    )
    done = trials[(states == "COMPLETE").to_numpy() & trials["value"].notna().to_numpy()]
    best = done.loc[done["value"].idxmax()] if len(done) else None
    best_params = []
    if best is not None:
        for column in [c for c in trials.columns if c.startswith("params_") and pd.notna(best[c])]:
            value = best[column]
            if isinstance(value, float | np.floating):
                value = int(value) if float(value).is_integer() else f"{float(value):.4g}"
            best_params.append((column.removeprefix("params_"), value))
    saved = settings.get("param_importances") if isinstance(settings, Mapping) else None
    importances = dict(saved) if isinstance(saved, Mapping) else param_importances(trials)

    def by_trial(_f: Any, ax: Any) -> None:
        a = ax[0, 0]
        a.scatter(done["number"], done["value"], s=14, color=ACCENT, label="completed trial")
        pruned = trials[(states == "PRUNED").to_numpy()]
        if len(pruned):
            floor = float(done["value"].min()) if len(done) else 0.5
            a.scatter(
                pruned["number"],
                np.full(len(pruned), floor),
                marker="x",
                color="grey",
                s=14,
                label="pruned (no final value)",
            )
        ordered = done.sort_values("number")
        a.step(
            ordered["number"],
            ordered["value"].cummax(),
            where="post",
            color="black",
            lw=1,
            label="best so far",
        )
        if best is not None:
            a.scatter(
                [best["number"]],
                [best["value"]],
                s=60,
                facecolors="none",
                edgecolors=POSITIVE_COLOR,
                label="best",
            )
        a.set(xlabel="Trial", ylabel="Objective (cross-validated ROC AUC)")
        a.legend(fontsize=8, loc="lower right")

    def importance_bars(_f: Any, ax: Any) -> None:
        names = list(importances)[::-1]
        ax[0, 0].barh(names, [importances[n] for n in names], color=ACCENT)
        ax[0, 0].set(xlabel="Importance for the objective (fANOVA, sums to 1)")

    return {
        "info": info,
        "trials": len(trials),
        "completed": len(done),
        "states": states.value_counts().to_dict(),
        "best": None if best is None else {"number": int(best["number"]), "value": float(best["value"])},
        "best_params": best_params,
        "importances": importances,
        "by_trial": _svg("trials", by_trial) if len(done) else "",
        "importance_chart": _svg("param_importance", importance_bars, height=0.4 * len(importances) + 1.0)
        if importances
        else "",
    }


__all__ = ["REPORT_FILE", "age_band", "contributions", "render_report", "threshold_metrics", "write_report"]
