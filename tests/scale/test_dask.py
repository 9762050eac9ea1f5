"""Dask: predict and the booster fit on a real cluster (two worker processes), against one process."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from preauth.bundles import Bundle, load_bundle
from preauth.cluster import input_files, plan, score_on_cluster
from preauth.errors import InputError
from preauth.results import score_file

STAMP = "2026-11-25T12:00:00.000001"
HEADER = "Age,Sex,Job,Housing,Saving accounts,Checking account,Credit amount,Duration,Purpose"
BAD = {
    3: "150,male,2,own,little,moderate,1000,12,car",
    333: "30,male,2,castle,little,moderate,1000,12,car",
    600: "30,male,2,own",  # too few fields
    801: "30,male,2,own,little,moderate,1000,12,spaceship",
}


def two_workers() -> Any:
    """A LocalCluster of two worker processes, its HTTP server on a free port as preauth's own (no
    'Port 8787 is already in use' warning when another cluster runs)."""
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    from distributed import Client

    with (
        two_workers() as local,
        Client(local) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def bundle(small_models_dir: Path) -> Bundle:
    return load_bundle(small_models_dir)


def applications_csv(path: Path, bundled_data: Path, rows: int, bad: dict[int, str]) -> Path:
    body = [line.split(",", 1)[1] for line in bundled_data.read_text().splitlines()[1:]]
    lines = [body[i % len(body)] for i in range(rows)]
    for number, line in bad.items():
        lines[number - 1] = line
    path.write_text(HEADER + "\n" + "\n".join(lines) + "\n")
    return path


def parts(directory: Path, fmt: str) -> list[Path]:
    return sorted(directory.glob(f"part-*.{fmt}"))


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_a_cluster_scores_a_file_as_one_process_does(
    cluster: object, bundle: Bundle, bundled_data: Path, tmp_path: Path, fmt: str
) -> None:
    source = applications_csv(tmp_path / "apps.csv", bundled_data, 1000, BAD)
    single = score_file(bundle, source, tmp_path / f"one.{fmt}", fmt, batch_rows=150, timestamp=STAMP)  # type: ignore[arg-type]
    out = tmp_path / "results" / f"dask.{fmt}"
    results = score_on_cluster(
        cluster,
        bundle,
        input_files(str(source)),
        out,
        fmt,
        batch_rows=150,
        timestamp=STAMP,  # type: ignore[arg-type]
    )
    assert results.parts == len(parts(out, fmt)) == 7  # 1000 rows in pieces of 150
    assert (results.scored, results.bad) == (single.scored, single.bad)
    assert results.rejects == {str(source): single.rejects}
    assert [r.row for r in single.rejects] == sorted(BAD)
    if fmt == "parquet":
        rows = [row for part in parts(out, fmt) for row in pq.read_table(part).to_pylist()]
        assert rows == pq.read_table(single.path).to_pylist()
    else:
        assert b"".join(p.read_bytes() for p in parts(out, fmt)) == single.path.read_bytes()
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary directory left


def test_many_rejects_are_streamed_to_the_rejects_file_as_one_process_writes_it(
    cluster: object, bundle: Bundle, bundled_data: Path, tmp_path: Path
) -> None:
    """Pieces with more than SENT_REJECTS rejects write them on the worker and the client streams
    them into the rejects file (it used to receive every reject at once): the same bytes as
    ``predict`` writes on one process, each file's count, and no staging directory left."""
    from preauth.cluster import SENT_REJECTS

    bad = {n: BAD[333] for n in range(2, 700, 2)}  # 349 bad rows (and one short one)
    bad[601] = BAD[600]
    (tmp_path / "in").mkdir()
    source = applications_csv(tmp_path / "in" / "apps.csv", bundled_data, 1000, bad)
    assert len(bad) > 2 * SENT_REJECTS  # pieces of 400 rows hold about 200 each: written by the workers
    single = score_file(
        bundle,
        source,
        tmp_path / "one" / "r.jsonl",
        "jsonl",
        batch_rows=150,
        rejects_path=tmp_path / "one" / "r.rejects.csv",
    )
    out = tmp_path / "results" / "dask.jsonl"
    results = score_on_cluster(
        cluster,
        bundle,
        [source],
        out,
        "jsonl",
        batch_rows=400,
        timestamp=STAMP,  # type: ignore[arg-type]
        rejects_names=lambda file: tmp_path / "results" / "dask.rejects.csv",
    )
    assert results.rejected == {str(source): len(bad)} == {str(source): single.rejected}
    assert (
        results.rejects_paths[str(source)].read_bytes() == (tmp_path / "one" / "r.rejects.csv").read_bytes()
    )
    assert results.rejects[str(source)] == single.rejects
    assert sorted(p.name for p in out.parent.iterdir()) == ["dask.jsonl", "dask.rejects.csv"]


