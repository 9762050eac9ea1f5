"""The decisions export streams: its memory does not grow with the store.

Fills two SQLite stores, SMALL and LARGE decisions (one in ten referred and reviewed, one in five
with an outcome), then exports each as CSV and as Parquet with ``preauth.exports.export_file`` (what
``preauth decisions export`` and ``GET /v1/decisions/export`` run), each export in a fresh process
so that its peak resident memory is its own. Prints rows/s and peak RSS per run, and the ratio of
the LARGE run's peak to the SMALL run's against the ratio of their rows. Goal: peak ratio < 1.5
while the rows grow 10×.

    .venv/bin/python bench/export_memory.py [--small 20000] [--large 200000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import resource, sys, time
from pathlib import Path
from preauth.exports import Filters, export_file
from preauth.store import DecisionStore
store = DecisionStore(sys.argv[1])
started = time.perf_counter()
n = export_file(store, Filters(), sys.argv[2], Path(sys.argv[3]))
elapsed = time.perf_counter() - started
print(n, elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def fill(url: str, n: int) -> None:
    import sqlalchemy as sa

    from preauth.applications import example_application
    from preauth.decisions import decided
    from preauth.outcomes import outcomes
    from preauth.reviews import reviews
    from preauth.store import DecisionStore, Keep

    store = DecisionStore(url)
    store.migrate()
    now = datetime.now(UTC)
    application = example_application()
    reason = [
        {"feature": "Duration", "value": 24, "direction": "towards bad risk", "text": "Duration 24 months"}
    ]
    batch: list = []
    review_rows: list = []
    outcome_rows: list = []
    for i in range(n):
        refer = (
            [{"feature": "probability", "direction": "refer", "text": "near the threshold"}]
            if i % 10 == 0
            else None
        )
        decision = decided(
            id=str(uuid.uuid4()),
            request_id=f"r{i}",
            created_at=now,
            channel="api",
            model_version="v1",
            input=application,
            probability=(i % 100) / 100,
            threshold=0.3,
            reasons=reason,
            contributions={"Duration": 0.1},
            refer=refer,
        )
        batch.append(decision)
        if refer:
            review_rows.append(
                {
                    "decision_id": decision.id,
                    "reviewer": "alice",
                    "decision": "approve",
                    "reason": "ok",
                    "created_at": now,
                }
            )
        if i % 5 == 0:
            outcome_rows.append(
                {
                    "decision_id": decision.id,
                    "outcome": "repaid",
                    "known_at": now,
                    "recorded_at": now,
                    "source": "bench",
                }
            )
        if len(batch) == 5000 or i == n - 1:
            store.save([Keep(batch)])
            with store.engine.begin() as connection:
                if review_rows:
                    connection.execute(sa.insert(reviews), review_rows)
                if outcome_rows:
                    connection.execute(sa.insert(outcomes), outcome_rows)
            batch, review_rows, outcome_rows = [], [], []
    store.close()


def export(url: str, fmt: str, out: Path) -> tuple[int, float, int]:
    env_path = str(ROOT / "src")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, url, fmt, str(out)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
    )
    n, elapsed, peak_kb = done.stdout.split()
    return int(n), float(elapsed), int(peak_kb)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--large", type=int, default=200_000)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    with tempfile.TemporaryDirectory() as work:
        peaks: dict[tuple[str, int], int] = {}
        for n in (args.small, args.large):
            url = f"sqlite:///{work}/store-{n}.db"
            fill(url, n)
            for fmt in ("csv", "parquet"):
                out = Path(work) / f"export-{n}.{fmt}"
                rows, elapsed, peak = export(url, fmt, out)
                assert rows == n
                peaks[(fmt, n)] = peak
                size = out.stat().st_size / 1e6
                print(
                    f"{fmt:8} {n:>8,} decisions: {rows / elapsed:>9,.0f} rows/s, "
                    f"peak RSS {peak / 1024:6.1f} MB, file {size:6.1f} MB"
                )
        for fmt in ("csv", "parquet"):
            ratio = peaks[(fmt, args.large)] / peaks[(fmt, args.small)]
            print(
                f"{fmt}: rows ×{args.large / args.small:.0f}, peak memory ×{ratio:.2f} "
                f"({'streams' if ratio < 1.5 else 'GROWS with the store'})"
            )


if __name__ == "__main__":
    main()
