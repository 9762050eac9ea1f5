"""Serving latency and throughput: `preauth serve` against `mlflow models serve`, same model, same run.

    .venv/bin/python bench/serve_latency.py [--mlflow-python PATH] [--workers 2] [--mlflow-workers 1]
                                            [--requests-c1 2000] [--requests-c16 8000]
    .venv/bin/python bench/serve_latency.py --shadow [--shadow-rounds 2] [--workers 2] [--postgres URL]

1. Trains one XGBoost model on the bundled German Credit data the way an MLflow user would: a
   scikit-learn Pipeline (imputer + ordinal encoder for the categories, numbers passed through,
   then ``XGBClassifier``), logged with ``mlflow.sklearn.log_model`` (``predict_proba`` as the
   pyfunc method). The very same booster is saved as a preauth bundle, so both servers run the
   same trees on the same codes.
2. Starts ``mlflow models serve --env-manager local`` and ``preauth serve`` (SQLite store in WAL
   mode: every decision is committed before its answer, with its TreeSHAP reasons).
3. Drives both with ApacheBench (``ab -k``, keep-alive; one JSON application per request, the same
   application) at concurrency 1 and 16 for a fixed number of requests each, after a warm-up, and prints p50/p99 latency and
   requests/s for each, and the ratios. Checks afterwards that the store holds exactly one decision
   per decision preauth acknowledged, and that both servers gave the same probability.

With ``--shadow`` it measures instead what a shadow model (``preauth models shadow``) costs the
production answer: one ``preauth serve``, two models of the same size, ab run alternately without
and with the shadow alias set (switched while the server runs), the medians compared. It checks
that every decision acknowledged while the shadow was on has its shadow score, and none other.
MLflow is not needed for it.

MLflow is not a preauth dependency. It needs its own environment (it pins an older pyarrow than
preauth uses); make one once with:

    python3 -m venv ../mlflow-venv && ../mlflow-venv/bin/pip install mlflow xgboost-cpu scikit-learn pandas

and pass ``--mlflow-python ../mlflow-venv/bin/python`` (default: this interpreter, if it has mlflow).
ab comes from Debian: ``apt-get install -y apache2-utils``. Goal: preauth >= 10x MLflow's requests/s at
concurrency 16, and preauth's p99 < 5 ms at concurrency 1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "src" / "preauth" / "data" / "german_credit_risk.csv"

# Runs in the MLflow environment (which does not have preauth): train, log, and export the booster.
TRAIN_AND_LOG = r"""
import json, sys
import mlflow, mlflow.sklearn
import numpy as np, pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder
from xgboost import XGBClassifier

spec = json.loads(sys.argv[1])
frame = pd.read_csv(spec["data"], index_col=0)
categories, numbers = spec["categories"], spec["numbers"]
y = (frame["Risk"] == "bad").astype(int)
X = frame[list(categories) + numbers]
encode = ColumnTransformer(
    [
        ("categories", Pipeline([
            ("missing", SimpleImputer(strategy="constant", fill_value="unknown")),
            ("codes", OrdinalEncoder(categories=[categories[c] for c in categories],
                                     handle_unknown="use_encoded_value", unknown_value=np.nan)),
        ]), list(categories)),
        ("numbers", "passthrough", numbers),
    ]
)
model = XGBClassifier(n_estimators=spec["rounds"], max_depth=spec["depth"], learning_rate=0.1,
                      enable_categorical=True, feature_types=["c"] * len(categories) + ["q"] * len(numbers),
                      tree_method="hist", n_jobs=1, random_state=0)
pipeline = Pipeline([("encode", encode), ("model", model)])
pipeline.fit(X, y)
mlflow.set_tracking_uri(spec["tracking_uri"])
mlflow.set_experiment("credit-risk")
with mlflow.start_run() as run:
    mlflow.sklearn.log_model(
        pipeline, name="model", input_example=X.head(3), pyfunc_predict_fn="predict_proba",
        skops_trusted_types=["numpy.dtype", "xgboost.core.Booster", "xgboost.sklearn.XGBClassifier"],
    )