def test_a_directory_of_csv_and_parquet_files(
    cluster: object, bundle: Bundle, bundled_data: Path, tmp_path: Path
) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    first = applications_csv(inputs / "a.csv", bundled_data, 300, {250: BAD[333]})
    second_csv = applications_csv(tmp_path / "b.csv", bundled_data, 500, {2: BAD[3], 410: BAD[801]})
    pd.read_csv(second_csv, dtype=str, keep_default_na=False).to_parquet(
        inputs / "b.parquet", row_group_size=100
    )
    files = input_files(str(inputs))
    assert files == [first, inputs / "b.parquet"]
    assert [p.number for p in plan(files, 200)] == list(range(5))  # 2 CSV pieces, 3 of 2 row groups or fewer
    out = tmp_path / "out.jsonl"
    results = score_on_cluster(cluster, bundle, files, out, "jsonl", batch_rows=200, timestamp=STAMP)
    expected = b""
    for file, rejects in results.rejects.items():
        single = score_file(
            bundle, Path(file), tmp_path / f"{Path(file).name}.jsonl", "jsonl", timestamp=STAMP
        )
        assert rejects == single.rejects
        expected += single.path.read_bytes()
    assert {Path(f).name: [r.row for r in rs] for f, rs in results.rejects.items()} == {
        "a.csv": [250],
        "b.parquet": [2, 410],
    }
    assert b"".join(p.read_bytes() for p in parts(out, "jsonl")) == expected


def test_a_bad_file_fails_the_job_and_leaves_no_directory(
    cluster: object, bundle: Bundle, tmp_path: Path
) -> None:
    source = tmp_path / "apps.csv"
    source.write_text("Age,Sex\n30,male\n")
    with pytest.raises(InputError, match="missing required column 'Job'"):
        score_on_cluster(cluster, bundle, [source], tmp_path / "out" / "r.parquet", "parquet")
    assert list((tmp_path / "out").iterdir()) == []
    with pytest.raises(InputError, match="no CSV or Parquet files here"):
        input_files(str(tmp_path / "nothing-*.csv"))


def test_a_csv_of_no_rows_is_refused_as_one_process_refuses_it(
    cluster: object, bundle: Bundle, tmp_path: Path
) -> None:
    """A header-only CSV used to be cut into no pieces at all: the job scored nothing, wrote an
    empty result directory and the command exited 0, where one process refuses the file."""
    source = tmp_path / "apps.csv"
    source.write_text(HEADER + "\n")
    with pytest.raises(InputError, match=r"apps.csv: no applications \(header only\)"):
        score_file(bundle, source, tmp_path / "one.parquet", "parquet")
    out = tmp_path / "out" / "r.parquet"
    with pytest.raises(InputError, match=r"apps.csv: no applications \(header only\)"):
        score_on_cluster(cluster, bundle, [source], out, "parquet")
    assert list(out.parent.iterdir()) == []


