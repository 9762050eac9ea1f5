"""Monitoring: PSI by hand, `preauth monitor` on a store whose inputs shift, GET /v1/monitoring on
SQLite and PostgreSQL through the real service, and the gauges at /metrics.

The store is filled through a real server: the bundled applications as they are, then the same
applications with the credit amount doubled. Before the shift nothing is flagged; after it the
amount (and the referrals it causes) is flagged ``act``.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from service_helpers import running, today

from preauth import applications, bundles, drift, features
from preauth.cli import cli
from preauth.pipeline import bundled_data
from preauth.settings import Settings
from preauth.store import DecisionStore

AMOUNT = "Credit amount"
DATA = bundled_data("german_credit_risk.csv")


# -- the library ---------------------------------------------------------------------------


def test_psi_matches_a_hand_computed_case() -> None:
    # (0.25 - 0.5)·ln(0.25/0.5) + (0.75 - 0.5)·ln(0.75/0.5) = 0.25·ln 2 + 0.25·ln 1.5
    assert drift.psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.25 * math.log(2) + 0.25 * math.log(1.5))
    assert drift.psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0
    # an empty bin counts as EPSILON (then both sides are renormalised): finite, not infinite
    e = np.array([1.0, drift.EPSILON]) / (1 + drift.EPSILON)
    a = np.array([0.5, 0.5])
    assert drift.psi([1.0, 0.0], [0.5, 0.5]) == pytest.approx(float(np.sum((a - e) * np.log(a / e))))
    assert [drift.flag(v) for v in (0.05, 0.1, 0.2, 0.25, 3.0)] == ["ok", "watch", "watch", "act", "act"]


def test_numeric_bins_are_right_closed_with_a_missing_bin() -> None:
    reference = drift.numeric_bins([1, 1, 2, 2, 3, 3, 4, 4, None, None])
    assert reference["edges"] == [1.0, 2.0, 3.0, 4.0]
    assert reference["shares"] == pytest.approx([0.2, 0.2, 0.2, 0.2, 0.0, 0.2])
    live = drift.live_shares(reference, [1, 5, 5, None])
    assert live.tolist() == pytest.approx([0.25, 0, 0, 0, 0.5, 0.25])
    levels = drift.category_bins(["own", "rent", "own", None])
    assert levels == {"levels": ["(missing)", "own", "rent"], "shares": [0.25, 0.5, 0.25]}
    assert drift.live_shares(levels, ["own", "free"]).tolist() == [0, 0.5, 0, 0.5]  # free: (other)


# -- a store filled through the real service -------------------------------------------------


def _reference_bundle(referring_models: Path, root: Path) -> Path:
    """A copy of the real small bundle that refers, plus the training reference `preauth train` writes."""
    shutil.copytree(referring_models, root)
    path = root / "v1"
    apps = applications.read_applications(DATA)
    columns = applications.feature_columns()
    bundle = bundles.load_bundle(root, "v1")
    scores = bundle.predict_proba(features.encode(apps.frame, columns))
    meta = json.loads((path / bundles.META_FILE).read_text())
    meta[drift.REFERENCE_KEY] = drift.training_reference(
        apps.frame, columns, applications.GERMAN, scores, source="test"
    )
    (path / bundles.META_FILE).write_text(json.dumps(meta))
    return path


@contextmanager
def _server(settings: Settings) -> Iterator[str]:
    from preauth.service.app import create_app

    with running(create_app(settings)) as url:
        yield url


def _records(rows: int | None = None, *, amount_factor: float = 1.0) -> list[dict[str, Any]]:
    frame = pd.read_csv(DATA, index_col=0).head(rows)
    frame[AMOUNT] = (frame[AMOUNT] * amount_factor).round()
    frame = frame.astype(object).where(frame.notna(), None)
    return [{k: v for k, v in r.items() if k != "Risk"} for r in frame.to_dict("records")]


def _fill(url: str, rows: int | None) -> str:
    """Unshifted applications, then the moment of the shift, then shifted ones; returns that moment."""
    with httpx.Client(base_url=url, timeout=60) as client:
        assert client.post("/v1/decisions/batch", json=_records(rows)).status_code == 200
        time.sleep(0.01)
        shift = datetime.now(UTC).isoformat()
        time.sleep(0.01)
        assert client.post("/v1/decisions/batch", json=_records(rows, amount_factor=2.0)).status_code == 200
    return shift


@pytest.fixture(scope="module")
def filled(
    tmp_path_factory: pytest.TempPathFactory, referring_models: Path
) -> Iterator[tuple[str, Settings, str]]:
    """A server on SQLite whose store holds 1,000 unshifted then 1,000 shifted decisions."""
    work = tmp_path_factory.mktemp("monitoring")
    _reference_bundle(referring_models, work / "models")
    settings = Settings(
        models_dir=work / "models",
        database_url=f"sqlite:///{work / 'decisions.db'}",
        sagemaker_model_dir=None,
        monitor_interval_seconds=0.3,
    )
    with _server(settings) as url:
        yield url, settings, _fill(url, None)


def _cli(settings: Settings, *args: str) -> Any:
    """`preauth monitor` through the real command line (in this process: click's runner)."""
    arguments = ["--models-dir", str(settings.models_dir), "monitor", "--database-url", settings.database_url]
    return CliRunner().invoke(cli, [*arguments, *args])


def _by_feature(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["feature"]: item for item in report["inputs"]}


def test_monitor_flags_the_shifted_amount_and_not_the_unshifted(filled: tuple[str, Settings, str]) -> None:
    _, settings, shift = filled
    before = _cli(settings, "--until", shift, "--format", "json", "--fail-on", "watch")
    assert before.exit_code == 0, before.stderr
    report = json.loads(before.stdout)
    assert report["decisions"] == 1000
    assert report["worst"] == "ok"
    assert all(item["psi"] < drift.WATCH for item in report["inputs"])
    assert report["refer_rate"] == 0.0

    after = _cli(settings, "--since", shift, "--format", "json", "--fail-on", "act")
    assert after.exit_code == 1, after.stderr  # --fail-on act: a PSI at 0.25 or more
    report = json.loads(after.stdout)
    amounts = _by_feature(report)[AMOUNT]
    assert amounts["flag"] == "act" and amounts["psi"] >= drift.ACT
    assert _by_feature(report)["Age"]["flag"] == "ok"  # only the amount moved
    assert report["refer_rate"] > 0  # doubled amounts beyond the training range are referred
    assert report["periods"][0]["decisions"] == 1000

    table = _cli(settings, "--since", shift)
    assert table.exit_code == 0, table.stderr
    assert re.search(r"Credit amount\s+│\s+[0-9.]+\s+│\s+act", table.stdout), table.stdout


def test_monitor_on_an_empty_store_says_so(tmp_path: Path, filled: tuple[str, Settings, str]) -> None:
    _, settings, _ = filled
    empty = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'empty.db'}"})
    DecisionStore(empty.database_url).migrate()  # a store the service made, holding nothing yet
    done = _cli(empty)
    assert done.exit_code == 0, done.stderr
    assert "no decisions by model v1 in this window" in done.stdout
    assert "Traceback" not in done.stderr
    bad = _cli(empty, "--since", "last tuesday")
    assert bad.exit_code == 2 and "'last tuesday' is not an ISO 8601" in bad.stderr
    swapped = _cli(empty, "--since", "2026-12-06", "--until", "2026-12-01")
    assert swapped.exit_code == 2 and "is not after --since (2026-12-06T00:00:00+00:00)" in swapped.stderr


