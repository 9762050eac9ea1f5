"""Labelling throughput against a chat-completions server with fixed latency per call.

The original pipeline labelled one applicant at a time (two LLM calls each). This benchmark runs,
in one go, against the test suite's OpenAI-compatible server (tests/labels/openai_server.py,
started in its own process so it does not share our GIL) with LATENCY seconds per call:

1. sequential labelling (concurrency 1), as the original did, on a subset (default 100
   applicants; ``--sequential-n 1000`` for the whole set, ~400 s);
2. ``--concurrency 16`` on all applicants (default 1,000, the bundled German Credit data);
3. the same run again with the same cache, which must make zero calls.

Each prints applicants/s and the ratio to its ceiling, concurrency ÷ latency ÷ calls per
applicant (2: describe, classify). Goal: the concurrent run at >= 80% of its ceiling. Labelling
goes through ``preauth.labels.label_applications``, the function ``preauth label`` calls.

    .venv/bin/python bench/label_throughput.py [--n 1000] [--latency 0.2] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CALLS_PER_APPLICANT = 2


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "labels" / "openai_server.py"), "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline().strip()
    return server, line.rsplit(" ", 1)[-1]


def server_requests(url: str) -> int:
    with urllib.request.urlopen(f"{url}/stats") as response:
        return int(json.load(response)["requests"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1000, help="applicants in the concurrent runs")
    parser.add_argument("--sequential-n", type=int, default=100, help="applicants in the sequential run")
    parser.add_argument("--latency", type=float, default=0.2, help="server latency per call, seconds")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    import pandas as pd

    from preauth.applications import read_applications, validate
    from preauth.labels import label_applications
    from preauth.providers import get_provider

    data = ROOT / "src" / "preauth" / "data" / "german_credit_data.csv"
    table = pd.read_csv(data, dtype=str, keep_default_na=False)
    table = pd.concat([table] * (args.n // len(table) + 1), ignore_index=True).head(args.n)
    if args.n > 1000:  # make repeated rows distinct so that each is a fresh question
        table["Credit amount"] = (table["Credit amount"].astype(int) + table.index // 1000).astype(str)
    everyone = validate(table, source=str(data))
    subset = validate(table.head(args.sequential_n), source=str(data))
    assert len(read_applications(data)) == 1000

    server, url = start_server(args.latency)
    print(
        f"chat-completions server at {url}, {args.latency * 1000:.0f} ms per call, "
        f"{CALLS_PER_APPLICANT} calls per applicant (describe, classify)"
    )
    rows = []
    try:
        with tempfile.TemporaryDirectory() as work:

            def run(name: str, apps, concurrency: int, cache: Path) -> None:
                before = server_requests(url)
                provider = get_provider("openai:bench-model", base_url=url)
                started = time.perf_counter()
                frame = label_applications(
                    apps, provider, concurrency=concurrency, cache_path=cache, progress=False
                )
                seconds = time.perf_counter() - started
                calls = server_requests(url) - before
                labelled = int((frame["target"] != "").sum())
                rate = len(frame) / seconds
                ceiling = concurrency / args.latency / CALLS_PER_APPLICANT
                rows.append((name, len(frame), concurrency, calls, labelled, seconds, rate, ceiling))

            run("sequential (as the original)", subset, 1, Path(work) / "sequential.sqlite")
            run(
                f"--concurrency {args.concurrency}",
                everyone,
                args.concurrency,
                Path(work) / "concurrent.sqlite",
            )
            run(
                f"--concurrency {args.concurrency}, re-run",
                everyone,
                args.concurrency,
                Path(work) / "concurrent.sqlite",
            )
    finally:
        server.terminate()
        server.wait()

    header = (
        f"{'run':36} {'applicants':>10} {'conc.':>5} {'calls':>6} {'labelled':>8} {'seconds':>8} "
        f"{'applicants/s':>12} {'ceiling/s':>9} {'of ceiling':>10}"
    )
    print(header)
    print("-" * len(header))
    for name, n, concurrency, calls, labelled, seconds, rate, ceiling in rows:
        share = f"{rate / ceiling:10.1%}" if calls else f"{'(no calls)':>10}"
        print(
            f"{name:36} {n:>10,} {concurrency:>5} {calls:>6,} {labelled:>8,} {seconds:>8.2f} {rate:>12.1f} "
            f"{ceiling:>9.1f} {share}"
        )
    sequential, concurrent, rerun = rows
    print()
    print(
        f"speed-up of --concurrency {args.concurrency} over sequential: {concurrent[6] / sequential[6]:.1f}x "
        f"(sequential measured on {sequential[1]} applicants, concurrent on {concurrent[1]:,})"
    )
    goal = concurrent[6] / concurrent[7]
    print(f"concurrent run at {goal:.1%} of its ceiling (goal >= 80%): {'met' if goal >= 0.8 else 'NOT met'}")
    print(
        f"re-run with the cache: {rerun[3]} calls to the server, {rerun[5]:.2f} s "
        f"({'zero calls, as required' if rerun[3] == 0 else 'CALLS MADE'})"
    )


if __name__ == "__main__":
    main()