def test_a_file_changed_after_it_was_cut_is_refused(
    cluster: object, bundle: Bundle, bundled_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pieces are byte ranges of the file as it was when cut: truncated before the workers read
    it, the file used to lose the rest of a piece's rows without a word, and a piece past its new
    end failed as 'malformed CSV: Empty CSV file'."""
    import preauth.cluster as module

    source = applications_csv(tmp_path / "apps.csv", bundled_data, 1000, {})
    cut = module.plan

    def cut_then_truncate(files: list[Path], batch_rows: int) -> list[module.Piece]:
        pieces = cut(files, batch_rows)
        with source.open("r+b") as handle:
            handle.truncate(source.stat().st_size // 2)
        return pieces

    monkeypatch.setattr(module, "plan", cut_then_truncate)
    out = tmp_path / "out" / "r.parquet"
    with pytest.raises(
        InputError, match="apps.csv: the file changed after it was cut into pieces; run again"
    ):
        score_on_cluster(cluster, bundle, [source], out, "parquet", batch_rows=150)
    assert list(out.parent.iterdir()) == []


def test_relative_paths_are_the_clients_not_the_workers(
    cluster: object, bundle: Bundle, bundled_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers read the inputs and write the parts at the client's paths (README). Relative ones
    were sent as given and opened from each worker's own working directory: 'in/apps.csv: No such
    file or directory' from a cluster started elsewhere (or another file of that name there)."""
    (tmp_path / "in").mkdir()
    applications_csv(tmp_path / "in" / "apps.csv", bundled_data, 300, {7: BAD[333]})
    monkeypatch.chdir(tmp_path)  # the module's workers stay where they started
    files = input_files("in/apps.csv")
    results = score_on_cluster(cluster, bundle, files, Path("out/r.parquet"), "parquet", batch_rows=100)
    assert results.scored == 299 and len(parts(tmp_path / "out" / "r.parquet", "parquet")) == 3
    assert [(Path(f), [r.row for r in rs]) for f, rs in results.rejects.items()] == [
        (tmp_path / "in" / "apps.csv", [7])
    ]


def test_rows_the_model_cannot_score_fail_the_job_with_one_line_naming_them(
    cluster: object, bundle: Bundle, bundled_data: Path, tmp_path: Path
) -> None:
    """A worker whose booster raises sends the error back; the job names the piece's rows in the
    whole file (as one process does; row 600 is a reject, not among them), and leaves no directory."""
    import dataclasses

    import cloudpickle
    import refusing_booster
    from refusing_booster import MARKED_AGE, RefusingBooster

    from preauth.errors import ModelBundleError

    cloudpickle.register_pickle_by_value(refusing_booster)
    try:
        refusing = dataclasses.replace(
            bundle, booster=RefusingBooster(bundle.booster, bundle.features.index("Age"))
        )
        marked = "30,male,2,own,little,moderate,1000,12,car".replace("30", str(MARKED_AGE), 1)
        source = applications_csv(tmp_path / "apps.csv", bundled_data, 1000, {**BAD, 500: marked})
        ages = pd.read_csv(source)["Age"]
        assert (ages == MARKED_AGE).sum() == 1  # only the marked row: the bundled data has no 77
        out = tmp_path / "out" / "r.parquet"
        with pytest.raises(ModelBundleError) as failed:
            score_on_cluster(cluster, refusing, [source], out, "parquet", batch_rows=150, timestamp=STAMP)
        with pytest.raises(ModelBundleError) as alone:
            score_file(refusing, source, tmp_path / "one.parquet", "parquet", batch_rows=150, timestamp=STAMP)
    finally:
        cloudpickle.unregister_pickle_by_value(refusing_booster)
    assert (
        str(failed.value)
        == str(alone.value)
        == (
            f"{source}, rows 451-599: model {bundle.version} could not score them "
            "(Check failed: allocation of the prediction buffer)"
        )
    )
    assert list(out.parent.iterdir()) == []


def test_predict_dask_on_the_command_line(
    cluster: object, small_models_dir: Path, bundled_data: Path, tmp_path: Path
) -> None:
    source = applications_csv(tmp_path / "apps.csv", bundled_data, 400, {5: BAD[333]})
    address = cluster.scheduler.address  # type: ignore[attr-defined]
    out = tmp_path / "results"
    command = [sys.executable, "-m", "preauth", "--models-dir", str(small_models_dir), "predict"]
    result = subprocess.run(
        [
            *command,
            str(tmp_path / "*.csv"),
            "-o",
            str(out),
            "--format",
            "parquet",
            "--dask",
            address,
            "--batch-rows",
            "100",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert "399 scored" in result.stdout and "(4 parts)" in result.stdout
    assert f"{source}, row 5, column 'Housing': 'castle' is not one of" in result.stderr
    [directory] = out.glob("inference_results_*.parquet")
    assert sum(pq.read_table(p).num_rows for p in parts(directory, "parquet")) == 399
    [rejects] = out.glob("*.rejects.csv")
    assert pd.read_csv(rejects)["row"].tolist() == [5]
    refused = subprocess.run(
        [*command, str(source), "-o", str(out), "--format", "json", "--dask", "local:2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode == 2 and "choose --format parquet or jsonl or csv" in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.timeout(60)  # before: the silent port held the command for ever
def test_a_cluster_that_cannot_be_had_is_refused_in_one_line_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dask's client retried a refused port or an unknown host for 30 s, waited for ever on a port
    that accepts and never answers (its handshake has no timeout), raised ValueError on an address
    without a port, and ``local:99999`` started processes until the machine gave out."""
    import os
    import socket
    import time

    import distributed

    import preauth.cluster as module
    from preauth.cluster import connect
    from preauth.errors import ConfigurationError

    def no_cluster(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a LocalCluster was started: {kwargs}")

    monkeypatch.setattr(distributed, "LocalCluster", no_cluster)  # what local:99999 must never reach
    monkeypatch.setattr(module, "SCHEDULER_TIMEOUT", 2)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, says nothing
        port = silent.getsockname()[1]
        cases = {
            f"local:{4 * (os.cpu_count() or 1) + 1}": "the number of workers must be a whole number from 1 to",
            "tcp://127.0.0.1:1": "cannot reach the scheduler .*Connection refused",
            "tcp://nowhere.invalid:8786": "cannot reach the scheduler",
            "tcp://127.0.0.1": "cannot reach the scheduler .*missing port",
            f"tcp://127.0.0.1:{port}": "cannot reach the scheduler .no Dask handshake within 2 s",
        }
        for spec, words in cases.items():
            started = time.monotonic()
            with pytest.raises(ConfigurationError, match=f"--dask {re.escape(spec)}: {words}"), connect(spec):
                pass
            assert time.monotonic() - started < 5, spec


@pytest.mark.timeout(60)  # before: train --dask waited for ever
def test_a_scheduler_without_workers_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A scheduler with no worker takes the tasks and holds them: `train --dask` waited for ever,
    `predict --dask` failed after 10 s with Dask's 'No valid workers found'."""
    import time

    from distributed import LocalCluster

    import preauth.cluster as module
    from preauth.cluster import connect
    from preauth.errors import ConfigurationError

    monkeypatch.setattr(module, "SCHEDULER_TIMEOUT", 1)
    with LocalCluster(
        n_workers=0,
        processes=False,
        protocol="tcp://",
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    ) as empty:
        spec = empty.scheduler_address
        started = time.monotonic()
        with pytest.raises(ConfigurationError) as refused, connect(spec):
            pass
    assert str(refused.value) == f"--dask {spec}: the scheduler has no workers (none joined within 1 s)"
    assert time.monotonic() - started < 5


def test_a_local_cluster_beside_another_starts_without_a_word(cluster: object) -> None:
    """Two `--dask local` runs at once: the second's scheduler found its HTTP port (8787, taken by
    the first, here by the module's cluster or the socket below) and warned on stderr 'Port 8787 is
    already in use. Perhaps you already have a cluster running?' in the middle of the output."""
    import socket
    import warnings

    from preauth.cluster import connect

    with contextlib.ExitStack() as held:
        with contextlib.suppress(OSError):  # free: hold it as another cluster would
            held.enter_context(socket.create_server(("", 8787)))
        said = held.enter_context(warnings.catch_warnings(record=True))
        warnings.simplefilter("always")  # also what was said before, by the module's cluster
        with connect("local:1") as client:
            assert client.submit(sum, [1, 2]).result() == 3
    assert [str(w.message) for w in said if "already in use" in str(w.message)] == []


def test_the_booster_fit_on_the_cluster_is_the_single_process_one(
    cluster: object, bundled_risk: Path, tmp_path: Path
) -> None:
    import numpy as np
    import xgboost as xgb

    from preauth.applications import feature_columns, read_applications
    from preauth.bundles import save_bundle
    from preauth.features import encode, feature_types
    from preauth.training.on_dask import fit_booster_on_cluster

    applications = read_applications(bundled_risk)
    features = feature_columns()
    x = encode(applications.frame, features)
    y = (applications.frame["Risk"] == "bad").to_numpy().astype(np.float32)
    params = {"objective": "binary:logistic", "tree_method": "hist", "max_depth": 3, "eta": 0.1,
              "max_cat_to_onehot": 4, "seed": 0, "nthread": 1}  # fmt: skip
    booster = fit_booster_on_cluster(cluster, x, y, features, params, 40, partition_rows=250)  # 4 blocks
    single = xgb.train(
        params,
        xgb.QuantileDMatrix(
            x, y, feature_names=features, feature_types=feature_types(features), enable_categorical=True
        ),
        40,
    )
    assert booster.num_boosted_rounds() == 40
    np.testing.assert_allclose(booster.inplace_predict(x), single.inplace_predict(x), atol=1e-6)
    models = tmp_path / "models"
    save_bundle(models, booster, features=features, threshold=0.4, meta={"params": params, "metrics": {}})
    bundle = load_bundle(models)  # what serve and predict load: the same format
    np.testing.assert_allclose(bundle.predict_proba(x), single.inplace_predict(x), atol=1e-6)


# --------------------------------------------------------------------------------------------
# preauth train --dask

TRAINING = ("--target", "risk", "--trials", "2", "--folds", "3", "--no-progress")


@pytest.fixture(scope="module")
def labels(bundled_risk: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same 1000 labelled rows as one CSV, and as a directory (a Parquet file, then a CSV);
    row 7 has an unknown Housing value, row 650 too few fields (in the second file's piece)."""
    root = tmp_path_factory.mktemp("labels")
    lines = bundled_risk.read_text().splitlines()
    header, body = lines[0], lines[1:]
    fields = body[6].split(",")
    fields[header.split(",").index("Housing")] = "castle"
    body[6] = ",".join(fields)
    body[649] = ",".join(body[649].split(",")[:3])
    whole = root / "all.csv"
    whole.write_text("\n".join([header, *body]) + "\n")
    directory = root / "parts"
    directory.mkdir()
    (root / "a.csv").write_text("\n".join([header, *body[:600]]) + "\n")
    pd.read_csv(root / "a.csv", dtype=str, keep_default_na=False).to_parquet(
        directory / "a.parquet", row_group_size=100
    )
    (directory / "b.csv").write_text("\n".join([header, *body[600:]]) + "\n")
    return whole, directory


@pytest.fixture(scope="module")
def one_process(labels: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The single-machine bundle the Dask-trained ones are compared with."""
    from preauth.training import TrainingConfig, train_from_file

    config = TrainingConfig(trials=2, folds=3, target="risk", bootstrap=0)  # as TRAINING says
    return train_from_file(labels[0], config, tmp_path_factory.mktemp("one"), progress=False).bundle_path


def predictions(bundle: Path, data: Path) -> object:
    from preauth.applications import read_applications
    from preauth.features import encode

    loaded = load_bundle(bundle.parent, bundle.name)
    applications = read_applications(data, schema=loaded.schema)
    return loaded.predict_proba(encode(applications.frame, loaded.features, loaded.schema))


def test_train_dask_on_the_command_line_makes_the_single_process_bundle(
    cluster: object, labels: tuple[Path, Path], one_process: Path, bundled_data: Path, tmp_path: Path
) -> None:
    import numpy as np

    models = tmp_path / "models"
    address = cluster.scheduler.address  # type: ignore[attr-defined]
    command = [sys.executable, "-m", "preauth", "--models-dir", str(models)]
    done = subprocess.run(
        [*command, "train", str(labels[1]), *TRAINING, "--dask", address],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert "1000 rows, 998 used" in done.stdout
    assert "row 7, column 'Housing': 'castle' is not one of" in done.stderr
    assert "row 650: has 3 fields, the header has 11" in done.stderr
    [bundle] = models.iterdir()
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["training"]["engine"] == {
        "name": "dask", "scheduler": address, "workers": 2, "partition_rows": 100_000,
        "search_rows": 200_000, "sampled": False, "search_sample_rows": 998,
        "fit_rows": {"training part": 798, "all rows": 998},
    }  # fmt: skip
    single = json.loads((one_process / "bundle.json").read_text())
    assert single["training"]["engine"] == {"name": "one process"}
    for key in ("params", "threshold", "calibration", "data_fingerprint"):
        assert meta[key] == single[key], key
    assert {**meta["search"], "duration_s": 0} == {**single["search"], "duration_s": 0}
    # 999 rows are one block on one worker: the same sketch and the same trees as one process.
    assert np.array_equal(predictions(bundle, bundled_data), predictions(one_process, bundled_data))
    scored = score_file(
        load_bundle(models), bundled_data, tmp_path / "out.jsonl", "jsonl"
    )  # what predict runs
    assert scored.scored == 1000 and not scored.rejects


def test_train_on_dask_fits_across_both_workers(
    cluster: object, labels: tuple[Path, Path], one_process: Path, bundled_data: Path, tmp_path: Path
) -> None:
    import numpy as np

    from preauth.training import TrainingConfig, train_from_file
    from preauth.training.on_dask import ClusterTraining

    config = TrainingConfig(trials=2, folds=3, target="risk", bootstrap=0)
    result = train_from_file(
        str(labels[1]),
        config,
        tmp_path / "models",
        progress=False,
        cluster=ClusterTraining(cluster, "local:2", partition_rows=250),  # 4 blocks, 2 on each worker
    )
    assert [r.split(": ", 1)[1] for r in result.rejects] == [
        r.split(": ", 1)[1]
        for r in json.loads((one_process / "bundle.json").read_text())["label_provenance"]["rejected_rows"]
    ]
    meta = json.loads((result.bundle_path / "bundle.json").read_text())
    single = json.loads((one_process / "bundle.json").read_text())
    for key in ("params", "threshold", "calibration"):
        assert meta[key] == single[key], key  # the search, calibration and threshold ran on the client
    # Each worker draws its own row sample (subsample < 1) and the workers' histograms are summed,
    # so the trees are not the single process's: close, not equal (the exact case, with every row
    # in each tree, is test_the_booster_fit_on_the_cluster_is_the_single_process_one).
    difference = np.abs(
        predictions(result.bundle_path, bundled_data) - predictions(one_process, bundled_data)
    )
    assert float(np.max(difference)) < 0.1 and float(np.mean(difference)) < 0.02
    auc, single_auc = meta["metrics"]["holdout"]["roc_auc"], single["metrics"]["holdout"]["roc_auc"]
    assert abs(auc - single_auc) < 0.03


# --------------------------------------------------------------------------------------------
# preauth train --dask on more rows than the train process may hold (--search-rows)


def _die_once_boosting(dask_worker: Any) -> None:
    """Run on a worker: a thread that kills this worker's process with SIGKILL 1.5 s after an
    xgboost training task starts executing on it."""
    import os
    import signal
    import threading
    import time

    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            # xgboost.dask submits its training function wrapped, under the key "fn-<uuid>"
            if any(str(task.key).startswith("fn-") for task in dask_worker.state.executing):
                time.sleep(1.5)
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(0.02)

    threading.Thread(target=watch, daemon=True).start()


@pytest.mark.timeout(180)
def test_a_worker_killed_while_a_booster_is_fit_stops_the_run_in_one_line() -> None:
    """xgboost.dask cannot lose a worker mid-fit: a worker killed with -9 ended `train --dask` in an
    XGBoostError's or ValueError's traceback ('Resilience is not yet supported'). It is one line
    saying the cluster lost a worker (the run writes no bundle: the fit comes before it)."""
    import numpy as np
    from distributed import Client

    from preauth.errors import ClusterError
    from preauth.training.on_dask import fit_booster_on_cluster

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40_000, 4)).astype(np.float32)
    y = (x[:, 0] + rng.normal(size=len(x)) > 0).astype(np.float32)
    params = {"objective": "binary:logistic", "tree_method": "hist", "max_depth": 6}
    # a cluster of its own: the module's keeps its workers for the other tests
    with (
        two_workers() as local,
        Client(local) as client,
    ):
        victim = sorted(client.scheduler_info()["workers"])[0]
        # The worker kills itself once xgboost's training task has run 1.5 s on it, so inside the
        # rounds (3,000 take far longer). A timer started before the fit landed, under load,
        # before the fit (Dask restarted the worker and the fit succeeded) or as the workers joined
        # XGBoost's tracker, whose own thread then aborts the process that holds the scheduler
        # (xgboost's limitation, in the README).
        client.run(_die_once_boosting, workers=[victim])
        with pytest.raises(ClusterError) as lost:
            fit_booster_on_cluster(client, x, y, ["Age", "Job", "Credit amount", "Duration"], params, 3000,
                                   partition_rows=20_000)  # fmt: skip
    message = str(lost.value)
    assert message.startswith("the Dask cluster lost 1 of its 2 workers while fitting (")
    assert message.endswith("); nothing was written, run again") and "\n" not in message


@pytest.fixture(scope="module")
def big_labels(bundled_risk: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,200 labelled rows in three files (a CSV, a Parquet file, a CSV), each a piece of its own;
    row 850 (the third file's 50th) has an unknown Housing value, row 1100 too few fields."""
    root = tmp_path_factory.mktemp("big")
    lines = bundled_risk.read_text().splitlines()
    header, body = lines[0], lines[1:]
    rows = [body[i % len(body)] for i in range(1200)]
    fields = rows[849].split(",")
    fields[header.split(",").index("Housing")] = "castle"
    rows[849] = ",".join(fields)
    rows[1099] = ",".join(rows[1099].split(",")[:3])
    directory = root / "labels"
    directory.mkdir()
    (directory / "a.csv").write_text("\n".join([header, *rows[:400]]) + "\n")
    (root / "b.csv").write_text("\n".join([header, *rows[400:800]]) + "\n")
    pd.read_csv(root / "b.csv", dtype=str, keep_default_na=False).to_parquet(
        directory / "b.parquet", row_group_size=100
    )
    (directory / "c.csv").write_text("\n".join([header, *rows[800:]]) + "\n")
    (root / "whole.csv").write_text("\n".join([header, *rows]) + "\n")  # the same rows in one file
    return directory


def test_train_dask_holds_a_sample_here_and_fits_every_row_on_the_workers(
    cluster: object, big_labels: Path, bundled_data: Path, tmp_path: Path
) -> None:
    import numpy as np

    from preauth.referral import seen_in_training
    from preauth.training import TrainingConfig, load_labels, train_from_file
    from preauth.training.on_dask import ClusterTraining

    config = TrainingConfig(trials=2, folds=3, target="risk", bootstrap=0)
    training = ClusterTraining(cluster, "local:2", search_rows=300)
    held = training.load(str(big_labels), config)
    try:
        sample = held.data.sample
        assert sample is not None and len(held.data.y) == len(held.data.frame) == 300
        assert sample.rows == 1198 and held.data.counts["used"] == 1198
        assert held.data.counts["rows"] == 1200 and held.data.counts["rejected"] == 2
        # Each row's holdout flag is the workers' per-row draw: the sample's agrees with the whole.
        assert 0.1 < sample.holdout_rows / sample.rows < 0.3
        assert abs(float(np.mean(sample.holdout)) - sample.holdout_rows / sample.rows) < 0.08
    finally:
        held.release()

    result = train_from_file(str(big_labels), config, tmp_path / "models", progress=False, cluster=training)
    meta = json.loads((result.bundle_path / "bundle.json").read_text())
    rows = meta["training"]["rows"]
    assert rows["shipped_model"] == 1198 and rows["train"] + rows["holdout"] == 1198
    engine = meta["training"]["engine"]
    assert engine["sampled"] is True and engine["search_sample_rows"] == 300
    # DaskQuantileDMatrix got every row of each part from the workers, not the sample's.
    assert engine["fit_rows"] == {"training part": rows["train"], "all rows": 1198}
    holdout = meta["metrics"]["holdout"]
    assert holdout["n"] < 100 and f"seeded sample of the {rows['holdout']} holdout rows" in holdout["rows"]
    assert "refit on all 1198 rows" in meta["metrics"]["refit"]["shipped_model"]
    assert "300-row seeded sample of the 1198 rows" in meta["reference"]["source"]
    # The refer rule's ranges and levels are the whole input's, as one process finds them.
    whole = load_labels(big_labels.parent / "whole.csv", "risk")
    assert meta["seen"] == seen_in_training(whole.frame, result.features, whole.schema)
    assert len(pd.read_parquet(result.bundle_path / "holdout.parquet")) == holdout["n"]
    assert [re.search(r", row (\d+)", r).group(1) for r in result.rejects] == ["850", "1100"]  # type: ignore[union-attr]

    bundle = load_bundle(tmp_path / "models")  # what predict and serve load
    scored = score_file(bundle, bundled_data, tmp_path / "out.jsonl", "jsonl")
    assert scored.scored == 1000 and not scored.rejects
    assert 0 < scored.bad < 1000


def test_train_dask_on_the_command_line_names_rejects_by_their_row_in_the_whole_input(
    cluster: object, big_labels: Path, bundled_data: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    address = cluster.scheduler.address  # type: ignore[attr-defined]
    command = [sys.executable, "-m", "preauth", "--models-dir", str(models)]
    done = subprocess.run(
        [*command, "train", str(big_labels), *TRAINING, "--dask", address, "--search-rows", "300"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert "1200 rows, 1198 used" in done.stdout
    assert f"{big_labels}, row 850, column 'Housing': 'castle' is not one of" in done.stderr
    assert f"{big_labels}, row 1100: has 3 fields, the header has 11" in done.stderr
    assert "Traceback" not in done.stderr
    predicted = subprocess.run(
        [*command, "predict", str(bundled_data), "-o", str(tmp_path / "out"), "--format", "csv"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert predicted.returncode == 0, predicted.stderr
    [results] = (tmp_path / "out").glob("inference_results_*.csv")
    assert len(pd.read_csv(results)) == 1000
    served = serve_one(command, tmp_path)
    [bundle] = models.iterdir()
    assert served["model_version"] == bundle.name and served["decision"] in {"approve", "decline", "refer"}
    assert 0 <= served["probability"] <= 1  # type: ignore[operator]


def serve_one(command: list[str], tmp_path: Path) -> dict[str, object]:
    """Start ``preauth serve`` on the models directory and decide the schema's example application."""
    import socket
    import time

    import httpx

    from preauth.applications import example_application

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = subprocess.Popen(
        [*command, "serve", "--port", str(port), "--no-access-log",
         "--database-url", f"sqlite:///{tmp_path / 'decisions.db'}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/v1/decisions", json=example_application())
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())
    finally:
        server.terminate()
        server.wait(15)


def test_train_dask_refuses_truth_before_reading(cluster: object, big_labels: Path, tmp_path: Path) -> None:
    from preauth.errors import ConfigurationError
    from preauth.training import TrainingConfig, train_from_file
    from preauth.training.on_dask import ClusterTraining

    with pytest.raises(ConfigurationError, match="--truth joins the whole labels file"):
        train_from_file(
            str(big_labels),
            TrainingConfig(trials=2, folds=3),
            tmp_path / "models",
            progress=False,
            truth=big_labels / "a.csv",
            cluster=ClusterTraining(cluster, "local:2"),
        )
    assert not (tmp_path / "models").exists()


# --------------------------------------------------------------------------------------------
# preauth train --dask on hostile files cut in small pieces: every row numbered as before


PIECE_ROWS = 20
"""CSV lines or Parquet rows per piece in the tests below: each file is several pieces."""


@pytest.fixture(scope="module")
def hostile_labels(bundled_risk: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four files of labelled rows (``target`` from Risk) with bad rows in several pieces of each:

    * ``a.csv``: a byte-order mark, blank lines, a CRLF line, a quoted newline right where a cut by
      lines would fall (the cut moves to the row's end) and one inside a piece, no newline at the end;
    * ``b.parquet``: row groups of 30 rows, bad values in three of them, an empty label;
    * ``c.csv``: a header and blank lines only (a piece of no rows);
    * ``d.csv``: ``;``-separated, its header spelled in lower case, a line holding two rows split
      by a lone CR, a line of spaces, bad values.
    """
    root = tmp_path_factory.mktemp("hostile")
    lines = bundled_risk.read_text().splitlines()
    names, body = [*lines[0].split(","), "target"], lines[1:]

    def row(i: int, changes: dict[str, str] | None = None) -> list[str]:
        fields = body[i % len(body)].split(",")
        fields.append("bad risk" if fields[-1] == "bad" else "good risk")
        for name, value in (changes or {}).items():
            fields[names.index(name)] = value
        return fields

    a = [",".join(row(i)) for i in range(50)]
    a[5] = ",".join(row(5, {"Housing": "castle"}))
    a[6] = a[8] = ""
    a[9] = ",".join(row(9, {"target": "maybe"}))
    a[19] = ",".join(row(19, {"Purpose": '"radio/\nTV"'}))  # its newline is the data's 20th: a cut
    a[20] += "\r"
    a[21] = ",".join(row(21)[:4])
    a[34] = ",".join(row(34, {"Purpose": '"business\nloan"'}))  # the data's 36th newline: no cut
    a[45] = ",".join(row(45, {"Age": "150"}))
    directory = root / "labels"
    directory.mkdir()
    (directory / "a.csv").write_bytes(("\ufeff" + ",".join(names) + "\n" + "\n".join(a)).encode())

    b = [row(100 + i) for i in range(100)]
    b[2] = row(102, {"Housing": "castle"})
    b[39] = row(139, {"target": ""})
    b[64] = row(164, {"target": "maybe"})
    b[94] = row(194, {"Age": "150"})
    pd.DataFrame(b, columns=names).to_parquet(directory / "b.parquet", row_group_size=30)

    (directory / "c.csv").write_text(",".join(names) + "\n\n\n\n")

    d = [";".join(row(300 + i)) for i in range(60)]
    d[3] = ";".join(row(303, {"Job": "9"}))
    d[10] = d[10] + "\r" + ";".join(row(410, {"Duration": "soon"}))
    d[25] = "   "
    d[41] = ";".join(row(341, {"target": "maybe"}))
    d[58] = ";".join(row(358, {"Checking account": "vast"}))
    (directory / "d.csv").write_text(";".join(n.lower() for n in names) + "\n" + "\n".join(d) + "\n")
    return directory


def numbered_in_one_pass(source: Path, config: object) -> tuple[list[str], list[object], list[str]]:
    """The rejects, each piece's row numbers and fingerprints as ``train --dask`` made them before
    it checked pieces apart: every piece read first, then each numbered after the pieces before it."""
    from preauth.applications import GERMAN
    from preauth.cluster import read_piece
    from preauth.training.data import data_fingerprint, label_rows

    pieces = plan(input_files(str(source)), PIECE_ROWS)
    tables = [read_piece(piece) for piece in pieces]
    first, rejects, rows, fingerprints = 1, [], [], []
    for table in tables:
        if len(table):
            table.columns = pd.Index([GERMAN.canonical_column(str(c)) or str(c) for c in table.columns])
            labeled = label_rows(table, str(source), config.target, first_row=first)  # type: ignore[attr-defined]
            rejects += labeled.tally.rejects
            rows.append(labeled.frame.index)
            fingerprints.append(data_fingerprint(labeled.frame, labeled.y))
        first += len(table)
    return rejects, rows, fingerprints


def test_train_dask_numbers_the_rows_of_hostile_files_as_when_every_piece_was_read_first(
    cluster: object, hostile_labels: Path
) -> None:
    """Pieces checked apart and numbered afterwards give every reject, row number, holdout flag and
    fingerprint that numbering after reading every piece gave, across CSV and Parquet pieces."""
    import numpy as np

    from preauth.training import TrainingConfig
    from preauth.training.on_dask import ClusterTraining
    from preauth.training.rows import in_holdout

    config = TrainingConfig(target="llm", seed=11)
    pieces = plan(input_files(str(hostile_labels)), PIECE_ROWS)
    ends = [
        Path(p.path).read_bytes()[p.start : p.end]
        for p in pieces
        if p.kind == "csv" and p.path.endswith("a.csv")
    ]
    # a.csv's quoted value "radio/\nTV" sits where a cut by lines would fall: pieces end at row ends
    assert not any(end.count(b'"') % 2 for end in ends) and any(b'"radio/\nTV"' in end for end in ends)
    assert len(pieces) == 3 + 4 + 1 + 3  # a.csv 52 lines, b.parquet 4 row groups, c.csv, d.csv 60 lines

    expected_rejects, expected_rows, fingerprints = numbered_in_one_pass(hostile_labels, config)
    training = ClusterTraining(cluster, "local:2", search_rows=100, piece_rows=PIECE_ROWS)
    held = training.load(str(hostile_labels), config)
    try:
        placed = cluster.gather(held.pieces)  # type: ignore[attr-defined]
        sample = held.data.sample
    finally:
        held.release()
    assert held.data.rejects == expected_rejects
    assert [list(p.labeled.frame.index) for p in placed] == [list(rows) for rows in expected_rows]
    for piece in placed:
        rows = piece.labeled.frame.index.to_numpy()
        assert np.array_equal(piece.holdout, in_holdout(rows, config.holdout_fraction, config.seed))
    assert [s.fingerprint for s in held.summaries] == fingerprints
    assert sample is not None and sample.rows == sum(len(rows) for rows in expected_rows)
    every = np.concatenate([rows.to_numpy() for rows in expected_rows])
    assert np.isin(held.data.frame.index.to_numpy(), every).all()
    assert np.array_equal(sample.holdout, in_holdout(held.data.frame.index.to_numpy(), 0.2, 11))
    # The bad rows are in several pieces of every file but c.csv, numbered past the files before:
    # a.csv's blank lines are no rows, each quoted value holding a newline is one row (even where a
    # cut by lines would fall), d.csv's lone CR splits one.
    numbers = [int(re.search(r", row (\d+)", r).group(1)) for r in expected_rejects]  # type: ignore[union-attr]
    assert numbers == [6, 18, 8, 20, 33, 44, 51, 113, 143, 152, 160, 175, 208, 191]
    assert [n for n, r in zip(numbers, expected_rejects, strict=True) if ": has " in r] == [20, 175]
    assert "row 18, column 'Purpose': 'radio/\nTV' is not one of" in expected_rejects[1]


def test_train_dask_on_files_of_no_rows_says_so(cluster: object, tmp_path: Path) -> None:
    from preauth.training import TrainingConfig
    from preauth.training.on_dask import ClusterTraining

    (tmp_path / "a.csv").write_text(HEADER + ",target\n\n\n")
    (tmp_path / "b.csv").write_text(HEADER + ",target\n")
    with pytest.raises(InputError, match=r"no applications \(header only\)"):
        ClusterTraining(cluster, "local:2").load(str(tmp_path), TrainingConfig())


def test_train_dask_names_the_file_a_column_is_missing_from(
    cluster: object, bundled_risk: Path, tmp_path: Path
) -> None:
    """Among several files, one without a column was refused in the name of the whole input
    ('labels/: missing required column 'Job''), leaving the user to find which file it was."""
    from preauth.training import TrainingConfig
    from preauth.training.on_dask import ClusterTraining

    labels = pd.read_csv(bundled_risk, dtype=str, keep_default_na=False).drop(columns=["Unnamed: 0"])
    labels.to_csv(tmp_path / "a.csv", index=False)
    labels.drop(columns=["Job"]).to_parquet(tmp_path / "b.parquet")
    with pytest.raises(InputError) as refused:
        ClusterTraining(cluster, "local:2").load(str(tmp_path), TrainingConfig(target="risk"))
    assert str(refused.value) == f"{tmp_path / 'b.parquet'}: missing required column 'Job'"


def test_a_silent_scheduler_is_refused_from_inside_a_running_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The handshake check once called asyncio.run, which raises RuntimeError in a caller that is
    already inside an event loop (a notebook; in this suite, a test after one that left its loop
    running): a library user got asyncio's error instead of the one line about the scheduler."""
    import asyncio
    import socket
    from concurrent.futures import ThreadPoolExecutor

    import preauth.cluster as module
    from preauth.cluster import connect
    from preauth.errors import ConfigurationError

    monkeypatch.setattr(module, "SCHEDULER_TIMEOUT", 1)

    async def inside_a_loop(spec: str) -> str:
        try:
            with connect(spec):
                return "connected"
        except ConfigurationError as error:
            return str(error)

    with socket.create_server(("127.0.0.1", 0)) as silent:
        spec = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        # A thread of its own for the test's loop: in this suite the main thread may already run
        # one (Playwright's), the very case the check must survive.
        with ThreadPoolExecutor(max_workers=1) as pool:
            said = pool.submit(asyncio.run, inside_a_loop(spec)).result()
    assert said.endswith(f"--dask {spec}: cannot reach the scheduler (no Dask handshake within 1 s)"), said
