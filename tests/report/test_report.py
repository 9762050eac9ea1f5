"""The evaluation report: every section present, numbers that match the holdout, nothing fetched."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from preauth import report
from preauth.bundles import load_bundle
from preauth.errors import ModelBundleError
from preauth.features import encode


class _Page(HTMLParser):
    """Collects what a self-containment check needs: element ids, URL attributes, visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.urls: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
            if name in {"src", "href", "xlink:href", "action", "poster", "data"} and value is not None:
                self.urls.append((tag, name, value))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


@pytest.fixture(scope="module")
def html(llm_bundle: Path) -> str:
    return (llm_bundle / report.REPORT_FILE).read_text(encoding="utf-8")


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", " ".join(parse(html).text))


def test_training_wrote_the_report_with_every_section(html: str) -> None:
    page = parse(html)
    assert {"summary", "performance", "effects", "fairness", "labels", "search"} <= page.ids
    text = text_of(html)
    for heading in (
        "ROC curve",
        "Precision–recall curve",
        "Calibration",
        "Score distributions of both classes",
        "Cost and F1 against the threshold",
        "Confusion matrix at threshold",
        "Global feature effects",
        "Dependence of the top features",
        "By Sex",
        "By Age band",
        "Largest gaps",
        "Label provenance",
        "Agreement of",
        "Metrics against each set of labels",
        "Best trial: #",
        "Parameter importances",
        "Objective by trial",
    ):
        assert heading in text, heading
    for band in ("<25", "25–40", "40–60", "60+"):
        assert f"<td>{band.replace('<', '&lt;')}</td>" in html, band


def test_figures_are_embedded_and_nothing_is_fetched(html: str) -> None:
    page = parse(html)
    # roc, pr, calibration, distributions, cost/f1, effects x2, fairness, search x2
    assert html.count("<svg") >= 10
    assert "<path" in html
    for tag, name, value in page.urls:
        assert value.startswith("#") or value.startswith("data:"), f"<{tag} {name}={value!r}> leaves the file"
    assert "script" not in page.tags and "link" not in page.tags and "img" not in page.tags
    assert "@import" not in html
    assert all(ref.startswith("#") for ref in re.findall(r"url\(([^)]*)\)", html))


def test_every_metric_names_the_labels_it_was_measured_against(llm_bundle: Path, html: str) -> None:
    meta = json.loads((llm_bundle / "bundle.json").read_text())
    trained = meta["metrics"]["measured_against"]
    assert "test-rubric" in trained or "rubric-test" in trained
    text = text_of(html)
    assert f"measured against {trained}" in text
    assert "measured against real outcome (Risk)" in text
    assert f"ROC AUC vs {trained}" in text and "ROC AUC vs real outcome (Risk)" in text
    # The summary shows training's own holdout AUC against each set of labels, side by side.
    against_label = f"{meta['metrics']['holdout']['roc_auc']:.3f}"
    against_risk = f"{meta['metrics']['against_risk']['roc_auc']:.3f}"
    assert against_label != against_risk
    row = re.search(r"<tr><td>ROC AUC</td><td>([0-9.]+)</td><td>([0-9.]+)</td></tr>", html)
    assert row is not None and row.groups() == (against_label, against_risk)


def test_fairness_rates_match_the_holdout(llm_bundle: Path, llm_holdout: pd.DataFrame, html: str) -> None:
    threshold = json.loads((llm_bundle / "bundle.json").read_text())["threshold"]
    refused = llm_holdout["probability"] >= threshold
    for sex in ("female", "male"):
        mask = llm_holdout["Sex"] == sex
        approval = f"{100 * (~refused[mask]).mean():.1f}%"
        bad = mask & (llm_holdout["label"] == 1)
        tpr = f"{100 * refused[bad].mean():.1f}%"
        low, high = report.fairness.wilson(int((~refused[mask]).sum()), int(mask.sum()))
        interval = f" <small>[{100 * low:.1f}%–{100 * high:.1f}%]</small>"
        row = re.search(
            rf"<tr><td>{sex}</td><td>{int(mask.sum())}</td><td>([^<]+)(<small>[^<]+</small>)</td><td>([^<]+) <small>",
            html,
        )
        assert row is not None, sex
        assert (row.group(1), row.group(3)) == (approval + " ", tpr)
        assert " " + row.group(2) == interval
    young = llm_holdout["Age"] < 25
    assert f"<td>&lt;25</td><td>{int(young.sum())}" in html
    assert f"<td>{100 * (~refused[young]).mean():.1f}% <small>" in html
    assert "Four-fifths ratio by Age band" in text_of(html) and "95% Wilson intervals" in text_of(html)
    assert "Sex is <b>not</b> an input of this model" in html


