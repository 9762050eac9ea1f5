"""Training keeps a monitoring reference in bundle.json: plain numbers that describe the rows the
shipped model was fit on and its out-of-sample scores; an older bundle falls back to its holdout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from preauth import drift
from preauth.applications import GERMAN
from preauth.bundles import META_FILE
from preauth.training import load_labels


def test_the_bundle_carries_a_reference_of_every_input_and_of_the_score(
    bundle_run, labels_file: Path
) -> None:
    meta = json.loads((bundle_run.bundle_path / META_FILE).read_text())
    reference = meta[drift.REFERENCE_KEY]
    assert set(reference["inputs"]) == set(meta["features"])
    frame = load_labels(labels_file).frame  # the refit model learnt from every labelled row
    assert reference["rows"] == len(frame)

    amount = reference["inputs"]["Credit amount"]
    assert len(amount["shares"]) == len(amount["edges"]) + 2  # bins, then missing
    assert sum(amount["shares"]) == pytest.approx(1.0)
    # the decile edges split the amounts the model saw into tenths
    assert drift.live_shares(amount, frame["Credit amount"].tolist()).tolist() == pytest.approx(
        amount["shares"]
    )
    assert (
        drift.psi(drift.reference_shares(amount), drift.live_shares(amount, frame["Credit amount"].tolist()))
        == 0
    )

    checking = reference["inputs"]["Checking account"]
    assert "unknown" in checking["levels"]  # a missing balance is the level serving reads it as
    assert sum(checking["shares"]) == pytest.approx(1.0)

    score = reference["score"]
    assert reference["score_rows"] == len(frame)  # out-of-fold on the training part + the holdout
    assert all(0 < e < 1 for e in score["edges"]) and sum(score["shares"]) == pytest.approx(1.0)


def test_a_bundle_without_a_reference_falls_back_to_its_holdout_or_says_none(
    bundle_run, tmp_path: Path
) -> None:
    meta = json.loads((bundle_run.bundle_path / META_FILE).read_text())
    older = {k: v for k, v in meta.items() if k != drift.REFERENCE_KEY}
    fallback = drift.reference_for(bundle_run.bundle_path, older, GERMAN)
    assert fallback is not None and "holdout rows" in fallback["source"]
    assert fallback["rows"] == meta["metrics"]["holdout"]["n"]
    assert set(fallback["inputs"]) == set(meta["features"])
    assert drift.reference_for(tmp_path, older, GERMAN) is None  # no holdout.parquet either
    assert np.isclose(sum(fallback["score"]["shares"]), 1.0)
