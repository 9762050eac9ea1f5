"""A refresh through a :class:`WindowCache` reads only what is new and gives the full read's report.

Random interleavings of stored decisions (at any time of the window, ties included, another
model's too), outcomes recorded late and out of order (within the grace), refreshes of a window
that slides, grows back and changes its grouping: after every refresh the cached report must be
the one a fresh ``monitor`` reads in full, and the plain computation's (every row through
SQLAlchemy, in the order of decision time then ``seq``), on SQLite and on PostgreSQL (where a transaction that
commits after a later one is also tried). How much a refresh read is counted from the rows the
driver returned.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from test_monitoring import AMOUNT, _records, _reference_bundle, _server
from test_monitoring_reference import DATA, _bundle_with_reference, _odd, _plain_monitor

from preauth.decisions import APPROVE, BAD_RISK, DECLINE, GOOD_RISK, REFER
from preauth.monitoring import monitor
from preauth.monitoring_window import GRACE, WindowCache
from preauth.outcomes import outcomes
from preauth.settings import Settings
from preauth.store import DecisionStore, decisions

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
"""Where the test's own clock starts: decisions are stamped by it, not by the machine's."""


class Clock:
    """A monotonic clock the test moves: when a cache trusts a mark."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, referring_models: Path) -> Path:
    return _bundle_with_reference(referring_models, tmp_path_factory.mktemp("window") / "models")


class Store:
    """Writes decisions and outcomes the way the store holds them, numbered as they go."""

    def __init__(self, url: str, seed: int) -> None:
        self.store = DecisionStore(url)
        self.store.migrate()
        self.rng = np.random.default_rng(seed)
        frame = pd.read_csv(DATA, index_col=0).drop(columns=["Risk"])
        self.records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        self.made = 0
        self.ids: list[str] = []

    def rows(self, n: int, now: datetime, *, version: str = "v1") -> list[dict[str, Any]]:
        made = []
        for _ in range(n):
            i = self.made
            self.made += 1
            p = float(np.round(self.rng.beta(2, 5), 2))
            bad = p >= 0.5
            # any time in the last nine days (the window is five), or exactly the previous one's
            back = timedelta(seconds=float(self.rng.uniform(0, 9 * 86_400)))
            moment = made[-1]["created_at"] if made and i % 11 == 0 else now - back
            ident = str(uuid.UUID(int=i + 1))
            if version == "v1":
                self.ids.append(ident)
            made.append(
                {
                    "id": ident,
                    "request_id": f"r{i}",
                    "created_at": moment,
                    "channel": "api",
                    "model_version": version,
                    "input": _odd(i, dict(self.records[i % len(self.records)])),
                    "probability": p,
                    "target": BAD_RISK if bad else GOOD_RISK,
                    "is_fraud": bad,
                    "confidence": max(p, 1 - p),
                    "threshold": 0.5,
                    "reasons": [],
                    "contributions": None,
                    "decision": None if i % 9 == 0 else REFER if i % 10 == 0 else DECLINE if bad else APPROVE,
                }
            )
        return made

    def decide(self, n: int, now: datetime, *, version: str = "v1") -> None:
        with self.store.engine.begin() as connection:
            connection.execute(sa.insert(decisions), self.rows(n, now, version=version))

    def outcomes(self, n: int, now: datetime) -> None:
        """Outcomes of decisions without one, recorded up to 90 s before ``now``: out of order, but
        within the grace of whatever a read saw before ``now``."""
        with self.store.engine.begin() as connection:
            known = set(connection.execute(sa.select(outcomes.c.decision_id)).scalars())
            free = [i for i in self.ids if i not in known]
            chosen = self.rng.choice(len(free), size=min(n, len(free)), replace=False) if free else []
            rows = [
                {
                    "decision_id": free[k],
                    "outcome": "defaulted" if self.rng.random() < 0.3 else "repaid",
                    "known_at": now,
                    "recorded_at": now - timedelta(seconds=float(self.rng.uniform(0, 90))),
                    "source": "t",
                }
                for k in chosen
            ]
            if rows:
                connection.execute(sa.insert(outcomes), rows)