booster = pipeline[-1].get_booster()
booster.save_model(spec["booster"])
print(json.dumps({"model_uri": f"runs:/{run.info.run_id}/model"}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[Any], log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
            raise SystemExit(f"server for {url} exited early (code {process.returncode}):\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def run_ab(url: str, body: str, concurrency: int, requests: int, workdir: Path) -> dict[str, float]:
    """A fixed number of POSTs at a fixed concurrency with ApacheBench (keep-alive); its percentiles."""
    payload = workdir / "body.json"
    payload.write_text(body)
    percentiles = workdir / "percentiles.csv"
    out = subprocess.run(
        [
            "ab",
            "-q",
            "-k",
            "-n",
            str(requests),
            "-c",
            str(concurrency),
            "-s",
            "60",
            "-p",
            str(payload),
            "-T",
            "application/json",
            "-e",
            str(percentiles),
            url,
        ],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"ab failed against {url}:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    table = dict(line.split(",", 1) for line in percentiles.read_text().splitlines()[1:])
    failed = re.search(r"Failed requests:\s+(\d+)", out.stdout)
    non_2xx = re.search(r"Non-2xx responses:\s+(\d+)", out.stdout)
    return {
        "p50_ms": float(table["50"]),
        "p99_ms": float(table["99"]),
        "rps": float(re.search(r"Requests per second:\s+([\d.]+)", out.stdout).group(1)),  # type: ignore[union-attr]
        "requests": float(re.search(r"Complete requests:\s+(\d+)", out.stdout).group(1)),  # type: ignore[union-attr]
        "failed": float(failed.group(1) if failed else 0) + float(non_2xx.group(1) if non_2xx else 0),
    }


def store_url(postgres: str | None, work: Path) -> tuple[str, str | None]:
    """The decision store's URL: a SQLite file, or a fresh schema on the PostgreSQL server."""
    if not postgres:
        return f"sqlite:///{work / 'decisions.db'}", None
    import sqlalchemy as sa

    schema = f"preauth_bench_{os.getpid()}_{int(time.time())}"
    engine = sa.create_engine(postgres)
    with engine.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    engine.dispose()
    joiner = "&" if "?" in postgres else "?"
    return f"{postgres}{joiner}options=-csearch_path%3D{schema}", schema


def drop_schema(postgres: str, schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(postgres)
    with engine.begin() as connection:
        connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    engine.dispose()


def count_decisions(database_url: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        count = int(connection.exec_driver_sql("SELECT count(*) FROM decisions").scalar_one())
    engine.dispose()
    return count


def acknowledged(metrics_url: str) -> int:
    """Decisions preauth answered 201 to, from its own /metrics (summed over its workers)."""
    with urllib.request.urlopen(metrics_url, timeout=10) as answer:
        text = answer.read().decode()
    pattern = r'^preauth_requests_total\{method="POST",route="/v1/decisions",status="201"\} ([\d.e+]+)$'
    return int(sum(float(m) for m in re.findall(pattern, text, re.M)))


def set_shadow(models: Path, version: str | None, base_url: str) -> None:
    """Switch the shadow alias and wait until the server (every worker: one more second) follows it."""
    from preauth import bundles

    if version is None:
        bundles.drop_alias(models, bundles.SHADOW)
    else:
        bundles.promote(models, version, bundles.SHADOW)
    deadline = time.monotonic() + 30
    while True:
        with urllib.request.urlopen(base_url + "/v1/models/compare", timeout=10) as answer:
            live = json.loads(answer.read())["live"]
        if live["shadow"] == version and live["shadow_loaded"] == (version is not None):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"the server did not follow the shadow alias to {version}: {live}")
        time.sleep(0.2)
    time.sleep(1.5)  # the other workers look at the alias file once a second too


def count_shadowed(database_url: str) -> tuple[int, int]:
    """Stored decisions, and how many of them have a shadow score."""
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        decided = int(connection.exec_driver_sql("SELECT count(*) FROM decisions").scalar_one())
        shadowed = int(connection.exec_driver_sql("SELECT count(*) FROM shadow_scores").scalar_one())
    engine.dispose()
    return decided, shadowed


def in_process_cost(models: Path, work: Path, calls: int = 2000) -> None:
    """What the shadow adds to deciding and storing a request, timed in this process (robust to a
    busy machine, where ab's figures are noise): production's decision (score and TreeSHAP reasons)
    against the shadow's score (probability and verdict only), and the SQLite commit of the
    decisions without and with their shadow scores; for a request of one application and for a
    batch of sixteen (what concurrency 16 gathers into one call)."""
    import dataclasses
    import statistics

    from preauth import applications, bundles
    from preauth.service.intake import check_records
    from preauth.service.serving import Request, Served
    from preauth.store import DecisionStore, Keep

    production = Served(bundles.load_bundle(models, "v1"))
    shadow = Served(bundles.load_bundle(models, "v2"))
    schema = production.bundle.schema
    store = DecisionStore(f"sqlite:///{work / 'in-process.db'}")
    store.migrate()

    def timed(work: Any) -> float:
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            work()
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1e6

    def fresh(decisions: list[Any]) -> list[Any]:
        return [dataclasses.replace(d, id=str(uuid.uuid4())) for d in decisions]

    def at(rows: int) -> None:
        accepted = check_records([applications.example_application()] * rows).accepted
        batch = [(accepted, Request("bench", "api"))]
        made = production.decide_many(batch)[0]

        def shadowed() -> list[Any]:
            scores = shadow.shadow_scores(accepted, schema)
            return [dataclasses.replace(d, shadow=s) for d, s in zip(made, scores, strict=True)]

        decide = timed(lambda: production.decide_many(batch))
        score = timed(shadowed)
        with_scores = shadowed()
        plain = timed(lambda: store.save([Keep(fresh(made))]))
        both = timed(lambda: store.save([Keep(fresh(with_scores))]))
        print(
            f"in process, {rows:>2} application(s): production's decision {decide:.0f} µs, the shadow's "
            f"score +{score:.0f} µs (+{100 * score / decide:.0f}%); SQLite commit {plain:.0f} µs, with the "
            f"shadow scores {both:.0f} µs (+{both - plain:.0f} µs); fast C API: {production.calls is not None}",
            flush=True,
        )

    at(1)
    at(16)
    store.close()


def asgi_cpu_cost(models: Path, work: Path, requests: int = 3000, concurrency: int = 16) -> None:
    """CPU time per request of the whole app (routing, validation, deciding, the commit), in this
    process through httpx's ASGI transport, without and with the shadow, alternating: a busy
    machine stretches wall-clock time, far less this process's own CPU time."""
    import asyncio

    from preauth import applications, bundles
    from preauth.service.app import create_app
    from preauth.settings import Settings

    settings = Settings(
        models_dir=models, database_url=f"sqlite:///{work / 'asgi.db'}", sagemaker_model_dir=None
    )
    app = create_app(settings, reload_interval=3600)
    body = applications.example_application()

    async def phase(client: Any, n: int) -> float:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                answer = await client.post("/v1/decisions", json=body)
                assert answer.status_code == 201, answer.text

        start = time.process_time()
        await asyncio.gather(*(one() for _ in range(n)))
        return (time.process_time() - start) / n * 1e6

    async def main() -> dict[bool, list[float]]:
        import httpx

        cpu: dict[bool, list[float]] = {False: [], True: []}
        async with app.router.lifespan_context(app):
            source = app.state.runtime.source
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                await phase(client, 500)  # warm-up
                for _ in range(3):
                    for shadowed in (False, True):
                        if shadowed:
                            bundles.promote(models, "v2", bundles.SHADOW)
                        else:
                            bundles.drop_alias(models, bundles.SHADOW)
                        source.refresh()
                        assert (source.shadow.served is not None) == shadowed
                        cpu[shadowed].append(await phase(client, requests))
        return cpu

    import statistics

    cpu = asyncio.run(main())
    off, on = statistics.median(cpu[False]), statistics.median(cpu[True])
    _, shadowed = count_shadowed(settings.database_url)
    print(
        f"in process through ASGI, {concurrency} at a time: {off:.0f} µs of CPU per request without the "
        f"shadow, {on:.0f} µs with it ({on - off:+.0f} µs, {on / off:.2f}x; medians of 3 x {requests}; "
        f"{shadowed} shadow scores stored, {3 * requests} expected)",
        flush=True,
    )


def shadow_overhead(args: argparse.Namespace) -> None:
    """``--shadow``: the same server with and without a shadow model, alternating, same requests."""
    import statistics

    import numpy as np
    import xgboost as xgb

    from preauth import applications, bundles, features

    work = Path(tempfile.mkdtemp(prefix="preauth-bench-shadow-"))
    server: subprocess.Popen[Any] | None = None
    schema = None
    try:
        frame = applications.read_applications(DATA).frame
        columns = applications.feature_columns()
        data = xgb.DMatrix(
            features.encode(frame, columns),
            label=(frame["Risk"] == "bad").to_numpy(dtype=np.float32),
            feature_names=columns,
            feature_types=features.feature_types(columns),
            enable_categorical=True,
        )
        models = work / "models"
        for seed in (0, 1):  # production v1, challenger v2: the same size, different trees
            params = {"objective": "binary:logistic", "max_depth": args.depth, "eta": 0.1, "subsample": 0.8}
            booster = xgb.train({**params, "seed": seed, "nthread": 1}, data, num_boost_round=args.rounds)
            bundles.save_bundle(
                models,
                booster,
                features=columns,
                threshold=0.5,
                meta={"metrics": {"measured_against": "Risk"}},
            )
        bundles.promote(models, "v1")
        in_process_cost(models, work)
        asgi_cpu_cost(models, work)
        bundles.drop_alias(
            models, bundles.SHADOW
        )  # left on by the in-process part; the warm-up is unshadowed
        if args.shadow_rounds == 0:
            return
        database_url, schema = store_url(args.postgres, work)
        port = free_port()
        log = (work / "preauth.log").open("w")
        server = subprocess.Popen(
            [sys.executable, "-c", "from preauth.cli import main; main()", "--models-dir", str(models)]
            + ["serve", "--port", str(port), "--workers", str(args.workers)]
            + ["--database-url", database_url, "--no-access-log"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PREAUTH_SAGEMAKER_MODEL_DIR": str(work / "none")},
            cwd=work,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        wait_for(base + "/ping", server, work / "preauth.log")
        url = base + "/v1/decisions"
        body = json.dumps(applications.example_application())
        print(
            f"preauth serve ({args.workers} worker(s), {os.cpu_count()} cores, "
            f"{'PostgreSQL' if args.postgres else 'SQLite (WAL)'}), two models of {args.rounds} trees, "
            f"depth {args.depth}; ab one-application POSTs, alternately without and with the shadow",
            flush=True,
        )
        run_ab(url, body, 16, 1000, work)  # warm-up
        runs: dict[tuple[bool, int], list[dict[str, float]]] = {}
        expected_shadowed = 0
        for _ in range(args.shadow_rounds):
            for shadowed in (False, True):
                set_shadow(models, "v2" if shadowed else None, base)
                for concurrency, n in ((1, args.requests_c1), (16, args.requests_c16)):
                    result = run_ab(url, body, concurrency, n, work)
                    runs.setdefault((shadowed, concurrency), []).append(result)
                    if shadowed:
                        expected_shadowed += int(result["requests"] - result["failed"])
        answered = post(url, json.loads(body))  # the shadow is still on
        expected_shadowed += 1
        decided, shadowed_rows = count_shadowed(database_url)

        print()
        print(
            f"{'shadow':<8}{'concurrency':>12}{'runs':>6}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>10}{'failed':>8}"
        )
        medians: dict[tuple[bool, int], dict[str, float]] = {}
        for (shadowed, concurrency), results in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            medians[(shadowed, concurrency)] = m = {
                key: statistics.median(r[key] for r in results) for key in ("p50_ms", "p99_ms", "rps")
            }
            failed = int(sum(r["failed"] for r in results))
            print(
                f"{'on' if shadowed else 'off':<8}{concurrency:>12}{len(results):>6}{m['p50_ms']:>9.2f}"
                f"{m['p99_ms']:>9.2f}{m['rps']:>10.1f}{failed:>8}"
            )
        print()
        for concurrency in (1, 16):
            off, on = medians[(False, concurrency)], medians[(True, concurrency)]
            print(
                f"concurrency {concurrency:>2}: with the shadow p50 {on['p50_ms'] - off['p50_ms']:+.2f} ms "
                f"({on['p50_ms'] / off['p50_ms']:.2f}x), p99 {on['p99_ms'] - off['p99_ms']:+.2f} ms, "
                f"throughput {on['rps'] / off['rps']:.2f}x"
            )
        print(
            f"answers came from {answered['model_version']} (production); decisions stored: {decided}, "
            f"with a shadow score: {shadowed_rows} (acknowledged while the shadow was on: {expected_shadowed}, "
            f"{'all scored' if shadowed_rows == expected_shadowed else 'MISMATCH'})"
        )
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGINT)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)
        if args.postgres and schema:
            drop_schema(args.postgres, schema)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--mlflow-python", default=sys.executable, help="Python of an environment with mlflow."
    )
    parser.add_argument("--workers", type=int, default=2, help="preauth serve worker processes (default 2).")
    parser.add_argument(
        "--mlflow-workers", type=int, default=1, help="mlflow models serve workers (default 1, its default)."
    )
    parser.add_argument("--requests-c1", type=int, default=2000)
    parser.add_argument("--requests-c16", type=int, default=8000)
    parser.add_argument(
        "--mlflow-requests-c16", type=int, default=1500, help="MLflow is slow; fewer requests."
    )
    parser.add_argument("--rounds", type=int, default=200, help="Trees in the model (default 200).")
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=None,
        help="Store decisions in PostgreSQL (a schema of its own, dropped afterwards), e.g. "
        "postgresql+psycopg://postgres@127.0.0.1:5432/test; default: a SQLite file.",
    )
    parser.add_argument(
        "--shadow",
        action="store_true",
        help="Measure what a shadow model costs instead (preauth with and without one; no MLflow).",
    )
    parser.add_argument(
        "--shadow-rounds",
        type=int,
        default=2,
        help="With --shadow: off/on alternations under ab (default 2; 0: the in-process timing only).",
    )
    args = parser.parse_args()

    if shutil.which("ab") is None:
        raise SystemExit("ab (ApacheBench) not found: apt-get install -y apache2-utils")
    if args.shadow:
        shadow_overhead(args)
        return
    check = subprocess.run([args.mlflow_python, "-c", "import mlflow"], capture_output=True)
    if check.returncode != 0:
        raise SystemExit(
            f"{args.mlflow_python} has no mlflow; see this script's docstring for a separate venv"
        )

    from preauth import applications, bundles

    columns = applications.feature_columns()
    categories = {
        c: list(applications.field_by_name(c).levels())
        for c in columns
        if applications.field_by_name(c).is_category
    }
    numbers = [c for c in columns if c not in categories]
    features = [*categories, *numbers]  # the ColumnTransformer's output order
    work = Path(tempfile.mkdtemp(prefix="preauth-bench-serve-"))
    processes: list[subprocess.Popen[Any]] = []
    try:
        print(
            f"training one model ({args.rounds} trees, depth {args.depth}) and logging it to MLflow ...",
            flush=True,
        )
        spec = {
            "data": str(DATA),
            "categories": categories,
            "numbers": numbers,
            "rounds": args.rounds,
            "depth": args.depth,
            "tracking_uri": f"sqlite:///{work / 'mlflow.db'}",
            "booster": str(work / "booster.ubj"),
        }
        mlflow_bin = Path(args.mlflow_python).parent
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": spec["tracking_uri"],
            "GIT_PYTHON_REFRESH": "quiet",
            "PATH": f"{mlflow_bin}{os.pathsep}{os.environ.get('PATH', '')}",  # mlflow runs `uvicorn` from PATH
        }
        trained = subprocess.run(
            [args.mlflow_python, "-c", TRAIN_AND_LOG, json.dumps(spec)],
            capture_output=True,
            text=True,
            env=env,
            cwd=work,
        )
        if trained.returncode != 0:
            raise SystemExit(f"training/logging failed:\n{trained.stderr[-3000:]}")
        model_uri = json.loads(trained.stdout.strip().splitlines()[-1])["model_uri"]

        import xgboost as xgb

        booster = xgb.Booster(model_file=str(work / "booster.ubj"))
        booster.feature_names = features
        booster.feature_types = ["c"] * len(categories) + ["q"] * len(numbers)
        models = work / "models"
        bundles.save_bundle(
            models,
            booster,
            features=features,
            threshold=0.5,
            meta={"metrics": {"measured_against": "real Risk"}},
        )

        mlflow_port, preauth_port = free_port(), free_port()
        mlflow_log = (work / "mlflow.log").open("w")
        mlflow_server = subprocess.Popen(
            [
                str(mlflow_bin / "mlflow"),
                "models",
                "serve",
                "-m",
                model_uri,
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(mlflow_port),
                "-w",
                str(args.mlflow_workers),
            ],
            stdout=mlflow_log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=work,
            start_new_session=True,
        )
        processes.append(mlflow_server)
        database_url, schema = store_url(args.postgres, work)
        preauth_log = (work / "preauth.log").open("w")
        preauth_server = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from preauth.cli import main; main()",
                "--models-dir",
                str(models),
                "serve",
                "--port",
                str(preauth_port),
                "--workers",
                str(args.workers),
                "--database-url",
                database_url,
                "--no-access-log",
            ],
            stdout=preauth_log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PREAUTH_SAGEMAKER_MODEL_DIR": str(work / "none")},
            cwd=work,
            start_new_session=True,
        )
        processes.append(preauth_server)
        wait_for(f"http://127.0.0.1:{preauth_port}/ping", preauth_server, work / "preauth.log")
        wait_for(f"http://127.0.0.1:{mlflow_port}/ping", mlflow_server, work / "mlflow.log")

        app = applications.example_application()
        preauth_url = f"http://127.0.0.1:{preauth_port}/v1/decisions"
        mlflow_url = f"http://127.0.0.1:{mlflow_port}/invocations"
        mlflow_body = {"dataframe_records": [{c: app[c] for c in columns}]}
        ours = post(preauth_url, app)["probability"]
        theirs = post(mlflow_url, mlflow_body)["predictions"][0][1]
        print(f"same application, same model: preauth p={ours:.7f}, MLflow p={theirs:.7f}")
        if abs(ours - theirs) > 1e-5:
            raise SystemExit("the two servers disagree: not the same model")

        print(f"preauth stores its decisions in {'PostgreSQL' if args.postgres else 'SQLite (WAL)'}")
        print(
            f"warming up, then ab: one-application JSON POSTs (preauth {args.workers} worker(s), "
            f"MLflow {args.mlflow_workers} worker(s), {os.cpu_count()} cores)",
            flush=True,
        )
        run_ab(preauth_url, json.dumps(app), 16, 1000, work)
        run_ab(mlflow_url, json.dumps(mlflow_body), 4, 200, work)
        results: dict[tuple[str, int], dict[str, float]] = {}
        for concurrency, n_ours, n_theirs in (
            (1, args.requests_c1, min(args.requests_c1, 1000)),
            (16, args.requests_c16, args.mlflow_requests_c16),
        ):
            results[("MLflow", concurrency)] = run_ab(
                mlflow_url, json.dumps(mlflow_body), concurrency, n_theirs, work
            )
            results[("preauth", concurrency)] = run_ab(
                preauth_url, json.dumps(app), concurrency, n_ours, work
            )

        answered = acknowledged(f"http://127.0.0.1:{preauth_port}/metrics")
        stored = count_decisions(database_url)

        print()
        print(
            f"{'server':<9}{'concurrency':>12}{'requests':>10}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>10}{'failed':>8}"
        )
        for (who, concurrency), r in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            print(
                f"{who:<9}{concurrency:>12}{int(r['requests']):>10}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['rps']:>10.1f}{int(r['failed']):>8}"
            )
        print()
        for concurrency in (1, 16):
            ours_r, theirs_r = results[("preauth", concurrency)], results[("MLflow", concurrency)]
            print(
                f"concurrency {concurrency:>2}: preauth/MLflow throughput {ours_r['rps'] / theirs_r['rps']:.1f}x, "
                f"p50 {theirs_r['p50_ms'] / ours_r['p50_ms']:.1f}x lower, p99 {theirs_r['p99_ms'] / ours_r['p99_ms']:.1f}x lower"
            )
        print(
            f"decisions stored by preauth: {stored}; decisions it acknowledged (201): {answered} "
            f"({'all committed' if stored == answered else 'MISMATCH'})"
        )
        c16 = results[("preauth", 16)]["rps"] / results[("MLflow", 16)]["rps"]
        p99 = results[("preauth", 1)]["p99_ms"]
        print(
            f"goals: >= 10x MLflow at concurrency 16: {c16:.1f}x {'met' if c16 >= 10 else 'NOT met'}; "
            f"p99 < 5 ms at concurrency 1: {p99:.2f} ms {'met' if p99 < 5 else 'NOT met'}"
        )
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)
        if args.postgres and schema:
            drop_schema(args.postgres, schema)


if __name__ == "__main__":
    main()