def test_wilson_intervals_and_the_four_fifths_ratio() -> None:
    low, high = report.fairness.wilson(15, 50)  # textbook value: 0.191–0.438
    assert (round(low, 3), round(high, 3)) == (0.191, 0.438)
    assert report.fairness.wilson(0, 0) is None
    groups = pd.Series(["a"] * 100 + ["b"] * 100 + ["tiny"] * 5)
    refused = np.r_[np.zeros(90), np.ones(10), np.zeros(45), np.ones(55), np.ones(5)].astype(bool)
    found = report.fairness.four_fifths(groups, refused)
    assert found is not None and found["groups"] == ["a", "b"]  # the tiny group is too small to judge
    assert found["ratio"] == pytest.approx(0.45 / 0.90)
    assert found["interval"][0] < 0.5 < found["interval"][1] < 0.8


def test_fairness_gap_call_out_names_the_extreme_groups() -> None:
    rows = [
        {"group": "a", "n": 50, "approval": 0.9},
        {"group": "b", "n": 40, "approval": 0.6},
        {"group": "tiny", "n": 3, "approval": 0.1},  # too small to call out
    ]
    (gap,) = report.fairness.gaps(rows, [("approval", "Approval rate")])
    assert (gap["low"], gap["high"]) == ("b", "a")
    assert gap["gap"] == pytest.approx(0.3)
    assert gap["ratio"] == pytest.approx(0.6 / 0.9)


def test_age_bands_have_inclusive_lower_bounds() -> None:
    bands = report.age_band(pd.Series([18.0, 24.0, 25.0, 39.0, 40.0, 59.0, 60.0, 75.0]))
    assert list(bands) == ["<25", "<25", "25–40", "25–40", "40–60", "40–60", "60+", "60+"]


def test_feature_effects_are_the_models_own_contributions(
    llm_bundle: Path, llm_holdout: pd.DataFrame, html: str
) -> None:
    bundle = load_bundle(llm_bundle.parent, llm_bundle.name)
    contrib = report.contributions(bundle.booster, bundle.meta, llm_holdout)
    # TreeSHAP contributions plus the bias add up to the shipped booster's margin: its raw
    # probability, which the calibration map turns into the served one. (The shipped booster is
    # refit on all rows, so these are its answers, not the holdout file's.)
    margin = contrib.sum(axis=1)
    raw = 1 / (1 + np.exp(-margin))
    matrix = encode(llm_holdout, bundle.features)
    np.testing.assert_allclose(raw, bundle.raw_proba(matrix), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        bundle.calibration.apply(raw), bundle.predict_proba(matrix), rtol=1e-4, atol=1e-5
    )
    importance = np.abs(contrib[:, :-1]).mean(axis=0)
    top = bundle.features[int(np.argmax(importance))]
    assert f"<tr><td>{top}</td><td>{importance.max():.3f}</td>" in html
    assert "Sex" not in bundle.features
    assert "Left out of the model: Sex" in text_of(html)


def test_provenance_agreement_matches_the_labels(llm_holdout: pd.DataFrame, html: str) -> None:
    known = llm_holdout["risk"].notna()
    accuracy = (llm_holdout.loc[known, "label"] == llm_holdout.loc[known, "risk"]).mean()
    assert f'Accuracy vs Risk</div><div class="v">{accuracy:.3f}</div>' in html
    assert f"On the {int(known.sum())} holdout applications with a known outcome" in html


def test_provenance_names_the_labels_file_without_its_directories(llm_bundle: Path, html: str) -> None:
    """The report is served over HTTP (/v1/model/report), where no internal path may appear."""
    source = json.loads((llm_bundle / "bundle.json").read_text())["label_provenance"]["source"]
    assert Path(source).is_absolute() and str(Path(source).parent) not in html
    assert f'<td style="text-align:left">{Path(source).name}</td>' in html


