"""Metrics against scikit-learn, and the cost rule that picks the threshold."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from preauth.applications import Costs
from preauth.evaluation import (
    agreement,
    binary_metrics,
    bootstrap_intervals,
    choose_threshold,
    expected_cost,
    metrics_table,
)


@pytest.fixture(params=[0, 1, 2])
def predictions(request: pytest.FixtureRequest) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(request.param)
    y = (rng.random(500) < 0.3).astype(int)
    p = np.clip(0.3 * y + rng.random(500) * 0.7, 0, 1)
    p = np.round(p, 2)  # ties, which rank-based metrics must handle like scikit-learn
    return y, p


def test_metrics_match_scikit_learn(predictions: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = predictions
    m = binary_metrics(y, p, 0.4, measured_against="test labels")
    flagged = (p >= 0.4).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y, flagged).ravel()
    fpr, tpr, _ = skm.roc_curve(y, p)
    assert m["measured_against"] == "test labels"
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, p), abs=1e-12)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, flagged))
    assert m["precision"] == pytest.approx(skm.precision_score(y, flagged))
    assert m["recall"] == pytest.approx(skm.recall_score(y, flagged))
    assert m["f1"] == pytest.approx(skm.f1_score(y, flagged))
    assert m["specificity"] == pytest.approx(tn / (tn + fp))
    assert m["ks"] == pytest.approx(np.max(tpr - fpr))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15)))
    assert m["confusion"] == {"tn": tn, "fp": fp, "fn": fn, "tp": tp}
    assert (m["n"], m["positives"], m["threshold"]) == (500, int(y.sum()), 0.4)


def test_auc_is_none_with_one_class() -> None:
    m = binary_metrics(np.zeros(5, dtype=int), np.linspace(0, 1, 5), 0.5, measured_against="x")
    assert m["roc_auc"] is None and m["ks"] is None and m["pr_auc"] is None
    assert m["accuracy"] == pytest.approx(0.4)  # 0.5, 0.75, 1.0 refused


def test_threshold_minimises_expected_cost_on_a_tiny_example() -> None:
    # p >= t refuses. Cutting below 0.2 refuses both bad applicants and two good ones:
    # cost (5*0 + 1*2)/5 = 0.4, cheaper than refusing only 0.9 (one bad approved: 5/5 = 1.0).
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.9])
    y = np.array([0, 1, 0, 0, 1])
    choice = choose_threshold(y, p)
    assert choice.cost == pytest.approx(0.4)
    assert choice.threshold == pytest.approx(0.15)  # halfway between 0.2 and the next lower score
    assert expected_cost(y, p, choice.threshold) == pytest.approx(0.4)
    grid = np.linspace(0, 1, 1001)
    assert choice.cost == pytest.approx(min(expected_cost(y, p, t) for t in grid))


def test_threshold_follows_the_cost_matrix() -> None:
    """Making refusals expensive must move the cut up; the default 5:1 favours refusing."""
    rng = np.random.default_rng(3)
    y = (rng.random(400) < 0.3).astype(int)
    p = np.clip(0.25 * y + rng.random(400) * 0.75, 0, 1)
    default = choose_threshold(y, p)
    reversed_costs = choose_threshold(y, p, Costs(approve_bad=1.0, refuse_good=5.0))
    assert reversed_costs.threshold > default.threshold
    for choice, (cfn, cfp) in ((default, (5, 1)), (reversed_costs, (1, 5))):
        grid_best = min(
            expected_cost(y, p, t, Costs(cfn, cfp)) for t in np.unique(np.concatenate([p, [1.01]]))
        )
        assert choice.cost == pytest.approx(grid_best)


def test_refusing_nobody_puts_the_cut_above_every_score() -> None:
    y = np.array([0, 0, 0, 1])
    p = np.array([0.1, 0.2, 0.3, 0.25])
    choice = choose_threshold(y, p, Costs(approve_bad=0.1, refuse_good=1.0))
    assert choice.threshold > 0.3
    assert expected_cost(y, p, choice.threshold, Costs(0.1, 1.0)) == pytest.approx(0.1 / 4)


def test_agreement_matches_scikit_learn_kappa() -> None:
    rng = np.random.default_rng(0)
    truth = (rng.random(300) < 0.3).astype(int)
    labels = np.where(rng.random(300) < 0.7, truth, 1 - truth)
    a = agreement(labels, truth)
    assert a["accuracy"] == pytest.approx(skm.accuracy_score(truth, labels))
    assert a["cohen_kappa"] == pytest.approx(skm.cohen_kappa_score(truth, labels))
    assert a["majority_baseline"] == pytest.approx(max(truth.mean(), 1 - truth.mean()))
    tn, fp, fn, tp = skm.confusion_matrix(truth, labels).ravel()
    assert a["confusion"] == {"tn": tn, "fp": fp, "fn": fn, "tp": tp}


def test_metrics_table_has_a_column_per_labelling() -> None:
    from rich.console import Console

    y = np.array([0, 1, 0, 1])
    p = np.array([0.2, 0.8, 0.6, 0.4])
    table = metrics_table(
        {
            "vs provider": binary_metrics(y, p, 0.5, measured_against="provider"),
            "vs Risk": binary_metrics(1 - y, p, 0.5, measured_against="Risk"),
        }
    )
    console = Console(record=True, width=120)
    console.print(table)
    text = console.export_text()
    assert "vs provider" in text and "vs Risk" in text and "ROC AUC" in text


def test_bootstrap_intervals_cover_the_metric_and_narrow_with_more_rows() -> None:
    rng = np.random.default_rng(5)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = (rng.random(n) < 0.3).astype(int)
        return y, np.clip(0.25 * y + rng.random(n) * 0.75, 0, 1)

    y, p = sample(200)
    point = binary_metrics(y, p, 0.4, measured_against="x")
    small = bootstrap_intervals(y, p, 0.4, resamples=400, seed=1)
    for key, interval in small.items():
        assert interval is not None, key
        assert interval[0] <= point[key] <= interval[1], key
    big_y, big_p = sample(5000)
    big = bootstrap_intervals(big_y, big_p, 0.4, resamples=200, seed=1)
    width = {k: small[k][1] - small[k][0] for k in small}  # type: ignore[index]
    assert all(big[k][1] - big[k][0] < width[k] for k in big)  # type: ignore[index]
    assert bootstrap_intervals(y, p, 0.4, resamples=50, seed=1) == bootstrap_intervals(
        y, p, 0.4, resamples=50, seed=1
    )
    # the AUC interval of a model no better than chance straddles 0.5
    noise = bootstrap_intervals(y, rng.random(200), 0.4, resamples=300, seed=2)["roc_auc"]
    assert noise is not None and noise[0] < 0.5 < noise[1]