def test_api_answers_the_cli_numbers_and_live_quality_once_outcomes_exist(
    filled: tuple[str, Settings, str], tmp_path: Path
) -> None:
    url, settings, shift = filled
    with httpx.Client(base_url=url, timeout=60) as client:
        answer = client.get("/v1/monitoring", params={"since": shift})
        assert answer.status_code == 200
        from_cli = json.loads(_cli(settings, "--since", shift, "--format", "json").stdout)
        assert answer.json()["inputs"] == from_cli["inputs"]
        assert answer.json()["live"] is None

        # outcomes of the unshifted decisions: the real Risk of each applicant
        risk = pd.read_csv(DATA, index_col=0)["Risk"].tolist()
        ids: list[str] = []
        cursor = None
        while True:
            page = client.get(
                "/v1/decisions",
                params={"until": shift, "limit": 500, **({"cursor": cursor} if cursor else {})},
            ).json()
            ids += [d["id"] for d in page["decisions"]]
            if not (cursor := page["next_cursor"]):
                break
        ids.reverse()  # oldest first: the order the rows were sent in
        outcomes = pd.DataFrame(
            {
                "decision_id": ids,
                "outcome": ["defaulted" if r == "bad" else "repaid" for r in risk],
                "known_at": today(),
            }
        )
        outcomes.to_csv(tmp_path / "outcomes.csv", index=False)
        done = CliRunner().invoke(
            cli,
            ["outcomes", "import", str(tmp_path / "outcomes.csv"), "--database-url", settings.database_url],
        )
        assert done.exit_code == 0, done.output
        live = client.get("/v1/monitoring", params={"until": shift}).json()["live"]
    assert live["outcomes"] == 1000 and live["defaulted"] == 300
    low, high = live["auc_interval"]
    assert 0.7 < low <= live["auc"] <= high < 1.0  # the model was fit on these very outcomes
    assert live["calibration"]["observed_default_rate"] == pytest.approx(0.3)
    # 1,000 outcomes: a perfectly calibrated model would show an ECE of a few points by chance
    assert 0.01 < live["calibration"]["ece_chance"] < live["calibration"]["ece_chance_upper"] < 0.08
    table = _cli(settings, "--until", shift).stdout
    assert f"{live['calibration']['ece_chance_upper']:.3f}" in table and "ECE by chance alone" in table
    bands = live["bands"]
    assert sum(b["decisions"] for b in bands) == 1000
    # the riskier the band, the more defaults (lowest band vs highest band with outcomes)
    assert bands[0]["default_rate"] < bands[-1]["default_rate"]