def test_search_best_trial_matches_trials_file(llm_bundle: Path, html: str) -> None:
    trials = pd.read_csv(llm_bundle / "trials.csv")
    done = trials[trials["state"] == "COMPLETE"]
    best = done.loc[done["value"].idxmax()]
    assert f"Best trial: #{int(best['number'])}, objective {best['value']:.4f}" in html


def test_param_importances_from_the_trials_file(llm_bundle: Path) -> None:
    found = report.param_importances(pd.read_csv(llm_bundle / "trials.csv"))
    assert found and abs(sum(found.values()) - 1) < 1e-6
    assert all(0 <= v <= 1 for v in found.values())


def test_a_model_trained_on_risk_has_one_set_of_labels(risk_bundle: Path) -> None:
    path = report.write_report(risk_bundle)
    html = path.read_text(encoding="utf-8")
    text = text_of(html)
    assert "Trained on the real outcomes (Risk) themselves" in text
    assert "measured against real outcome (Risk)" in text
    assert "TPR vs real outcome (Risk)" in text
    assert html.count("measured against") >= 1 and "vs rules" not in text


def test_report_needs_the_holdout(risk_bundle: Path, tmp_path: Path) -> None:
    broken = tmp_path / "v1"
    shutil.copytree(risk_bundle, broken)
    (broken / "holdout.parquet").unlink()
    with pytest.raises(ModelBundleError, match="no holdout.parquet"):
        report.write_report(broken)
    assert not (broken / report.REPORT_FILE).exists() or (broken / report.REPORT_FILE).stat().st_size > 0
    assert not list(broken.glob(".report.html.*")), "no half-written temporary file is left"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from preauth.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_report_command_rebuilds_and_names_the_file(risk_bundle: Path) -> None:
    target = risk_bundle / report.REPORT_FILE
    target.unlink(missing_ok=True)
    models = str(risk_bundle.parent)
    built = run_cli("--models-dir", models, "report", risk_bundle.name, "--no-open")
    assert built.returncode == 0, built.stderr
    assert built.stdout.strip() == f"built {target}"
    assert target.stat().st_size > 10_000
    again = run_cli("--models-dir", models, "report", risk_bundle.name, "--no-open")
    assert again.returncode == 0 and again.stdout.strip() == str(target)
    rebuilt = run_cli("--models-dir", models, "report", "--rebuild", "--no-open")
    assert rebuilt.returncode == 0 and rebuilt.stdout.startswith("built ")


def test_report_command_unknown_version_is_one_line(risk_bundle: Path) -> None:
    result = run_cli("--models-dir", str(risk_bundle.parent), "report", "v99", "--no-open")
    assert result.returncode == 3
    assert result.stderr.strip().count("\n") == 0
    assert "no model 'v99'" in result.stderr and "Traceback" not in result.stderr


def test_report_on_the_originals_llm_labels_without_outcomes(original_dir: Path, tmp_path: Path) -> None:
    """The original pipeline's Llama 3 labels have no Risk beside them: one set of labels, said so."""
    from preauth.training import TrainingConfig, train_from_file

    labels = original_dir / "credit_data_with_targets.csv"
    result = train_from_file(
        labels, TrainingConfig(trials=3, folds=3, seed=1), tmp_path / "models", progress=False
    )
    html = (Path(result.bundle_path) / report.REPORT_FILE).read_text(encoding="utf-8")
    text = text_of(html)
    assert "No real outcomes in the holdout" in text
    assert "credit_data_with_targets.csv" in text
    assert "vs real outcome" not in text and "TPR vs real" not in text
    assert "By Sex" in text and "By Age band" in text


def test_importances_of_a_search_whose_trials_all_scored_the_same() -> None:
    import pandas as pd

    from preauth.report import param_importances

    trials = pd.DataFrame(
        {"number": [0, 1, 2], "state": "COMPLETE", "value": [0.5, 0.5, 0.5], "params_max_depth": [2, 3, 4]}
    )
    assert param_importances(trials) == {}


