"""Human review of referred decisions through the real service, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from service_helpers import application

from preauth import bundles, referral
from preauth.errors import ConfigurationError
from preauth.service.app import create_app
from preauth.settings import Settings

KEYS = "alice:key-a,bob:key-b"
FAR = {"Age": 18, "Credit amount": 1_000_000}  # far outside training: referred


def _keyed(server, key: str) -> httpx.Client:
    return server.client(headers={"Authorization": f"Bearer {key}"})


def _server(serve, referring_models, database, request, **overrides):
    values = {"models_dir": referring_models, "api_keys": KEYS, **overrides}
    if database == "postgresql":
        values["database_url"] = request.getfixturevalue("fresh_postgres_url")
    return serve(**values)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_referred_decision_waits_then_one_person_decides_it(serve, referring_models, database, request):
    server = _server(serve, referring_models, database, request)
    with _keyed(server, "key-a") as alice, _keyed(server, "key-b") as bob:
        referred = [
            alice.post("/v1/decisions", json=application(**FAR, Duration=d)).json() for d in (6, 12, 24)
        ]
        clear = alice.post("/v1/decisions", json=application()).json()
        assert [d["decision"] for d in referred] == ["refer"] * 3 and clear["decision"] != "refer"

        # The queue: referred and unreviewed only, oldest first, paged by cursor.
        seen, cursor = [], None
        while True:
            params = {"state": "pending", "limit": 2, **({"cursor": cursor} if cursor else {})}
            page = alice.get("/v1/reviews", params=params).json()
            seen += [d["id"] for d in page["decisions"]]
            assert all(d["review"] is None and d["decision"] == "refer" for d in page["decisions"])
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == [d["id"] for d in referred]

        first = referred[0]["id"]
        made = alice.post(
            f"/v1/decisions/{first}/review", json={"decision": "approve", "reason": "  Phoned the bank.  "}
        )
        assert made.status_code == 201, made.text
        review = made.json()
        assert (
            review["reviewer"] == "alice"
            and review["decision"] == "approve"
            and review["reason"] == "Phoned the bank."
        )

        # Never overwritten: the second review is refused and names the first.
        again = bob.post(f"/v1/decisions/{first}/review", json={"decision": "decline", "reason": "too large"})
        assert again.status_code == 409 and "alice" in again.json()["error"]["message"]

        detail = bob.get(f"/v1/decisions/{first}").json()
        assert detail["decision"] == "refer" and detail["probability"] == referred[0]["probability"]
        assert detail["review"] == review and detail["outcome"] is None

        pending = [d["id"] for d in alice.get("/v1/reviews").json()["decisions"]]
        done = alice.get("/v1/reviews", params={"state": "done"}).json()["decisions"]
        assert pending == [d["id"] for d in referred[1:]]
        assert [(d["id"], d["review"]["reviewer"]) for d in done] == [(first, "alice")]

        # Refusals name what is wrong.
        def refused(path: str, body: object) -> tuple[int, str | None]:
            answer = alice.post(path, json=body)
            errors = answer.json()["error"].get("errors") or [{}]
            return answer.status_code, errors[0].get("field")

        second = f"/v1/decisions/{referred[1]['id']}/review"
        assert refused(second, {"decision": "maybe", "reason": "x"}) == (422, "decision")
        assert refused(second, {"decision": "approve"}) == (422, "reason")
        assert refused(second, {"decision": "approve", "reason": "   "}) == (422, "reason")
        assert refused(second, {"decision": "approve", "reason": "x" * 2001}) == (422, "reason")
        assert refused(second, {"decision": "approve", "reason": "ok", "reviewer": "carol"}) == (
            422,
            "reviewer",
        )
        assert refused(second, ["approve"])[0] == 422
        assert refused(f"/v1/decisions/{clear['id']}/review", {"decision": "approve", "reason": "ok"}) == (
            422,
            "decision_id",
        )
        assert (
            alice.post("/v1/decisions/nope/review", json={"decision": "approve", "reason": "ok"}).status_code
            == 404
        )
        assert alice.get("/v1/reviews", params={"state": "later"}).status_code == 422
        assert alice.get("/v1/reviews", params={"cursor": "garbage!"}).status_code == 422
        # Nothing of the refused reviews was stored.
        assert [d["id"] for d in alice.get("/v1/reviews").json()["decisions"]] == pending
    with server.client() as nobody:
        assert nobody.get("/v1/reviews").status_code == 401


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_two_reviewers_at_once_store_exactly_one_review(serve, referring_models, database, request):
    server = _server(serve, referring_models, database, request)
    with _keyed(server, "key-a") as client:
        decision_id = client.post("/v1/decisions", json=application(**FAR)).json()["id"]
    statuses: list[int] = []
    start = threading.Barrier(8)

    def review(n: int) -> None:
        with _keyed(server, "key-a" if n % 2 else "key-b") as client:
            start.wait()
            body = {"decision": "approve" if n % 2 else "decline", "reason": f"reviewer {n}"}
            statuses.append(client.post(f"/v1/decisions/{decision_id}/review", json=body).status_code)

    threads = [threading.Thread(target=review, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(statuses) == [201] + [409] * 7
    engine = sa.create_engine(server.settings.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT reviewer, reason FROM reviews")).all()
    finally:
        engine.dispose()
    assert len(rows) == 1
    with _keyed(server, "key-b") as client:
        stored = client.get(f"/v1/decisions/{decision_id}").json()["review"]
    assert (stored["reviewer"], stored["reason"]) == tuple(rows[0])


def test_an_open_api_names_the_reviewer_from_the_body_or_anonymous(serve, referring_models):
    with serve(models_dir=referring_models).client() as client:
        ids = [
            client.post("/v1/decisions", json=application(**FAR, Duration=d)).json()["id"] for d in (6, 12)
        ]
        named = client.post(
            f"/v1/decisions/{ids[0]}/review", json={"decision": "decline", "reason": "r", "reviewer": "Dana"}
        )
        unnamed = client.post(f"/v1/decisions/{ids[1]}/review", json={"decision": "approve", "reason": "r"})
    assert named.json()["reviewer"] == "Dana" and unnamed.json()["reviewer"] == "anonymous"


def test_a_probability_near_the_threshold_is_referred_with_a_reason(serve, referring_models):
    # PREAUTH_REVIEW_BAND overrides the bundle's band: 0.49 around 0.5 takes in almost every decision.
    with serve(models_dir=referring_models, review_band=0.49).client() as client:
        made = client.post("/v1/decisions", json=application()).json()
        kept = client.get(f"/v1/decisions/{made['id']}").json()
    assert abs(made["probability"] - made["threshold"]) <= 0.49
    assert made["decision"] == "refer" and kept["decision"] == "refer"
    band = [r for r in made["reasons"] if r["feature"] == "probability"]
    assert len(band) == 1 and band[0]["direction"] == "refer"
    assert "within 0.49 of the threshold 0.500" in band[0]["text"]
    assert made["is_fraud"] == (made["probability"] >= made["threshold"])  # the model's verdict is kept


def test_the_band_is_carried_by_the_bundle_and_zero_for_older_ones(referring_models: Path):
    bundle = bundles.load_bundle(referring_models, "v1")
    assert referral.review_band(bundle) == 0.0 and referral.band_reasons(bundle, bundle.threshold) == []
    banded = referral.with_review_band(bundle, 0.05)
    assert referral.review_band(banded) == 0.05 and referral.review_band(bundle) == 0.0
    assert referral.band_reasons(banded, bundle.threshold + 0.049)
    assert referral.band_reasons(banded, bundle.threshold - 0.049)[0]["seen"] == [0.45, 0.55]
    assert not referral.band_reasons(banded, bundle.threshold + 0.051)
    assert referral.with_review_band(bundle, None) is bundle


def _serve_refused(models: Path, work: Path, api_keys: str) -> list[str]:
    """`preauth serve` with these keys, which must refuse to start (exit 2): the lines it said."""
    result = subprocess.run(
        [sys.executable, "-m", "preauth", "--models-dir", str(models), "serve", "--port", "1"],
        env={"PREAUTH_API_KEYS": api_keys, "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=work,
    )
    assert result.returncode == 2, result.stderr
    return result.stderr.strip().splitlines()


def test_duplicate_key_names_or_values_are_refused_at_start(referring_models: Path, tmp_path: Path):
    for keys in ("alice:k1,alice:k2", "alice:k1,bob:k1", "k1,key-1:k2"):
        with pytest.raises(ConfigurationError, match="already used by an earlier entry"):
            create_app(
                Settings(
                    models_dir=referring_models, api_keys=keys, database_url=f"sqlite:///{tmp_path}/d.db"
                )
            )
    with pytest.raises(ConfigurationError, match="entry 2: what comes before its first ':' is not a name"):
        Settings(api_keys="k0," + "x" * 65 + ":k1").named_api_keys()
    with pytest.raises(ConfigurationError, match="entry 1: what comes before its first ':' is not a name"):
        Settings(api_keys=":k1").named_api_keys()
    with pytest.raises(ConfigurationError, match="entry 1: the key after 'alice:' is empty"):
        Settings(api_keys="alice: ").named_api_keys()
    assert Settings(api_keys="k1, bob:k2:with:colons").named_api_keys() == [
        ("key-1", "k1"),
        ("bob", "k2:with:colons"),
    ]
    assert _serve_refused(referring_models, tmp_path, "alice:k1,alice:k2") == [
        "preauth: error: PREAUTH_API_KEYS entry 2: the name 'alice' is already used by an earlier entry; "
        "every key needs its own name and its own value"
    ]


def test_a_bare_key_holding_a_colon_is_refused_at_start_not_read_as_a_name(
    referring_models: Path, tmp_path: Path
):
    """``Zq9$k:Lm2`` is not someone called ``Zq9$k`` with the key ``Lm2``: what comes before the
    first ':' must be a name, else `serve` stops with one line saying how to write the entry, and
    no part of the key in it."""
    for keys in ("alice:k1,Zq9$k:Lm2", "alice:k1,2fa:x", "alice:k1,Dana Smith:k2", "alice:k1,:k2"):
        with pytest.raises(
            ConfigurationError, match="entry 2: what comes before its first ':' is not a name"
        ):
            Settings(api_keys=keys).named_api_keys()
    assert Settings(api_keys="ci:Zq9$k:Lm2, dana.smith@bank-1:k2, k3").named_api_keys() == [
        ("ci", "Zq9$k:Lm2"),
        ("dana.smith@bank-1", "k2"),
        ("key-3", "k3"),
    ]
    assert _serve_refused(referring_models, tmp_path, "Zq9$k:Lm2") == [
        "preauth: error: PREAUTH_API_KEYS entry 1: what comes before its first ':' is not a name (a letter, "
        "then up to 63 letters, digits, '.', '_', '-' or '@'); write each entry as name:key, and a key "
        "holding ':' with a name (ci:key:with:colons)"
    ]


def test_the_model_card_says_which_band_decides(serve, referring_models: Path, tmp_path: Path):
    """``/v1/model`` and the page's ``/ui/model`` name the band in use, the bundle's own, and which
    of the two decides; the OpenAPI document describes it."""
    older = {"band": 0.0, "trained": None, "source": "bundle"}  # a bundle from before review bands
    with serve(models_dir=referring_models).client() as client:
        assert client.get("/v1/model").json()["review_band"] == older
        assert client.get("/ui/model").json()["review_band"] == older
        spec = client.get("/openapi.json").json()
    card = spec["components"]["schemas"]["ModelCard"]
    assert "review_band" in card["required"]
    assert card["properties"]["review_band"] == {"$ref": "#/components/schemas/ReviewBand"}
    assert spec["components"]["schemas"]["ReviewBand"]["properties"]["source"]["enum"] == [
        "bundle",
        "PREAUTH_REVIEW_BAND",
    ]

    banded = tmp_path / "banded"
    shutil.copytree(referring_models, banded)
    meta_file = banded / "v1" / "bundle.json"
    meta_file.write_text(json.dumps({**json.loads(meta_file.read_text()), "review_band": 0.05}))
    with serve(models_dir=banded).client() as client:
        assert client.get("/v1/model").json()["review_band"] == {
            "band": 0.05,
            "trained": 0.05,
            "source": "bundle",
        }
    overridden = {"band": 0.2, "trained": 0.05, "source": "PREAUTH_REVIEW_BAND"}
    with serve(models_dir=banded, review_band=0.2).client() as client:
        assert client.get("/v1/model").json()["review_band"] == overridden
        assert client.get("/ui/model").json()["review_band"] == overridden
