"""Performance on the holdout: metrics at the threshold, and the curves across thresholds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..applications import GERMAN_COSTS, Costs
from .figures import NEGATIVE_COLOR, POSITIVE_COLOR, legend_below, svg
from .targets import Target


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


def metric_table(
    meta: Mapping[str, Any], targets: Sequence[Target], threshold: float, costs: Costs = GERMAN_COSTS
) -> dict[str, Any]:
    """Holdout metrics side by side per label set; training's own figures where it saved them."""
    saved = meta.get("metrics") or {}
    saved_by_key = {"label": saved.get("holdout"), "risk": saved.get("against_risk")}
    columns: list[dict[str, Any]] = []
    for target in targets:
        computed = threshold_metrics(target.y, target.p, threshold)
        stored = saved_by_key.get(target.key)
        values: dict[str, Any] = {**computed, **stored} if isinstance(stored, Mapping) else computed
        columns.append(
            {"name": target.name, "values": values, "cost": _mean_cost(values["confusion"], costs)}
        )
    rows = [
        {
            "label": label,
            "cells": [c["values"].get(key) for c in columns],
            "intervals": [(c["values"].get("intervals") or {}).get(key) for c in columns],
        }
        for key, label in METRIC_ROWS
    ]
    extras = [(k, saved.get(k)) for k in ("train_auc", "cv_auc", "auc_gap") if saved.get(k) is not None]
    methods = {c["values"].get("interval_method") for c in columns} - {None}
    return {"columns": columns, "rows": rows, "extras": extras, "interval_method": "; ".join(sorted(methods))}


def _mean_cost(confusion: Mapping[str, int], costs: Costs) -> float:
    n = sum(confusion.values())
    return (costs.approve_bad * confusion["fn"] + costs.refuse_good * confusion["fp"]) / n if n else 0.0


# --------------------------------------------------------------------------------------------
# Figures