def test_the_report_shows_calibration_before_and_after_beside_the_base_rate(
    llm_bundle: Path, llm_holdout: pd.DataFrame, html: str
) -> None:
    from preauth.calibration import expected_calibration_error

    y = llm_holdout["label"].to_numpy()
    raw = llm_holdout["raw_probability"].to_numpy()
    p = llm_holdout["probability"].to_numpy()
    before, after = expected_calibration_error(y, raw), expected_calibration_error(y, p)
    assert before is not None and after is not None
    text = text_of(html)
    assert f"{before:.3f} → {after:.3f}" in text
    from preauth.calibration import ece_noise

    chance = ece_noise(p)
    assert chance is not None and f"{chance.mean:.3f}; ≤ {chance.upper:.3f}" in text
    assert f"{np.mean((y.mean() - y) ** 2):.3f}" in text  # the Brier of a constant guess
    assert "reasons explain the booster's margin (log-odds) before the map" in text
    assert "before calibration" in html  # the reliability diagram's second line


def test_the_report_draws_each_constrained_field_and_states_what_the_constraints_cost(
    llm_bundle: Path, html: str
) -> None:
    meta = json.loads((llm_bundle / "bundle.json").read_text())
    cost = meta["search"]["monotone"]
    text = text_of(html)
    assert "Monotone constraints: partial dependence" in text
    assert f"CV AUC {cost['cv_auc_with']:.3f} with them, {cost['cv_auc_without']:.3f} without" in text
    assert "Credit amount: 0 applicants whose risk falls" in text
    assert "Duration: 0 applicants whose risk falls" in text
    assert f"Best CV AUC {meta['search']['best_value']:.3f} is optimistic" in text
    assert f"Shipped: {meta['search']['shipped']}" in text


def test_the_report_says_which_model_the_holdout_measured(llm_bundle: Path, html: str) -> None:
    meta = json.loads((llm_bundle / "bundle.json").read_text())
    assert meta["metrics"]["refit"]["applied"] is True
    assert f"Shipped model: {meta['metrics']['refit']['shipped_model']}." in text_of(html)
    assert "every holdout figure measures the" in text_of(html)


def test_every_holdout_metric_in_the_report_has_its_interval(llm_bundle: Path, html: str) -> None:
    meta = json.loads((llm_bundle / "bundle.json").read_text())
    text = text_of(html)
    for block in (meta["metrics"]["holdout"], meta["metrics"]["against_risk"]):
        for key in ("roc_auc", "pr_auc", "brier", "log_loss", "recall"):
            low, high = block["intervals"][key]
            assert f"{block[key]:.3f} [{low:.3f}–{high:.3f}]" in text, key
    assert "95% percentile bootstrap over 1000 resamples" in text


def test_provenance_is_shown_in_words_not_as_raw_keys(llm_bundle: Path, html: str) -> None:
    section = html[html.index('<section id="labels"') :]
    section = section[: section.index("</section>")]
    text = text_of(section)
    provenance = json.loads((llm_bundle / "bundle.json").read_text())["label_provenance"]
    raw = [k for k in provenance if "_" in k] + [k for k in provenance.get("counts", {}) if "_" in k]
    raw += [k for k in (provenance.get("agreement_with_risk") or {}) if "_" in k]
    assert raw, "the bundle has no keys to check"
    for key in raw:
        assert key not in text, key
    for words in ("Labels file", "Trained on labels from a provider", "Label provider", "Prompt version"):
        assert words in text, words
    assert "Rows of the labels file" in text and "Used for training" in text
    agreement = provenance["agreement_with_risk"]["confusion"]
    assert f"both good {agreement['tn']} · label bad, Risk good {agreement['fp']}" in text


def test_the_search_is_described_in_words_not_as_raw_keys(llm_bundle: Path, html: str) -> None:
    section = html[html.index('<section id="search"') :]
    text = text_of(section[: section.index("</section>")])
    settings = json.loads((llm_bundle / "bundle.json").read_text())["search"]
    shown = [k for k, v in settings.items() if not isinstance(v, dict | list) and "_" in k]
    assert "n_trials" in shown and "duration_s" in shown
    for key in shown:
        assert f"{key}:" not in text, key
    assert f"Trials run: {settings['n_trials']}" in text


def test_the_report_compares_the_model_with_its_baselines(llm_bundle: Path, html: str) -> None:
    meta = json.loads((llm_bundle / "bundle.json").read_text())
    text = text_of(html)
    for name, block in meta["metrics"]["baselines"]["holdout"].items():
        assert f"Baselines on the same rows, measured against {name}" in text
        assert f"approve everyone – – {block['approve_all_cost']:.3f}" in " ".join(text.split())
        assert f"logistic regression {block['logistic_auc']:.3f}" in " ".join(text.split())
