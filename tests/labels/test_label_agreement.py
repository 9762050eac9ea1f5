"""Agreement of labels with real outcomes, and labels made elsewhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix

from preauth.errors import InputError
from preauth.labels import agreement, label_applications, measure_labels, read_labels, write_labels

DATA = Path(__file__).resolve().parents[2] / "src" / "preauth" / "data"


def test_matches_sklearn() -> None:
    rng = np.random.default_rng(7)
    truth = rng.choice(["good", "bad"], size=500, p=[0.7, 0.3])
    labels = np.where(
        rng.random(500) < 0.75,
        np.where(truth == "good", "good risk", "bad risk"),
        rng.choice(["good risk", "bad risk"], size=500),
    )
    result = agreement(labels, truth)
    truth_labels = [t + " risk" for t in truth]
    assert result.kappa == pytest.approx(cohen_kappa_score(labels, truth_labels))
    assert result.accuracy == pytest.approx(accuracy_score(truth_labels, labels))
    (tn, fp), (fn, tp) = confusion_matrix(truth_labels, labels, labels=["good risk", "bad risk"])
    assert result.confusion == {"tn": tn, "fp": fp, "fn": fn, "tp": tp}
    assert result.majority_accuracy == pytest.approx(max((truth == "good").mean(), (truth == "bad").mean()))
    assert result.n == 500


def test_unlabeled_are_counted_and_left_out() -> None:
    result = agreement(["good risk", None, "", "bad risk"], ["good", "bad", "good", "good"])
    assert (result.n, result.unlabeled, result.accuracy) == (2, 2, 0.5)
    with pytest.raises(InputError, match="3 labels but 2 outcomes"):
        agreement(["good risk"] * 3, ["good"] * 2)
    with pytest.raises(InputError, match="nothing to measure"):
        agreement([None, None], ["good", "bad"])


def test_original_llm_labels_against_risk(original_dir: Path) -> None:
    """The worked example: how good were the original pipeline's Llama 3 70B labels?"""
    result = measure_labels(original_dir / "credit_data_with_targets.csv", DATA / "german_credit_risk.csv")
    assert result.n == 1000
    assert result.accuracy == pytest.approx(0.614, abs=5e-4)
    assert result.kappa == pytest.approx(0.058, abs=5e-4)
    assert result.majority_accuracy == pytest.approx(0.70)
    assert "row order" in result.measured_against


def test_original_labels_read_as_a_label_set(original_dir: Path) -> None:
    labels = read_labels(original_dir / "credit_data_with_targets.csv")
    assert len(labels.applications) == 1000 and not labels.applications.rejects
    assert labels.target.value_counts().to_dict() == {"good risk": 726, "bad risk": 274}
    assert labels.bad.sum() == 274
    assert labels.description is not None and "67-year-old" in labels.description.iloc[0]
    assert not labels.has_id_column


def test_labels_file_round_trip_joined_by_id(german, tmp_path: Path) -> None:
    frame = label_applications(german, "rules", progress=False)
    shuffled = frame.sample(frac=1.0, random_state=1)  # a different order: the id join must handle it
    path = write_labels(shuffled, tmp_path / "labels.csv")
    result = measure_labels(path, DATA / "german_credit_risk.csv")
    direct = agreement(frame["target"], german.frame["Risk"])
    assert "joined by id" in result.measured_against
    assert (result.accuracy, result.kappa, result.n) == (direct.accuracy, direct.kappa, direct.n)
    itself = measure_labels(path)  # its own Risk column
    assert itself.accuracy == direct.accuracy
    labels = read_labels(path)
    assert labels.provenance == "labels from rules/rubric-v1"
    assert labels.has_id_column


def test_bad_target_values_are_rejected_not_fatal(tmp_path: Path) -> None:
    table = pd.read_csv(DATA / "german_credit_data.csv", dtype=str, keep_default_na=False).head(4)
    table["target"] = ["good risk", "maybe", "", "Bad Risk"]
    table.to_csv(tmp_path / "l.csv", index=False)
    labels = read_labels(tmp_path / "l.csv")
    assert labels.target.tolist() == ["good risk", None, "bad risk"]
    assert [r.row for r in labels.applications.rejects] == [2]
    assert (
        labels.applications.rejects[0]
        .message(str(tmp_path / "l.csv"))
        .endswith("row 2, column 'target': 'maybe' is not one of: good risk, bad risk, or empty")
    )


def test_row_order_join_needs_equal_counts(tmp_path: Path, original_dir: Path) -> None:
    table = pd.read_csv(original_dir / "credit_data_with_targets.csv", dtype=str, keep_default_na=False)
    table.head(999).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(InputError, match="999 rows here but 1000 in .*joined by order"):
        measure_labels(tmp_path / "short.csv", DATA / "german_credit_risk.csv")


def test_truth_needs_risk(tmp_path: Path) -> None:
    from preauth.applications import read_applications

    plain = read_applications(DATA / "german_credit_data.csv")
    path = write_labels(label_applications(plain, "rules", progress=False), tmp_path / "labels.csv")
    with pytest.raises(InputError, match="no 'Risk' column"):
        measure_labels(path, DATA / "german_credit_data.csv")
    with pytest.raises(InputError, match="no 'Risk' column to measure against; name a file with --truth"):
        measure_labels(path)
    with pytest.raises(InputError, match="no 'target' column"):
        measure_labels(DATA / "german_credit_risk.csv", DATA / "german_credit_risk.csv")


def test_write_is_atomic(tmp_path: Path, german) -> None:
    frame = label_applications(german, "rules", progress=False)
    target = tmp_path / "out" / "labels.csv"
    write_labels(frame, target)
    assert (
        pd.read_csv(target, dtype=str, keep_default_na=False)["target"].tolist() == frame["target"].tolist()
    )
    assert [p.name for p in target.parent.iterdir()] == ["labels.csv"]

    class Broken(pd.DataFrame):
        def to_csv(self, *args, **kwargs):  # type: ignore[override]
            Path(args[0]).write_text("half")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_labels(Broken(frame), target)
    assert [p.name for p in target.parent.iterdir()] == ["labels.csv"]
    assert pd.read_csv(target, dtype=str, keep_default_na=False).shape[0] == len(frame)


def test_original_descriptions_are_classified_as_given(original_dir: Path, chat_server) -> None:
    from labels_support import first

    from preauth.providers import get_provider

    labels = read_labels(original_dir / "credit_data_with_targets.csv")
    apps = first(labels.applications, 3)
    provider = get_provider("openai:m", base_url=chat_server.url)
    frame = label_applications(apps, provider, descriptions=labels.description.head(3), progress=False)
    assert chat_server.count("describe") == 0 and chat_server.count("classify") == 3
    assert frame["description"].iloc[0].startswith("The customer is a 67-year-old male")
    # Requests run concurrently, so find the first applicant's among them rather than by position.
    sent = [r["messages"][-1]["content"] for r in chat_server.requests]
    assert any("Description: The customer is a 67-year-old male" in text for text in sent)
