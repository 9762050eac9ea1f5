"""What one monitoring refresh costs: ``preauth.monitoring.monitor`` over a store of N decisions.

The service recomputes the report every ``monitor_interval_seconds`` in a thread of the serving
process (the same function as ``preauth monitor`` and ``GET /v1/monitoring``): its time is time the
request handlers wait for the GIL. This bench trains a small model on the bundled data (with the
training reference ``preauth train`` writes), fills a store with N generated decisions of it over
the last 7 days (the bundled applications resampled, the credit amount drifting over the week,
one in twenty sent under alias column names, one in five with an outcome drawn from the score),
inserted in bulk with the store's own tables, then times in a fresh process each:

* ``monitor(store, bundle, since=now - 7 days)``: seconds and peak resident memory (the growth
  over the process before the call, and the total);
* the floor: the bare driver fetching the columns monitoring reads (the same join, filter and
  order; the input as JSON text), nothing made of them.

* the service's repeated refresh (``monitor(..., cache=WindowCache())``, in one process): a
  first refresh, one a few minutes later (the first read's marks are then trusted), then
  ``--new-share`` more decisions (1% by default, made in the last minutes, one in five with an
  outcome) and the refresh timed against a full ``monitor`` of the same window: seconds, the
  ratio, what the refresh read, and whether both reports are equal.

Prints the seconds, the ratio to the floor and memory per N. ``--compare-src DIR`` also runs
``monitor`` from another source tree (e.g. ``git archive <commit> src | tar -x -C /tmp/before``)
on the same store, prints its figures, and checks both reports are equal.

    .venv/bin/python bench/monitor_refresh.py [--rows 20000 200000] [--database-url URL]
        [--compare-src /tmp/before/src] [--new-share 0.01]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WINDOW_DAYS = 7
OUTCOME_EVERY = 5
ALIAS_EVERY = 20
ALIASES = {"Credit amount": "credit_amount", "Saving accounts": "savings_account", "Age": "age"}

PEAK = """
def rss_kb(key):  # VmRSS now, VmHWM the peak since the last reset
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
"""
"""Prepended to each measured program: its resident memory from /proc."""

MONITOR = """
import json, sys, time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from preauth.monitoring import monitor
from preauth.store import DecisionStore
store = DecisionStore(sys.argv[1])
since = datetime.fromisoformat(sys.argv[3])
open("/proc/self/clear_refs", "w").write("5")  # resets VmHWM: the peak of what follows alone
before = rss_kb("VmRSS")
started = time.perf_counter()
report = monitor(store, Path(sys.argv[2]), since=since)
elapsed = time.perf_counter() - started
peak = rss_kb("VmHWM")
Path(sys.argv[4]).write_text(json.dumps(report, sort_keys=True))
print(json.dumps({"seconds": elapsed, "before_kb": before, "peak_kb": peak, "decisions": report["decisions"]}))
"""

FLOOR = """
import json, sys, time
from datetime import datetime
from preauth.store import DecisionStore
store = DecisionStore(sys.argv[1])
since = datetime.fromisoformat(sys.argv[3])
postgres = store.engine.dialect.name == "postgresql"
mark = "%s" if postgres else "?"
sql = (
    "SELECT d.created_at, " + ("d.input::text" if postgres else "d.input") + ", d.probability, d.decision, "
    "d.target, o.outcome FROM decisions d LEFT JOIN outcomes o ON o.decision_id = d.id "
    f"WHERE d.model_version = {mark} AND d.created_at >= {mark} ORDER BY d.created_at"
)
bound = since if postgres else since.strftime("%Y-%m-%d %H:%M:%S.%f")
open("/proc/self/clear_refs", "w").write("5")  # resets VmHWM: the peak of what follows alone
before = rss_kb("VmRSS")
started = time.perf_counter()
raw = store.engine.raw_connection()
cursor = raw.cursor()
cursor.execute(sql, (sys.argv[2], bound))
rows = cursor.fetchall()
elapsed = time.perf_counter() - started
peak = rss_kb("VmHWM")
raw.close()
print(json.dumps({"seconds": elapsed, "before_kb": before, "peak_kb": peak, "decisions": len(rows)}))
"""


INCREMENTAL = """
import json, sys, time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from preauth.monitoring import monitor
from preauth.monitoring_window import GRACE, WindowCache
from preauth.store import DecisionStore
sys.path.insert(0, sys.argv[6])
from monitor_refresh import fill
url, bundle, since, n, new = sys.argv[1], Path(sys.argv[2]), datetime.fromisoformat(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
store = DecisionStore(url)
clock = [0.0]  # the service's refreshes, minutes apart: when the cache trusts a read's marks
cache = WindowCache(clock=lambda: clock[0])
started = time.perf_counter()
monitor(store, bundle, since=since, cache=cache)
first = time.perf_counter() - started
clock[0] += GRACE.total_seconds() + 60
started = time.perf_counter()
monitor(store, bundle, since=since, cache=cache)
second, second_rows = time.perf_counter() - started, cache.rows_read
fill(url, bundle, new, datetime.now(UTC), first=n, span=timedelta(minutes=5), seed=1, recorded=datetime.now(UTC))
clock[0] += 60
started, cpu = time.perf_counter(), time.process_time()
refreshed = monitor(store, bundle, since=since, cache=cache)
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
read = {"rows": cache.rows_read, "outcomes": cache.outcomes_read}
started, full_cpu = time.perf_counter(), time.process_time()
full = monitor(store, bundle, since=since)
full_seconds, full_cpu = time.perf_counter() - started, time.process_time() - full_cpu
print(json.dumps({
    "first": first, "second": second, "second_rows": second_rows, "seconds": seconds, "cpu": cpu, "read": read,
    "full": full_seconds, "full_cpu": full_cpu, "decisions": full["decisions"], "equal": refreshed == full,
}))
"""
"""Run in one process (the cache lives there): refreshes through a cache, new decisions, and the
refresh after them against a full read."""


def train(models_dir: Path) -> Path:
    """A small real model on the bundled data, with the training reference `preauth train` writes."""
    import numpy as np
    import xgboost as xgb

    from preauth import applications, bundles, drift, features
    from preauth.pipeline import bundled_data

    apps = applications.read_applications(bundled_data("german_credit_risk.csv"))
    columns = applications.feature_columns()
    matrix = features.encode(apps.frame, columns)
    label = (apps.frame["Risk"] == "bad").to_numpy(dtype=np.float32)
    data = xgb.DMatrix(
        matrix,
        label=label,
        feature_names=columns,
        feature_types=features.feature_types(columns),
        enable_categorical=True,
    )
    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.2, "nthread": 1, "seed": 0}
    booster = xgb.train(params, data, num_boost_round=40)
    scores = booster.predict(data).astype(np.float64)
    reference = drift.training_reference(apps.frame, columns, applications.GERMAN, scores, source="bench")
    path = bundles.save_bundle(
        models_dir, booster, features=columns, threshold=0.5, meta={"reference": reference}
    )
    bundles.promote(models_dir, path.name)
    return path


def fill(
    url: str,
    bundle_path: Path,
    n: int,
    now: datetime,
    seed: int = 0,
    *,
    first: int = 0,
    span: timedelta = timedelta(days=WINDOW_DAYS),
    recorded: datetime | None = None,
) -> None:
    """N decisions of the bundle's model spread over ``span`` before ``now``, one in five with an
    outcome (recorded at ``recorded``, by default at its decision's time); numbered from ``first``
    (their ids and request ids)."""
    import numpy as np
    import sqlalchemy as sa

    from preauth import applications, bundles, features
    from preauth.decisions import APPROVE, BAD_RISK, DECLINE, GOOD_RISK, REFER
    from preauth.outcomes import outcomes
    from preauth.pipeline import bundled_data
    from preauth.store import DecisionStore, decisions

    rng = np.random.default_rng(seed)
    store = DecisionStore(url)
    store.migrate()
    bundle = bundles.load_bundle(bundle_path.parent, bundle_path.name)
    apps = applications.read_applications(bundled_data("german_credit_risk.csv")).frame
    columns = applications.feature_columns()
    version = bundle_path.name
    chunk = 20_000
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        frame = apps.iloc[rng.integers(0, len(apps), size)].reset_index(drop=True)[columns]
        ages = np.linspace(start / n, (start + size) / n, size, endpoint=False)  # 0 → 1 over the window
        drifted = frame["Credit amount"] * rng.lognormal(0.4 * ages, 0.2)
        frame["Credit amount"] = drifted.round().astype(np.int64)
        p = bundle.predict_proba(features.encode(frame, columns)).astype(np.float64)
        created = [now - span * (1 - a) + timedelta(seconds=1) for a in ages]
        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        rows: list[dict[str, Any]] = []
        outcome_rows: list[dict[str, Any]] = []
        for i, (record, prob, moment) in enumerate(zip(records, p.tolist(), created, strict=True)):
            k = first + start + i
            if k % ALIAS_EVERY == 0:
                record = {ALIASES.get(key, key): value for key, value in record.items()}
            bad = prob >= 0.5
            decision = REFER if abs(prob - 0.5) < 0.04 else DECLINE if bad else APPROVE
            ident = str(uuid.UUID(int=k + 1))
            rows.append(
                {
                    "id": ident,
                    "request_id": f"r{k}",
                    "created_at": moment,
                    "channel": "api",
                    "model_version": version,
                    "input": record,
                    "probability": prob,
                    "target": BAD_RISK if bad else GOOD_RISK,
                    "is_fraud": bad,
                    "confidence": max(prob, 1 - prob),
                    "threshold": 0.5,
                    "reasons": [{"feature": "Duration", "direction": "towards bad risk"}],
                    "contributions": None,
                    "decision": decision,
                }
            )
            if k % OUTCOME_EVERY == 0:
                outcome_rows.append(
                    {
                        "decision_id": ident,
                        "outcome": "defaulted" if rng.random() < prob else "repaid",
                        "known_at": moment,
                        "recorded_at": recorded or moment,
                        "source": "bench",
                    }
                )
        with store.engine.begin() as connection:
            connection.execute(sa.insert(decisions), rows)
            connection.execute(sa.insert(outcomes), outcome_rows)
    store.close()


def child(code: str, src: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", PEAK + code, *args],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
    if done.returncode:
        raise SystemExit(done.stderr)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def fresh_postgres(url: str) -> tuple[str, Any]:
    """A schema of its own on the PostgreSQL server at ``url`` (as tests/service/conftest.py makes)."""
    import psycopg
    import sqlalchemy as sa

    plain = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    admin = psycopg.connect(plain, autocommit=True)
    schema = f"preauth_bench_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    return f"{url}?options=-csearch_path%3D{schema}", (admin, schema)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument(
        "--database-url", help="a PostgreSQL server (a fresh schema is made per N); default SQLite"
    )
    parser.add_argument("--compare-src", type=Path, help="also time monitor() from this source tree")
    parser.add_argument(
        "--new-share",
        type=float,
        default=0.01,
        help="new decisions before the timed cached refresh (share of N)",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    now = datetime.now(UTC)
    since = (now - timedelta(days=WINDOW_DAYS)).isoformat()
    with tempfile.TemporaryDirectory() as work:
        bundle_path = train(Path(work) / "models")
        for n in args.rows:
            cleanup = None
            if args.database_url:
                url, cleanup = fresh_postgres(args.database_url)
            else:
                url = f"sqlite:///{work}/store-{n}.db"
            try:
                fill(url, bundle_path, n, now)
                floor = child(FLOOR, ROOT / "src", url, bundle_path.name, since)
                runs = {"monitor": (ROOT / "src", Path(work) / f"report-{n}.json")}
                if args.compare_src:
                    runs["compared"] = (args.compare_src, Path(work) / f"report-{n}-compared.json")
                figures = {
                    name: child(MONITOR, src, url, str(bundle_path), since, str(out))
                    for name, (src, out) in runs.items()
                }
                print(
                    f"{n:>9,} decisions, floor (bare fetch): {floor['seconds']:6.2f} s, "
                    f"+{(floor['peak_kb'] - floor['before_kb']) / 1024:6.1f} MB"
                )
                for name, found in figures.items():
                    assert found["decisions"] == floor["decisions"] == n, (found, floor)
                    print(
                        f"{'':>10} {name:9} {found['seconds']:6.2f} s ({found['seconds'] / floor['seconds']:5.2f}× "
                        f"the floor), +{(found['peak_kb'] - found['before_kb']) / 1024:6.1f} MB "
                        f"(peak RSS {found['peak_kb'] / 1024:6.1f} MB)"
                    )
                if args.compare_src:
                    same = runs["monitor"][1].read_text() == runs["compared"][1].read_text()
                    ratio = figures["compared"]["seconds"] / figures["monitor"]["seconds"]
                    print(
                        f"{'':>10} reports equal: {same}; this tree {ratio:.1f}× as fast as the compared one"
                    )
                new = max(1, round(n * args.new_share))
                cached = child(
                    INCREMENTAL,
                    ROOT / "src",
                    url,
                    str(bundle_path),
                    since,
                    str(n),
                    str(new),
                    str(ROOT / "bench"),
                )
                assert cached["decisions"] == n + new, cached
                print(
                    f"{'':>10} cached refreshes: first {cached['first']:6.2f} s, a few minutes later "
                    f"{cached['second']:6.2f} s ({cached['second_rows']:,} decisions read)"
                )
                print(
                    f"{'':>10} after {new:,} new decisions ({args.new_share:.0%}): cached refresh "
                    f"{cached['seconds']:6.2f} s ({cached['cpu']:.2f} CPU-s; read {cached['read']['rows']:,} "
                    f"decisions, {cached['read']['outcomes']:,} outcomes) against a full read "
                    f"{cached['full']:6.2f} s ({cached['full_cpu']:.2f} CPU-s): "
                    f"{cached['full'] / cached['seconds']:.1f}× as fast; reports equal: {cached['equal']}"
                )
            finally:
                if cleanup is not None:
                    admin, schema = cleanup
                    admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
                    admin.close()


if __name__ == "__main__":
    main()