def _interleave(url: str, bundle_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    store = Store(url, seed)
    clock = Clock()
    cache = WindowCache(clock=clock)
    now = NOW
    store.decide(150, now)
    store.decide(20, now, version="v9")  # another model's decisions are never counted
    refreshes = reads = 0
    for _ in range(40):
        step = rng.integers(0, 7)
        # seconds (outcomes then arrive out of order across refreshes) or up to an hour and a half
        now += timedelta(seconds=float(rng.uniform(0, 60) if rng.random() < 0.7 else rng.uniform(0, 5400)))
        clock.seconds += float(rng.uniform(0, 2 * GRACE.total_seconds()))
        if step == 0:
            store.decide(int(rng.integers(1, 40)), now)
        elif step == 1:
            store.decide(int(rng.integers(1, 5)), now, version="v9")
        elif step in (2, 3):
            store.outcomes(int(rng.integers(1, 30)), now)
        else:
            window: dict[str, Any] = {"since": now - timedelta(days=5)}
            if step == 5:
                window["every"] = "week"
            if rng.random() < 0.1:  # a longer window: the cache reads it again
                window["since"] = now - timedelta(days=8)
            found = monitor(store.store, bundle_path, cache=cache, **window)
            assert found == monitor(store.store, bundle_path, **window), (seed, window)
            assert found == _plain_monitor(store.store, bundle_path, **window), (seed, window)
            refreshes += 1
            reads += cache.rows_read
    assert refreshes >= 5 and reads < refreshes * store.made  # it did not read everything each time
    store.store.close()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_refreshes_equal_full_reads_on_sqlite(tmp_path: Path, bundle: Path, seed: int) -> None:
    _interleave(f"sqlite:///{tmp_path / 'decisions.db'}", bundle, seed)


@pytest.mark.parametrize("seed", [3, 4])
def test_refreshes_equal_full_reads_on_postgresql(fresh_postgres_url: str, bundle: Path, seed: int) -> None:
    _interleave(fresh_postgres_url, bundle, seed)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'decisions.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'decisions.db'}"
    else:
        yield request.getfixturevalue("fresh_postgres_url")


def test_a_refresh_reads_only_the_new_decisions(
    any_url: str, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from preauth import monitoring_window

    draws: list[int] = []
    drawn = monitoring_window.auc_interval

    def counted(y: Any, p: Any, **options: Any) -> Any:
        draws.append(len(y))
        return drawn(y, p, **options)

    monkeypatch.setattr(monitoring_window, "auc_interval", counted)
    store = Store(any_url, 7)
    store.decide(1000, NOW)
    for hours in range(10, 0, -1):  # recorded an hour apart: a refresh reads again the last hour's
        store.outcomes(30, NOW - timedelta(hours=hours))
    clock = Clock()
    cache = WindowCache(clock=clock)
    since = NOW - timedelta(days=5)
    first = monitor(store.store, bundle, since=since, cache=cache)
    assert cache.rows_read == first["decisions"] > 400
    assert cache.outcomes_read == first["live"]["outcomes"] > 50
    postgres = store.store.engine.dialect.name == "postgresql"
    if postgres:  # its marks are trusted once the grace has passed: until then only checked
        assert monitor(store.store, bundle, since=since, cache=cache) == first
        assert cache.rows_read == 0
        clock.seconds += GRACE.total_seconds()
        assert monitor(store.store, bundle, since=since, cache=cache) == first
        assert cache.rows_read == 0
    clock.seconds += 60
    # Nothing new: the same report, and the bootstrap (most of such a refresh) not drawn again.
    assert monitor(store.store, bundle, since=since, cache=cache) == first
    assert cache.rows_read == 0 and len(draws) == 1
    later = NOW + timedelta(minutes=3)
    store.decide(25, later)
    store.outcomes(10, NOW - timedelta(hours=1))  # some stamped before the newest the cache saw
    since += timedelta(minutes=3)
    found = monitor(store.store, bundle, since=since, cache=cache)
    assert found == monitor(store.store, bundle, since=since)
    new = found["decisions"] - first["decisions"]  # the window also lost the decisions before since
    assert cache.rows_read <= 25 and cache.rows_read >= new
    assert cache.outcomes_read < 50  # those of the last GRACE, not all of them
    # New outcomes: drawn again, by the refresh and by the full read beside it (a cache of its own).
    assert draws[1:] == [found["live"]["outcomes"]] * 2
    store.store.close()


def test_a_decision_committed_after_a_later_one_is_counted_on_postgresql(
    fresh_postgres_url: str, bundle: Path
) -> None:
    store = Store(fresh_postgres_url, 9)
    store.decide(200, NOW)
    clock = Clock()
    cache = WindowCache(clock=clock)
    monitor(store.store, bundle, cache=cache)
    clock.seconds += GRACE.total_seconds() + 1
    monitor(store.store, bundle, cache=cache)  # trusts the first read's mark
    late = store.store.engine.connect()
    late.execute(sa.insert(decisions), store.rows(3, NOW))  # takes its seq first, commits last
    store.decide(4, NOW)
    clock.seconds += 60
    assert monitor(store.store, bundle, cache=cache) == monitor(store.store, bundle)
    assert cache.rows_read == 4
    late.commit()
    late.close()
    store.outcomes(207, NOW)  # every decision's: found by seq among the tail's, late ones included
    clock.seconds += 30  # within the grace of the read that saw the later seqs
    found = monitor(store.store, bundle, cache=cache)
    assert found == monitor(store.store, bundle) and found["decisions"] == 207
    assert cache.rows_read == 3  # the late three, found among the seqs above the trusted mark
    store.store.close()


def _gauge(text: str, name: str) -> float | None:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(found.group(1)) if found else None


def test_the_service_gauges_follow_new_decisions(tmp_path: Path, referring_models: Path) -> None:
    """The service's refresher keeps its cache between refreshes: its gauges still end on the
    numbers of a full read (the API's report) after more decisions arrive."""
    _reference_bundle(referring_models, tmp_path / "models")
    settings = Settings(
        models_dir=tmp_path / "models",
        database_url=f"sqlite:///{tmp_path / 'decisions.db'}",
        sagemaker_model_dir=None,
        monitor_interval_seconds=0.2,
    )
    with _server(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        for batch in (_records(300), _records(150, amount_factor=2.0)):
            assert client.post("/v1/decisions/batch", json=batch).status_code == 200
            report = client.get("/v1/monitoring").json()
            amount = next(item["psi"] for item in report["inputs"] if item["feature"] == AMOUNT)
            deadline = time.monotonic() + 10
            while True:
                text = client.get("/metrics").text
                count = _gauge(text, "preauth_monitored_decisions")
                psi = _gauge(text, f'preauth_psi{{feature="{AMOUNT}"}}')
                if count == report["decisions"] and psi == pytest.approx(amount, rel=1e-9):
                    break
                assert time.monotonic() < deadline, (count, psi, report["decisions"], amount)
                time.sleep(0.1)
    assert report["decisions"] == 450
