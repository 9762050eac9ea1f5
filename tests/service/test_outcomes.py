"""Outcomes come back: over the API and from a file, on both stores, idempotent, never overwritten."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from service_helpers import application, today

from preauth.outcomes import decided_with_outcomes
from preauth.store import DecisionStore


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request, serve, tmp_path):
    if request.param == "sqlite":
        return serve(database_url=f"sqlite:///{tmp_path / 'outcomes.db'}")
    return serve(database_url=request.getfixturevalue("fresh_postgres_url"))


def test_an_outcome_is_recorded_once_and_never_overwritten(server):
    with server.client() as client:
        decision = client.post("/v1/decisions", json=application()).json()
        path = f"/v1/decisions/{decision['id']}/outcome"
        day = today()
        first = client.post(path, json={"outcome": "repaid", "known_at": day})
        again = client.post(path, json={"outcome": "Repaid", "known_at": f"{day}T00:00:00+00:00"})
        changed = client.post(path, json={"outcome": "defaulted", "known_at": day})
        redated = client.post(path, json={"outcome": "repaid", "known_at": f"{day}T00:00:01+00:00"})
        read = client.get(path)
        unknown = client.post("/v1/decisions/nope/outcome", json={"outcome": "repaid", "known_at": day})
        before = client.post(path, json={"outcome": "repaid", "known_at": "2020-01-01"})
        nothing = client.get("/v1/decisions/nope/outcome")
    assert first.status_code == 201, first.text
    assert first.json() == {
        "decision_id": decision["id"],
        "outcome": "repaid",
        "known_at": f"{day}T00:00:00+00:00",
    }
    assert again.status_code == 200 and again.json() == first.json()
    assert changed.status_code == 409 and "never overwritten" in changed.json()["error"]["message"]
    assert changed.json()["error"]["errors"][0]["field"] == "outcome"
    # the same outcome on another date: a conflict on the date, said so (it read "already has the
    # outcome 'repaid'" to a client sending repaid)
    assert redated.status_code == 409 and redated.json()["error"]["errors"][0]["field"] == "known_at"
    assert (
        f"outcome 'repaid' is already recorded as known {day}T00:00:00+00:00, not {day}T00:00:01+00:00"
        in redated.text
    )
    assert read.status_code == 200 and read.json() == first.json()
    assert unknown.status_code == 404 and nothing.status_code == 404
    # dated before the decision was made: a typo'd year, or another loan's outcome
    assert before.status_code == 422 and before.json()["error"]["errors"][0]["field"] == "known_at"
    assert f"known_at 2020-01-01 is before the decision was made ({day})" in before.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"outcome": "maybe", "known_at": "2026-10-01"}, "outcome"),
        ({"known_at": "2026-10-01"}, "outcome"),
        ({"outcome": "repaid", "known_at": "last week"}, "known_at"),
        ({"outcome": "repaid"}, "known_at"),
        (
            {"outcome": "repaid", "known_at": (datetime.now(UTC) + timedelta(days=2)).date().isoformat()},
            "known_at",
        ),
    ],
)
def test_a_bad_outcome_is_422_naming_the_field(serve, tmp_path, body, field):
    server = serve(database_url=f"sqlite:///{tmp_path / 'bad.db'}")
    with server.client() as client:
        decision = client.post("/v1/decisions", json=application()).json()
        answer = client.post(f"/v1/decisions/{decision['id']}/outcome", json=body)
        assert client.get(f"/v1/decisions/{decision['id']}/outcome").status_code == 404
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["errors"][0]["field"] == field


def test_outcomes_import_records_good_rows_and_rejects_the_rest(server, tmp_path):
    with server.client() as client:
        made = [client.post("/v1/decisions", json=application(Age=30 + i)).json()["id"] for i in range(4)]
        day = today()
        client.post(f"/v1/decisions/{made[3]}/outcome", json={"outcome": "repaid", "known_at": day})
    lines = [
        "decision_id,outcome,known_at",
        f"{made[0]},repaid,{day}",
        f"{made[1]},DEFAULTED,{day}",
        f"no-such-decision,repaid,{day}",
        f"{made[2]},maybe,{day}",
        f"{made[2]},repaid,yesterday",
        f"{made[3]},defaulted,{day}",
        f"{made[2]},repaid,2020-01-01",
    ]
    book = tmp_path / "book.csv"
    book.write_text("\n".join(lines) + "\n")
    rejects = tmp_path / "book.rejects.csv"
    command = [
        sys.executable,
        "-c",
        "from preauth.cli import main; main()",
        "outcomes",
        "import",
        str(book),
        "--database-url",
        server.settings.database_url,
        "--rejects",
        str(rejects),
    ]
    first = subprocess.run(command, capture_output=True, text=True, timeout=120)
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert first.returncode == 2, first.stderr
    assert "2 outcomes recorded, 0 already known, 5 rejected" in first.stdout
    assert f"{book}, row 3, column 'decision_id': no stored decision has this id" in first.stderr
    assert f"{book}, row 4, column 'outcome': 'maybe' is not one of: repaid, defaulted" in first.stderr
    assert f"{book}, row 5, column 'known_at'" in first.stderr
    assert f"{book}, row 6, column 'outcome': the decision already has the outcome 'repaid'" in first.stderr
    assert (
        f"{book}, row 7, column 'known_at': 2020-01-01 is before the decision was made ({day})"
        in first.stderr
    )
    assert "Traceback" not in first.stderr
    assert rejects.read_text().count("\n") == 6  # a header and five rows
    assert "0 outcomes recorded, 2 already known, 5 rejected" in again.stdout
    store = DecisionStore(server.settings.database_url)
    joined = {row["id"]: row["outcome"] for row in decided_with_outcomes(store)}
    store.close()
    assert joined == {made[0]: "repaid", made[1]: "defaulted", made[3]: "repaid"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("decision,when\nx,2026-10-01\n", "missing required column 'outcome'"),
        ("decision_id;outcome;known_at\n", "no outcomes (header only)"),  # was "0 recorded", exit 0
    ],
)
def test_outcomes_import_of_an_unusable_file_is_one_line(tmp_path, text, message):
    book = tmp_path / "book.csv"
    book.write_text(text)
    DecisionStore(f"sqlite:///{tmp_path / 'x.db'}").migrate()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from preauth.cli import main; main()",
            "outcomes",
            "import",
            str(book),
            "--database-url",
            f"sqlite:///{tmp_path / 'x.db'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == f"preauth: error: {book}: {message}"


def test_train_from_store_learns_the_outcomes_that_came_back(serve, tmp_path):
    """The lifecycle closes: decisions served, outcomes recorded, a model trained on them."""
    import json

    import pandas as pd

    from preauth.pipeline import bundled_data

    server = serve(database_url=f"sqlite:///{tmp_path / 'life.db'}")
    data = pd.read_csv(bundled_data("german_credit_risk.csv"), index_col=0).head(200)
    applications = [
        {k: (None if pd.isna(v) else v) for k, v in row.items() if k != "Risk"}
        for row in data.to_dict("records")
    ]
    with server.client() as client:
        made = client.post("/v1/decisions/batch", json=applications).json()["decisions"]
        assert len(made) == 200
        for decision, risk in zip(made, data["Risk"], strict=True):
            outcome = "defaulted" if risk == "bad" else "repaid"
            answer = client.post(
                f"/v1/decisions/{decision['id']}/outcome", json={"outcome": outcome, "known_at": today()}
            )
            assert answer.status_code == 201
    models = tmp_path / "models"
    command = [
        sys.executable,
        "-c",
        "from preauth.cli import main; main()",
        "--models-dir",
        str(models),
        "train",
    ]
    store = ["--database-url", server.settings.database_url]
    trained = subprocess.run(
        [*command, "--from-store", *store, "--trials", "3", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert trained.returncode == 0, trained.stderr
    meta = json.loads((models / "v1" / "bundle.json").read_text())
    assert meta["target"] == "risk"
    assert "real outcome (Risk)" in meta["metrics"]["measured_against"]
    labels = next((models / "from-store").glob("outcomes_*.csv"))
    written = pd.read_csv(labels)
    assert len(written) == 200 and (written["Risk"] == "bad").sum() == (data["Risk"] == "bad").sum()
    assert set(written["id"]) == {d["id"] for d in made}

    future = subprocess.run(
        [*command, "--from-store", *store, "--since", "2099-01-01"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    both = subprocess.run(
        [*command, "labels.csv", "--from-store", *store], capture_output=True, text=True, timeout=120
    )
    assert future.returncode == 2
    assert (
        future.stderr.strip()
        == "preauth: error: no stored decision since 2099-01-01T00:00:00 has an outcome yet (see `preauth outcomes import`)"
    )
    assert both.returncode == 2 and "one of the two" in both.stderr
