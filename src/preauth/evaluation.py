"""Evaluation: how good a model's probabilities are, against which labels, and where to cut them.

Bad risk is the positive class (1) everywhere. Every metric dictionary carries
``measured_against`` because a model trained on provider labels can look excellent against
those labels and mediocre against real outcomes: the two numbers must never be confused.

The decision threshold is chosen by expected cost with the schema's cost matrix (German Credit's
by default: approving a bad applicant, a false negative, costs 5, refusing a good one, a false
positive, costs 1; a lender's schema sets its own in ``[costs]``). The cut
is found on calibrated out-of-fold predictions rather than taken from the Bayes rule 1/(1+5): a
calibration map fitted on 800 rows is close to, not exactly, the truth.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .applications import GERMAN_COSTS, Costs

_EPS = 1e-15


@dataclass(frozen=True)
class ThresholdChoice:
    """A threshold and the average cost per applicant it gave on the data it was chosen on."""

    threshold: float
    cost: float
    n: int


def confusion(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, int]:
    """Counts at ``p >= threshold`` → bad risk (positive)."""
    y = np.asarray(y, dtype=np.int64)
    flagged = np.asarray(p, dtype=np.float64) >= threshold
    tp = int(np.sum(flagged & (y == 1)))
    fp = int(np.sum(flagged & (y == 0)))
    fn = int(np.sum(~flagged & (y == 1)))
    tn = int(np.sum(~flagged & (y == 0)))
    return {"tn": tn, "fp": fp, "fn": fn, "tp": tp}


def expected_cost(y: np.ndarray, p: np.ndarray, threshold: float, costs: Costs = GERMAN_COSTS) -> float:
    """Average cost per applicant of deciding ``p >= threshold`` → refuse, at ``costs``."""
    c = confusion(y, p, threshold)
    n = max(len(y), 1)
    return (costs.approve_bad * c["fn"] + costs.refuse_good * c["fp"]) / n


def choose_threshold(y: np.ndarray, p: np.ndarray, costs: Costs = GERMAN_COSTS) -> ThresholdChoice:
    """The threshold with the lowest expected cost on ``(y, p)`` at ``costs`` (the schema's).

    Every distinct score is a candidate cut (plus "refuse nobody"). The returned threshold lies
    halfway between the chosen score and the next lower one, so it classifies the validation rows
    exactly as the candidate did while leaving a margin on both sides for new applicants. Ties go
    to the highest threshold: fewer refusals for the same cost.
    """
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    n = len(y)
    if n == 0:
        raise ValueError("cannot choose a threshold without data")
    scores = np.unique(p)[::-1]  # descending distinct scores
    order = np.argsort(-p, kind="stable")
    sorted_p, sorted_y = p[order], y[order]
    # rows with score >= s: searchsorted on the ascending negated scores
    flagged = np.searchsorted(-sorted_p, -scores, side="right")
    tp = np.cumsum(sorted_y)[flagged - 1]
    fp = flagged - tp
    positives = int(y.sum())
    fn = positives - tp
    cost_fn, cost_fp = costs.approve_bad, costs.refuse_good
    per_cut = np.concatenate([[cost_fn * positives], cost_fn * fn + cost_fp * fp]) / n
    best = int(np.argmin(per_cut))  # first minimum = highest threshold among ties
    if best == 0:  # refusing nobody is cheapest: cut above the highest score
        threshold = float((scores[0] + 1.0) / 2)
    else:
        chosen = scores[best - 1]
        lower = scores[best] if best < len(scores) else 0.0
        threshold = float((chosen + lower) / 2)
    return ThresholdChoice(threshold=threshold, cost=float(per_cut[best]), n=n)


def roc_auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """Area under the ROC curve by the rank statistic (ties count one half); None with one class."""
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = _average_ranks(p)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    boundaries = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(values)]])
    average = (starts + ends + 1) / 2.0  # 1-based average rank of each tie group
    ranks[order] = np.repeat(average, ends - starts)
    return ranks


def average_precision(y: np.ndarray, p: np.ndarray) -> float | None:
    """PR AUC as average precision (the step-wise area, as scikit-learn computes it)."""
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    positives = int(y.sum())
    if positives == 0:
        return None
    scores = np.unique(p)[::-1]
    order = np.argsort(-p, kind="stable")
    flagged = np.searchsorted(-p[order], -scores, side="right")
    tp = np.cumsum(y[order])[flagged - 1]
    precision = tp / flagged
    recall = tp / positives
    previous = np.concatenate([[0.0], recall[:-1]])
    return float(np.sum((recall - previous) * precision))


def ks_statistic(y: np.ndarray, p: np.ndarray) -> float | None:
    """Kolmogorov–Smirnov: the largest gap between the score distributions of the two classes."""
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    scores = np.unique(p)[::-1]
    order = np.argsort(-p, kind="stable")
    flagged = np.searchsorted(-p[order], -scores, side="right")
    tp = np.cumsum(y[order])[flagged - 1]
    fp = flagged - tp
    return float(np.max(np.abs(tp / positives - fp / negatives)))


def _ratio(numerator: float, denominator: float) -> float | None:
    return float(numerator / denominator) if denominator else None


def binary_metrics(
    y: np.ndarray, p: np.ndarray, threshold: float, *, measured_against: str, costs: Costs = GERMAN_COSTS
) -> dict[str, Any]:
    """Everything the report and the bundle say about one set of predictions against one labelling
    (the cost per applicant at ``costs``)."""
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    c = confusion(y, p, threshold)
    n = len(y)
    precision = _ratio(c["tp"], c["tp"] + c["fp"])
    recall = _ratio(c["tp"], c["tp"] + c["fn"])
    f1 = (
        _ratio(2 * precision * recall, precision + recall)
        if precision is not None and recall is not None
        else None
    )
    clipped = np.clip(p, _EPS, 1 - _EPS)
    return {
        "measured_against": measured_against,
        "n": n,
        "positives": int(y.sum()),
        "threshold": float(threshold),
        "roc_auc": roc_auc(y, p),
        "pr_auc": average_precision(y, p),
        "accuracy": _ratio(c["tp"] + c["tn"], n),
        "precision": precision,
        "recall": recall,
        "f1": f1 if f1 is not None else (0.0 if precision is not None or recall is not None else None),
        "specificity": _ratio(c["tn"], c["tn"] + c["fp"]),
        "ks": ks_statistic(y, p),
        "brier": float(np.mean((p - y) ** 2)) if n else None,
        "log_loss": float(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))) if n else None,
        "expected_cost": expected_cost(y, p, threshold, costs) if n else None,
        "confusion": c,
    }


BOOTSTRAP_RESAMPLES = 1000
INTERVAL_KEYS: tuple[str, ...] = (
    "roc_auc",
    "pr_auc",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "specificity",
    "ks",
    "brier",
    "log_loss",
    "expected_cost",
)


def bootstrap_intervals(
    y: np.ndarray,
    p: np.ndarray,
    threshold: float,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
    costs: Costs = GERMAN_COSTS,
) -> dict[str, list[float] | None]:
    """Percentile bootstrap intervals of every metric of :func:`binary_metrics` on ``(y, p)``.

    200 holdout rows move the AUC by several hundredths between seeds; a figure without its
    interval invites reading differences that are noise. Resamples keep the row count; a resample
    in which a metric is undefined (one class only) is left out for that metric.
    """
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)

    def metrics(pick: np.ndarray) -> Mapping[str, float | None]:
        values = binary_metrics(y[pick], p[pick], threshold, measured_against="", costs=costs)
        return {key: values[key] for key in INTERVAL_KEYS}

    return percentile_bootstrap(len(y), metrics, INTERVAL_KEYS, resamples=resamples, seed=seed, level=level)


def auc_interval(
    y: np.ndarray, p: np.ndarray, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0, level: float = 0.95
) -> list[float] | None:
    """The ``roc_auc`` interval of :func:`bootstrap_intervals`, the same figures, without a sort per resample.

    Monitoring bootstraps the AUC of every decision with an outcome on each refresh: tens of
    thousands of rows, 200 times. A resample is the same rows, each drawn some number of times, so
    its ranks come from one sort of the rows: per group of tied scores, how many were drawn and how
    many of those defaulted. The rank sums are whole and half numbers far below 2**53, exact in
    floating point in any order, so each resample's AUC is bit for bit :func:`roc_auc`'s.
    """
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    n = len(y)
    order = np.argsort(p, kind="mergesort")
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    bad = (y[order] == 1).astype(np.int64)
    starts = np.concatenate([[0], np.flatnonzero(np.diff(p[order])) + 1]).astype(np.int64)

    def statistics(pick: np.ndarray) -> Mapping[str, float | None]:
        drawn = np.bincount(position[pick], minlength=n)
        size = np.add.reduceat(drawn, starts)
        positive = np.add.reduceat(drawn * bad, starts)
        positives = int(positive.sum())
        negatives = len(pick) - positives
        if positives == 0 or negatives == 0:
            return {"roc_auc": None}
        average = (np.cumsum(size) - size) + (size + 1) / 2.0  # 1-based average rank of each tie group
        rank_sum = (average * positive).sum()
        return {"roc_auc": float((rank_sum - positives * (positives + 1) / 2) / (positives * negatives))}

    found = percentile_bootstrap(n, statistics, ["roc_auc"], resamples=resamples, seed=seed, level=level)
    return found["roc_auc"]


def percentile_bootstrap(
    n: int,
    statistics: Callable[[np.ndarray], Mapping[str, float | None]],
    keys: Sequence[str],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, list[float] | None]:
    """Percentile bootstrap intervals of ``statistics`` over ``n`` rows (rows drawn with replacement).

    ``statistics`` gets the drawn row indices and computes every figure on the same draw, so figures
    of two models on the same rows (and their difference) are resampled together: a paired
    bootstrap. A figure undefined on a draw (None) is left out for that figure.
    """
    if n == 0:
        return dict.fromkeys(keys)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {key: [] for key in keys}
    for _ in range(resamples):
        values = statistics(rng.integers(0, n, n))
        for key in keys:
            value = values.get(key)
            if value is not None:
                draws[key].append(float(value))
    tail = (1 - level) / 2 * 100
    return {
        key: [float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))] if v else None
        for key, v in draws.items()
    }


def with_intervals(
    metrics: dict[str, Any],
    y: np.ndarray,
    p: np.ndarray,
    *,
    resamples: int,
    seed: int,
    costs: Costs = GERMAN_COSTS,
) -> dict[str, Any]:
    """``metrics`` plus its 95% bootstrap intervals and a sentence saying how they were made."""
    if resamples <= 0:
        return metrics
    intervals = bootstrap_intervals(y, p, metrics["threshold"], resamples=resamples, seed=seed, costs=costs)
    return {
        **metrics,
        "intervals": intervals,
        "interval_method": f"95% percentile bootstrap over {resamples} resamples of these {len(y)} rows",
    }


def agreement(labels: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """How well one labelling (provider labels) agrees with another (real outcomes), 1 = bad risk.

    Accuracy alone flatters labels on imbalanced data (the majority class scores 0.70 on German
    Credit), so Cohen's kappa and the majority-class baseline come with it.
    """
    labels = np.asarray(labels, dtype=np.int64)
    truth = np.asarray(truth, dtype=np.int64)
    n = len(labels)
    if n == 0:
        return {"n": 0, "accuracy": None, "cohen_kappa": None, "majority_baseline": None, "confusion": None}
    observed = float(np.mean(labels == truth))
    p_label, p_truth = labels.mean(), truth.mean()
    chance = p_label * p_truth + (1 - p_label) * (1 - p_truth)
    kappa = float((observed - chance) / (1 - chance)) if chance < 1 else None
    c = confusion(truth, labels.astype(np.float64), 0.5)
    return {
        "n": n,
        "accuracy": observed,
        "cohen_kappa": kappa,
        "majority_baseline": float(max(p_truth, 1 - p_truth)),
        "confusion": c,
    }


# --------------------------------------------------------------------------------------------
# Presentation

METRIC_ROWS: tuple[tuple[str, str], ...] = (
    ("roc_auc", "ROC AUC"),
    ("pr_auc", "PR AUC"),
    ("accuracy", "Accuracy"),
    ("precision", "Precision (bad risk)"),
    ("recall", "Recall (bad risk)"),
    ("f1", "F1"),
    ("specificity", "Specificity"),
    ("ks", "KS"),
    ("brier", "Brier score"),
    ("log_loss", "Log loss"),
    ("expected_cost", "Cost per applicant"),
)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def metric_with_interval(metrics: Mapping[str, Any], key: str) -> str:
    """``0.771 [0.702–0.836]`` when the metric has a bootstrap interval, else the value alone."""
    interval = (metrics.get("intervals") or {}).get(key)
    if not interval or metrics.get(key) is None:
        return _fmt(metrics.get(key))
    return f"{_fmt(metrics.get(key))} [{interval[0]:.3f}\u2013{interval[1]:.3f}]"


def metrics_table(columns: Mapping[str, Mapping[str, Any]], title: str = "Holdout evaluation") -> Any:
    """A rich table with one column per labelling, e.g. provider labels beside real outcomes."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("Metric")
    for heading in columns:
        table.add_column(heading, justify="right")
    table.add_row("Threshold", *[_fmt(m.get("threshold")) for m in columns.values()])
    table.add_row("Rows (bad risk)", *[f"{m['n']} ({m['positives']})" for m in columns.values()])
    for key, label in METRIC_ROWS:
        table.add_row(label, *[metric_with_interval(m, key) for m in columns.values()])
    for key in ("tn", "fp", "fn", "tp"):
        label = {"tn": "Approved good (TN)", "fp": "Refused good (FP)", "fn": "Approved bad (FN)"}.get(
            key, "Refused bad (TP)"
        )
        table.add_row(label, *[_fmt(m["confusion"][key]) for m in columns.values()])
    return table


def summary_rows(metrics: Mapping[str, Any]) -> Sequence[tuple[str, str]]:
    """Train/validation/holdout AUC lines: the overfitting question in three numbers."""
    holdout = metrics.get("holdout") or {}
    return (
        ("Train AUC (final model, training part)", _fmt(metrics.get("train_auc"))),
        ("Cross-validation AUC (shipped parameters; optimistic)", _fmt(metrics.get("cv_auc"))),
        ("Holdout AUC", _fmt(holdout.get("roc_auc"))),
        ("Train − validation AUC gap", _fmt(metrics.get("auc_gap"))),
    )


def baseline_rows(metrics: Mapping[str, Any]) -> list[tuple[str, str, list[tuple[str, str, str]]]]:
    """Per labelling: (name, rows, [(what, AUC, Brier, cost)...]) comparing the model with its baselines.

    Shared by the train summary and the report, so both show the same comparison.
    """
    compared = metrics.get("baselines") or {}
    out = []
    blocks = {metrics.get("measured_against"): metrics.get("holdout")}
    if metrics.get("against_risk"):
        blocks[metrics["against_risk"]["measured_against"]] = metrics["against_risk"]
    for name, base in (compared.get("holdout") or {}).items():
        model = blocks.get(name) or {}
        rows = [
            (
                "this model",
                _fmt(model.get("roc_auc")),
                _fmt(model.get("brier")),
                _fmt(model.get("expected_cost")),
            ),
            (
                "logistic regression",
                _fmt(base["logistic_auc"]),
                _fmt(base["logistic_brier"]),
                _fmt(base["logistic_cost"]),
            ),
            ("constant base rate", "0.500", _fmt(base["base_rate_brier"]), "–"),
            ("approve everyone", "–", "–", _fmt(base["approve_all_cost"])),
            ("refuse everyone", "–", "–", _fmt(base["refuse_all_cost"])),
        ]
        out.append((str(name), f"{base['n']} holdout rows", rows))
    return out  # type: ignore[return-value]


ONE_SIDED = 0.95
"""A threshold that refuses (or approves) at least this share of the holdout is pointed out."""


def one_sided(holdout: dict[str, Any], costs: Costs = GERMAN_COSTS) -> str | None:
    """A note when the threshold decides nearly every holdout applicant the same way.

    The cost rule refuses whoever's calibrated p(bad) is above ``costs.bayes_cut`` (1/6 with
    German Credit's matrix); on a lender's data where bad risk is common, or with a model that
    cannot tell applicants apart, that is nearly everyone. Rational under those costs, and easy to
    miss in a table of metrics."""
    confusion, n = holdout.get("confusion"), holdout.get("n")
    if not confusion or not n:
        return None
    refused = int(confusion["tp"] + confusion["fp"])
    for count, verb in ((refused, "refuses"), (n - refused, "approves")):
        if count >= ONE_SIDED * n:
            return (
                f"Note: this threshold {verb} {count} of the {n} holdout applicants ({count / n:.0%}), "
                f"measured against {holdout['measured_against']}. The default threshold is the cheapest "
                f"under the {costs.ratio} cost ({costs.text}); if your costs differ, set them in the "
                "schema's [costs] or pass --threshold"
            )
    return None