def section(targets: Sequence[Target], threshold: float, costs: Costs = GERMAN_COSTS) -> dict[str, Any]:
    """ROC, PR, calibration, score distributions, cost and F1 by threshold, confusion matrices."""
    from sklearn import metrics as skm
    from sklearn.calibration import calibration_curve

    usable = [t for t in targets if len(np.unique(t.y)) == 2]

    def roc(figure: Any, ax: Any) -> None:
        for i, t in enumerate(usable):
            fpr, tpr, _ = skm.roc_curve(t.y, t.p)
            ax[0, 0].plot(
                fpr, tpr, ls="-" if i == 0 else "--", label=f"vs {t.name}: AUC {skm.auc(fpr, tpr):.3f}"
            )
        ax[0, 0].plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
        ax[0, 0].set(xlabel="False positive rate (good refused)", ylabel="True positive rate (bad refused)")
        legend_below(figure, *ax[0, 0].get_legend_handles_labels())

    def pr(figure: Any, ax: Any) -> None:
        for i, t in enumerate(usable):
            precision, recall, _ = skm.precision_recall_curve(t.y, t.p)
            ap = skm.average_precision_score(t.y, t.p)
            line = ax[0, 0].plot(
                recall, precision, ls="-" if i == 0 else "--", label=f"vs {t.name}: AP {ap:.3f}"
            )
            ax[0, 0].axhline(t.y.mean(), color=line[0].get_color(), lw=0.8, ls=":")
        ax[0, 0].set(xlabel="Recall (bad refused)", ylabel="Precision (refused who are bad)", ylim=(0, 1.02))
        legend_below(figure, *ax[0, 0].get_legend_handles_labels())

    def calibration(figure: Any, ax: Any) -> None:
        for i, t in enumerate(usable):
            observed, predicted = calibration_curve(t.y, t.p, n_bins=8, strategy="quantile")
            line = ax[0, 0].plot(
                predicted, observed, marker="o", ls="-" if i == 0 else "--", label=f"vs {t.name}"
            )
            if t.raw is not None:
                observed, predicted = calibration_curve(t.y, t.raw, n_bins=8, strategy="quantile")
                ax[0, 0].plot(
                    predicted,
                    observed,
                    marker="x",
                    ls=":",
                    alpha=0.6,
                    color=line[0].get_color(),
                    label=f"vs {t.name}, before calibration",
                )
        ax[0, 0].plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":", label="perfectly calibrated")
        ax[0, 0].set(xlabel="Predicted probability of bad risk (quantile bins)", ylabel="Observed share bad")
        legend_below(figure, *ax[0, 0].get_legend_handles_labels())

    def distributions(figure: Any, ax: Any) -> None:
        bins = np.linspace(0, 1, 26)
        for j, t in enumerate(usable):
            a = ax[0, j]
            a.hist(t.p[t.y == 0], bins=bins, alpha=0.6, color=NEGATIVE_COLOR, label="good risk")
            a.hist(t.p[t.y == 1], bins=bins, alpha=0.6, color=POSITIVE_COLOR, label="bad risk")
            a.axvline(threshold, color="black", ls="--", lw=1, label=f"threshold {threshold:.2f}")
            a.set(
                title=f"classes by {t.name}", xlabel="Predicted probability of bad risk", ylabel="Applicants"
            )
        legend_below(figure, *ax[0, 0].get_legend_handles_labels(), ncols=3)

    def cost_f1(figure: Any, ax: Any) -> None:
        grid = np.linspace(0.0, 1.0, 101)
        for j, t in enumerate(usable):
            a = ax[0, j]
            refused = t.p[None, :] >= grid[:, None]
            fn = np.sum(~refused & (t.y == 1), axis=1)
            fp = np.sum(refused & (t.y == 0), axis=1)
            tp = np.sum(refused & (t.y == 1), axis=1)
            cost = (costs.approve_bad * fn + costs.refuse_good * fp) / len(t.y)
            f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros(len(grid)), where=(2 * tp + fp + fn) > 0)
            a.plot(grid, cost, color=POSITIVE_COLOR, label="expected cost per applicant")
            a.set(
                title=f"vs {t.name}",
                xlabel="Threshold (refuse when p \u2265 threshold)",
                ylabel=f"Cost ({costs.approve_bad:g}\u00d7FN + {costs.refuse_good:g}\u00d7FP) / n",
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
            if j == 0:
                lines = a.get_lines()[:1] + twin.get_lines()
                legend_below(figure, lines, [str(line.get_label()) for line in lines], ncols=2)

    wide: dict[str, Any] = {"ncols": len(usable), "width": 5.0 * len(usable), "height": 3.9}
    tall = 4.2  # inches: room for the legend under the plot
    confusions = []
    for t in targets:
        c = threshold_metrics(t.y, t.p, threshold)["confusion"]
        confusions.append({"name": t.name, **c, "n": len(t.y)})
    return {
        "reliability": [reliability(t) for t in usable],
        "roc": svg("roc", roc, height=tall),
        "pr": svg("pr", pr, height=tall),
        "calibration": svg("calibration", calibration, height=tall),
        "distributions": svg("distributions", distributions, **wide),
        "cost_f1": svg("cost_f1", cost_f1, **wide),
        "confusions": confusions,
        "usable": [t.name for t in usable],
    }


def reliability(t: Target) -> dict[str, Any]:
    """ECE (10 equal-width bins), Brier and mean p(bad), before and after calibration, beside the
    Brier of a constant guess at the observed rate (what a model that knows nothing scores), and
    the ECE a perfectly calibrated model would show by chance on these rows: on a 200-row holdout
    about 0.06, which no calibration can beat (:func:`.calibration.ece_noise`)."""
    from ..calibration import chance_fields, expected_calibration_error

    rate = float(np.mean(t.y))
    raw = t.raw if t.raw is not None else t.p
    return {
        "name": t.name,
        "calibrated": t.raw is not None,
        "ece_raw": expected_calibration_error(t.y, raw),
        "ece": expected_calibration_error(t.y, t.p),
        **chance_fields(t.p),
        "brier_raw": float(np.mean((raw - t.y) ** 2)),
        "brier": float(np.mean((t.p - t.y) ** 2)),
        "brier_base_rate": float(np.mean((rate - t.y) ** 2)),
        "mean_raw": float(np.mean(raw)),
        "mean": float(np.mean(t.p)),
        "observed": rate,
    }


# --------------------------------------------------------------------------------------------
# Global feature effects from the model's own contributions (TreeSHAP)
