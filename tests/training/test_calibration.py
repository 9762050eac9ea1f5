"""Calibration: fitted on out-of-fold scores, stored as plain numbers, applied wherever a probability leaves."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from preauth.bundles import load_bundle
from preauth.calibration import Calibration, ece_noise, expected_calibration_error, fit_calibration, log_loss
from preauth.errors import ModelBundleError
from preauth.evaluation import choose_threshold
from preauth.features import encode
from preauth.scoring import score
from preauth.service.serving import Served
from preauth.training import load_labels


def _scores(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.02, 0.98, n)


def test_platt_recovers_a_known_map() -> None:
    raw = _scores(20000, 1)
    z = np.log(raw / (1 - raw))
    truth = 1 / (1 + np.exp(-(0.5 * z - 0.8)))
    y = (np.random.default_rng(2).uniform(size=len(raw)) < truth).astype(int)
    fitted = fit_calibration(y, raw, "platt")
    assert fitted.method == "platt"
    assert fitted.a == pytest.approx(0.5, abs=0.05) and fitted.b == pytest.approx(-0.8, abs=0.05)
    np.testing.assert_allclose(fitted.apply(raw), truth, atol=0.02)


def test_auto_prefers_isotonic_for_a_step_and_keeps_the_cv_losses() -> None:
    raw = _scores(4000, 3)
    truth = np.where(raw < 0.5, 0.1, 0.9)  # no sigmoid of logit(raw) fits a step
    y = (np.random.default_rng(4).uniform(size=len(raw)) < truth).astype(int)
    fitted = fit_calibration(y, raw, "auto", folds=5, seed=0)
    assert fitted.method == "isotonic"
    assert fitted.cv_log_loss["isotonic"] < fitted.cv_log_loss["platt"]
    assert list(fitted.x) == sorted(fitted.x) and list(fitted.y) == sorted(fitted.y)
    np.testing.assert_allclose(fitted.apply(raw), np.interp(raw, fitted.x, fitted.y))
    assert log_loss(y, fitted.apply(raw)) < log_loss(y, raw)


def test_isotonic_keeps_the_boosters_ranking_inside_its_steps() -> None:
    """Centred isotonic: the pooled blocks' rates at their rows' mean score, strictly increasing
    between them, so two applicants the booster told apart are not tied (ties cost ROC AUC)."""
    from preauth.evaluation import roc_auc

    raw = _scores(800, 6)
    y = (np.random.default_rng(7).uniform(size=len(raw)) < 0.1 + 0.3 * raw).astype(int)  # few, wide steps
    fitted = fit_calibration(y, raw, "isotonic")
    assert len(fitted.x) > 2 and np.all(np.diff(fitted.x) > 0) and np.all(np.diff(fitted.y) > 0)
    inside = (raw > fitted.x[0]) & (raw < fitted.x[-1])
    assert inside.mean() > 0.8
    p = fitted.apply(raw[inside])
    assert len(np.unique(p)) == int(inside.sum())  # no two applicants tied
    assert roc_auc(y[inside], p) == pytest.approx(roc_auc(y[inside], raw[inside]))
    # each breakpoint is a block's observed rate at the block's mean score: the rows' mean is kept
    assert float(np.mean(fitted.apply(raw))) == pytest.approx(float(np.mean(y)), abs=0.02)


def test_calibration_round_trips_through_plain_json() -> None:
    raw = _scores(500, 5)
    y = (raw > 0.6).astype(int)
    for method in ("platt", "isotonic"):
        fitted = fit_calibration(y, raw, method)  # type: ignore[arg-type]
        text = json.dumps(fitted.as_json())  # plain numbers only: json would refuse anything else
        again = Calibration.from_json(json.loads(text))
        np.testing.assert_array_equal(again.apply(raw), fitted.apply(raw))
    assert Calibration.from_json(None).apply(raw) is not None
    np.testing.assert_array_equal(Calibration.from_json(None).apply(raw), raw)
    with pytest.raises(ModelBundleError, match="unknown calibration method 'magic'"):
        Calibration.from_json({"method": "magic"})
    with pytest.raises(ModelBundleError, match="unreadable calibration"):
        Calibration.from_json({"method": "isotonic", "x": [0.1, 0.2], "y": [0.5, 0.1]})
    # a NaN map made every probability NaN, so every applicant approved; a probability past 1
    for damaged in (
        {"method": "platt", "a": float("nan"), "b": 0.0},
        {"method": "platt", "a": 1.0, "b": float("inf")},
        {"method": "isotonic", "x": [0.1, float("nan")], "y": [0.1, 0.5]},
        {"method": "isotonic", "x": [0.1, 0.2], "y": [0.1, 1.5]},
    ):
        with pytest.raises(ModelBundleError, match="unreadable calibration"):
            Calibration.from_json(damaged)
    assert Calibration.from_json({"method": "platt", "a": -0.5, "b": 0.0}).a == -0.5  # a fit may give it


def test_ece_of_a_perfect_and_of_a_shifted_forecast() -> None:
    p = np.repeat([0.15, 0.55], 100)
    y = np.concatenate([np.r_[np.ones(15), np.zeros(85)], np.r_[np.ones(55), np.zeros(45)]])
    assert expected_calibration_error(y, p) == pytest.approx(0.0)
    assert expected_calibration_error(y, p + 0.2) == pytest.approx(0.2)


def test_the_chance_ece_is_what_perfectly_calibrated_outcomes_show() -> None:
    rng = np.random.default_rng(7)
    p = rng.beta(2, 5, 1000)
    chance = ece_noise(p, draws=2000, seed=1)
    assert chance is not None and 0.015 < chance.mean < chance.upper < 0.06
    # outcomes drawn from p itself: their ECE stays under the 95th percentile about 95% of the time
    eces = np.array([expected_calibration_error(rng.random(len(p)) < p, p) for _ in range(600)])
    assert 0.92 <= np.mean(eces <= chance.upper) <= 0.98
    assert np.mean(eces) == pytest.approx(chance.mean, rel=0.06)
    # a forecast 0.1 off is far above it
    assert (expected_calibration_error(rng.random(len(p)) < p, np.clip(p + 0.1, 0, 1)) or 0) > chance.upper
    assert ece_noise(np.array([])) is None


def test_the_chance_ece_of_large_bins_matches_drawing_every_row() -> None:
    """Bins of more than 2,000 rows are drawn from the normal law: the same as drawing each row."""
    rng = np.random.default_rng(3)
    p = rng.beta(2, 5, 30_000)
    fast = ece_noise(p, draws=400, seed=2)
    exact = [expected_calibration_error(rng.random(len(p)) < p, p) or 0.0 for _ in range(400)]
    assert fast is not None
    assert fast.mean == pytest.approx(np.mean(exact), rel=0.08)
    assert fast.upper == pytest.approx(np.quantile(exact, 0.95), rel=0.12)


def test_training_calibrates_on_out_of_fold_scores_and_cuts_on_them(labels_file: Path, trained) -> None:
    data = load_labels(labels_file)
    y_train = pd.Series(data.y, index=data.frame.index).loc[trained.train_rows].to_numpy()
    calibration = trained.calibration
    assert calibration.method in ("platt", "isotonic")
    assert set(calibration.cv_log_loss) == {"platt", "isotonic"}
    assert calibration.method == min(calibration.cv_log_loss, key=calibration.cv_log_loss.__getitem__)
    calibrated = calibration.apply(trained.search.oof)
    # both maps reproduce the rate of the rows they were fitted on
    assert calibrated.mean() == pytest.approx(y_train.mean(), abs=2e-3)
    assert trained.threshold == choose_threshold(y_train, calibrated).threshold
    holdout = trained.holdout
    np.testing.assert_allclose(holdout["probability"], calibration.apply(holdout["raw_probability"]))
    block = trained.metrics["calibration"]
    assert block["measured_against"] == trained.metrics["measured_against"]
    assert block["ece"] < block["ece_raw"]
    chance = ece_noise(holdout["probability"].to_numpy())
    assert chance is not None
    assert (block["ece_chance"], block["ece_chance_upper"]) == (chance.mean, chance.upper)
    assert block["brier_base_rate"] == pytest.approx(
        np.mean((y_train.mean() - holdout["label"].to_numpy()) ** 2)
    )


def test_the_bundle_serves_and_writes_calibrated_probabilities(bundle_run) -> None:
    path = bundle_run.bundle_path
    meta = json.loads((path / "bundle.json").read_text())
    stored = meta["calibration"]
    assert stored["method"] in ("platt", "isotonic")
    assert all(isinstance(v, float) for key in ("a", "b", "x", "y") for v in np.ravel(stored.get(key, [])))
    bundle = load_bundle(path.parent, path.name)
    holdout = pd.read_parquet(path / "holdout.parquet")
    matrix = encode(holdout, bundle.features)
    raw = bundle.raw_proba(matrix)
    calibrated = bundle.predict_proba(matrix)
    assert not np.allclose(raw, calibrated)
    np.testing.assert_allclose(calibrated, Calibration.from_json(stored).apply(raw))
    # the service's scoring path (the C-API calls) gives the same calibrated probability
    np.testing.assert_allclose(Served(bundle).probability(matrix), calibrated, rtol=1e-6)
    # batch scoring (preauth predict) too, and its reasons still sum to the booster's margin
    from preauth.applications import validate

    scored = score(bundle, validate(holdout.drop(columns=["label", "risk"]).iloc[:20]), explain=True)
    np.testing.assert_allclose(scored.probability, calibrated[:20], rtol=1e-6)
    assert scored.reasons is not None and all(1 <= len(r) <= 4 for r in scored.reasons)


def test_a_bundle_without_calibration_scores_as_before(bundle_run, tmp_path: Path) -> None:
    copy = tmp_path / "models" / "v1"
    shutil.copytree(bundle_run.bundle_path, copy)
    meta = json.loads((copy / "bundle.json").read_text())
    del meta["calibration"]
    (copy / "bundle.json").write_text(json.dumps(meta))
    bundle = load_bundle(copy.parent, "v1")
    holdout = pd.read_parquet(copy / "holdout.parquet")
    matrix = encode(holdout, bundle.features)
    raw = np.asarray(bundle.booster.inplace_predict(matrix), dtype=np.float64)
    np.testing.assert_array_equal(bundle.predict_proba(matrix), raw)
    np.testing.assert_allclose(Served(bundle).probability(matrix), raw, rtol=1e-6)


def test_a_damaged_calibration_is_refused_on_load(bundle_run, tmp_path: Path) -> None:
    copy = tmp_path / "models" / "v1"
    shutil.copytree(bundle_run.bundle_path, copy)
    meta = json.loads((copy / "bundle.json").read_text())
    meta["calibration"] = {"method": "platt", "a": "steep"}
    (copy / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(ModelBundleError, match=r"v1: unreadable calibration in bundle.json"):
        load_bundle(copy.parent, "v1")


@pytest.mark.parametrize("threshold", [float("nan"), float("inf"), -0.1, 1.5, "0.3", None, True])
def test_a_threshold_that_is_not_a_probability_is_refused_on_load(
    bundle_run, tmp_path: Path, threshold
) -> None:
    """A NaN threshold (a hand-edited bundle.json) approved every applicant, an infinity too, -1
    refused every one, and "abc" or null was a traceback."""
    copy = tmp_path / "models" / "v1"
    shutil.copytree(bundle_run.bundle_path, copy)
    meta = json.loads((copy / "bundle.json").read_text())
    meta["threshold"] = threshold
    (copy / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(
        ModelBundleError, match=r"v1: its bundle.json threshold .* is not a probability between 0 and 1"
    ):
        load_bundle(copy.parent, "v1")


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        ({"review_band": float("nan")}, "its review band 'nan' is not a number at least 0 and below 0.5"),
        ({"review_band": "wide"}, "its review band 'wide' is not a number at least 0 and below 0.5"),
        ({"review_band": 0.5}, "its review band '0.5' is not a number at least 0 and below 0.5"),  # as train
        ({"seen": "everything"}, "its 'seen' block is not an object"),
        ({"seen": {"Age": {"min": 19, "max": float("nan")}}}, "the range seen of 'Age' is not two numbers"),
        ({"seen": {"Age": {"min": 80, "max": 19}}}, "the range seen of 'Age' is not two numbers, min <= max"),
        ({"seen": {"Housing": {"levels": [1, 2]}}}, "the levels seen of 'Housing' are not a list of texts"),
    ],
)
def test_a_damaged_refer_rule_is_refused_on_load(bundle_run, tmp_path: Path, edit, problem) -> None:
    """A range of NaN or a band of text once stopped the model referring anyone, silently."""
    copy = tmp_path / "models" / "v1"
    shutil.copytree(bundle_run.bundle_path, copy)
    meta = json.loads((copy / "bundle.json").read_text())
    meta.update(edit)
    (copy / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(ModelBundleError, match=re.escape(f"v1: bundle.json: {problem}")):
        load_bundle(copy.parent, "v1")
    meta.pop("seen"), meta.pop("review_band", None)  # a bundle from before the rule: still loads
    (copy / "bundle.json").write_text(json.dumps(meta))
    assert load_bundle(copy.parent, "v1").version == "v1"