def test_api_refuses_bad_parameters_naming_them(filled: tuple[str, Settings, str]) -> None:
    url, _, _ = filled
    with httpx.Client(base_url=url, timeout=30) as client:
        for params, field in (
            ({"since": "1700000000"}, "since"),
            ({"model": "v9"}, "model"),
            ({"model": "../x"}, "model"),
        ):
            answer = client.get("/v1/monitoring", params=params)
            assert answer.status_code == 422, params
            assert answer.json()["error"]["errors"][0]["field"] == field


def test_metrics_carry_the_gauges_after_a_refresh(filled: tuple[str, Settings, str]) -> None:
    url, _, _ = filled
    with httpx.Client(base_url=url, timeout=30) as client:
        report = client.get("/v1/monitoring").json()
        expected = _by_feature(report)[AMOUNT]["psi"]
        deadline = time.monotonic() + 10
        while True:
            text = client.get("/metrics").text
            found = re.search(r'^preauth_psi\{feature="Credit amount"\} (\S+)$', text, re.M)
            if found and float(found.group(1)) == pytest.approx(expected, rel=1e-6):
                break
            assert time.monotonic() < deadline, text[-2000:]
            time.sleep(0.2)
    gauges = ("preauth_score_psi", "preauth_approve_rate", "preauth_refer_rate", "preauth_live_auc")
    for gauge in (*gauges, "preauth_live_ece_chance_upper"):
        assert re.search(rf"^{gauge} \S+$", text, re.M), gauge


def test_api_on_postgresql(fresh_postgres_url: str, tmp_path: Path, referring_models: Path) -> None:
    _reference_bundle(referring_models, tmp_path / "models")
    settings = Settings(
        models_dir=tmp_path / "models", database_url=fresh_postgres_url, sagemaker_model_dir=None
    )
    with _server(settings) as url:
        shift = _fill(url, 400)
        with httpx.Client(base_url=url, timeout=30) as client:
            before = client.get("/v1/monitoring", params={"until": shift, "every": "week"}).json()
            after = client.get("/v1/monitoring", params={"since": shift}).json()
    assert before["decisions"] == after["decisions"] == 400
    assert _by_feature(before)[AMOUNT]["flag"] == "ok"
    assert _by_feature(after)[AMOUNT]["flag"] == "act"
    assert before["periods"][0]["start"].endswith("T00:00:00+00:00")
