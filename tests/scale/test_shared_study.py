"""One Optuna study in PostgreSQL, tuned by two `preauth train` processes: the trials add up exactly."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TRIALS = 12
KILLED_TRIALS = 4


@pytest.fixture
def storage() -> Iterator[str]:
    """A schema of its own on the local PostgreSQL server, dropped afterwards."""
    import psycopg

    admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True, connect_timeout=3)
    schema = f"preauth_study_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG}?options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()


def train(models: Path, data: Path, *options: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "preauth", "--models-dir", str(models), "train", str(data),
               "--target", "risk", "--trials", str(TRIALS), "--folds", "3", "--no-progress", *options]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_processes_tune_one_study_and_one_makes_the_bundle(
    storage: str, bundled_risk: Path, tmp_path: Path
) -> None:
    import optuna

    models = tmp_path / "models"
    owner = train(models, bundled_risk, "--study-storage", storage, "--study-name", "s1")
    joiner = train(tmp_path / "joiner-models", bundled_risk, "--study-storage", storage, "--join-study", "s1")
    joined_out, joined_err = joiner.communicate(timeout=600)
    owner_out, owner_err = owner.communicate(timeout=600)
    assert joiner.returncode == 0, joined_err
    assert owner.returncode == 0, owner_err

    study = optuna.load_study(study_name="s1", storage=storage)
    # --trials counts completed trials (pruned ones are cheap and do not use up the budget), and
    # the processes together complete exactly that many.
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == TRIALS
    assert all(
        t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in study.trials
    )
    by_worker = Counter(t.user_attrs["worker"].rsplit(":", 1)[1] for t in study.trials)
    assert set(by_worker) == {str(owner.pid), str(joiner.pid)}  # both took part
    ran = by_worker[str(joiner.pid)]
    assert f"this process ran {ran} of the study's {TRIALS} trials" in joined_out
    assert not (tmp_path / "joiner-models").exists()  # a joiner makes no bundle

    [bundle] = models.iterdir()
    trials = pd.read_csv(bundle / "trials.csv")
    assert trials["number"].tolist() == list(range(len(study.trials)))
    summary = json.loads((bundle / "bundle.json").read_text())["search"]
    assert summary["n_trials"] == len(study.trials) and summary["n_complete"] == TRIALS
    assert summary["best_trial"] == study.best_trial.number  # the best of both processes' trials


def test_a_study_needs_postgresql_and_one_role(tmp_path: Path, bundled_risk: Path) -> None:
    sqlite = train(tmp_path, bundled_risk, "--study-storage", "sqlite:///x.db", "--study-name", "s")
    _, err = sqlite.communicate(timeout=120)
    assert sqlite.returncode == 2 and "--study-storage must be a PostgreSQL URL" in err
    both = train(tmp_path, bundled_risk, "--study-storage", PG, "--study-name", "s", "--join-study", "s")
    _, err = both.communicate(timeout=120)
    assert both.returncode == 2 and "either --study-name or --join-study" in err
    unreachable = train(tmp_path, bundled_risk, "--study-storage", "postgresql+psycopg://nobody@127.0.0.1:9/x",
                        "--study-name", "s")  # fmt: skip
    _, err = unreachable.communicate(timeout=120)
    assert unreachable.returncode == 2 and "--study-storage: cannot open the study" in err
    assert "Traceback" not in err


@pytest.mark.timeout(60)  # before: waited for ever
def test_a_storage_that_never_answers_is_refused_in_one_line_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A study URL at a port that accepts and says nothing (a firewall's proxy, another service)
    held `preauth train` for ever: psycopg waits for the server's first answer without a limit."""
    import socket

    from preauth.errors import ConfigurationError
    from preauth.training import shared_study as module
    from preauth.training.shared_study import open_study, shared_study

    monkeypatch.setattr(module, "CONNECT_TIMEOUT", 1)
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{silent.getsockname()[1]}/test"
        started = time.monotonic()
        with pytest.raises(ConfigurationError) as refused, shared_study(url, "s", joining=True):
            open_study(None, None, "s")
    assert time.monotonic() - started < 5
    assert str(refused.value).startswith("--study-storage: cannot open the study (")
    assert "\n" not in str(refused.value)


@pytest.mark.timeout(120)
def test_a_joiner_of_a_study_nobody_started_stops_and_one_started_late_is_joined(
    storage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mistyped --join-study created a study of that name and ran the whole search in it alone,
    with no --study-name process ever to make a bundle. Now it waits OWNER_WAIT for the study or
    its owner (machines started together), then stops in one line naming the studies there."""
    import threading

    import optuna

    from preauth.errors import ConfigurationError
    from preauth.training import shared_study as module
    from preauth.training.shared_study import open_study, shared_study

    monkeypatch.setattr(module, "OWNER_WAIT", 1.0)
    with shared_study(storage, "credit", joining=False):  # an owner's study, now finished
        open_study(None, None, "credit")
    started = time.monotonic()
    with pytest.raises(ConfigurationError) as refused, shared_study(storage, "credti", joining=True):
        open_study(None, None, "credti")
    assert 1 <= time.monotonic() - started < 10
    assert str(refused.value) == (
        "no study 'credti' in --study-storage, and no --study-name process started it within 1 s: "
        "start `--study-name credti` first, or check the name; the studies there: credit"
    )
    assert optuna.study.get_all_study_names(storage) == ["credit"]  # nothing created for the typo

    # An owner that starts while the joiner waits: the joiner goes on into the owner's study.
    monkeypatch.setattr(module, "OWNER_WAIT", 30.0)
    owner_in, release = threading.Event(), threading.Event()

    def owner() -> None:
        time.sleep(1)
        with shared_study(storage, "late", joining=False):
            owner_in.set()
            release.wait(60)

    thread = threading.Thread(target=owner)
    thread.start()
    try:
        with shared_study(storage, "late", joining=True):
            joined = open_study(None, None, "late")
        assert owner_in.is_set() and joined.study_name == "late"
    finally:
        release.set()
        thread.join()


def test_a_process_searching_otherwise_is_refused_before_it_adds_a_trial(
    storage: str, bundled_risk: Path, tmp_path: Path
) -> None:
    """A joiner with another seed, labels file or --trials used to add its trials to the study
    without a word: trials scored on other rows or folds, compared as if alike, the best of them
    refit by the owner (and a larger --trials kept the owner waiting for the joiner's extra ones)."""
    import optuna

    owner = train(
        tmp_path / "models", bundled_risk, "--study-storage", storage, "--study-name", "o", "--trials", "2"
    )
    _, err = owner.communicate(timeout=300)
    assert owner.returncode == 0, err
    fewer = tmp_path / "fewer.csv"
    pd.read_csv(bundled_risk).head(600).to_csv(fewer, index=False)
    cases = [
        (bundled_risk, ("--seed", "7"), "--seed 7 here, 42 in the study"),
        (bundled_risk, ("--trials", "5"), "--trials 5 here, 2 in the study"),
        (bundled_risk, ("--folds", "4"), "--folds 4 here, 3 in the study"),
        (bundled_risk, ("--exclude", "Age"), "the features (--exclude, --include or --schema)"),
        (fewer, (), "the training rows (labels file"),
    ]
    joiners = {  # all at once: each is refused before its search
        words: train(tmp_path / "j", labels, "--study-storage", storage, "--join-study", "o", "--trials", "2", *options)
        for labels, options, words in cases
    }  # fmt: skip
    for words, joiner in joiners.items():
        _, err = joiner.communicate(timeout=300)
        assert joiner.returncode == 2 and "study 'o' was searched with other settings: " in err, err
        assert words in err and "Traceback" not in err and len(err.splitlines()) == 1
    study = optuna.load_study(study_name="o", storage=storage)
    assert {t.user_attrs["worker"].rsplit(":", 1)[1] for t in study.trials} == {str(owner.pid)}
    same = train(
        tmp_path / "j", bundled_risk, "--study-storage", storage, "--join-study", "o", "--trials", "2"
    )
    out, err = same.communicate(timeout=300)
    assert same.returncode == 0 and "this process ran 0 of the study's 2 trials" in out, err


def test_a_study_has_one_owner_at_a_time(storage: str) -> None:
    """Two --study-name processes of one study each waited for every trial and each wrote a
    bundle from them. The second is refused while the first runs; a joiner is not, and once the
    first is gone (done or killed: its connection, and the lock with it) an owner may start again."""
    from preauth.errors import ConfigurationError
    from preauth.training.shared_study import shared_study

    with shared_study(storage, "w", joining=False):
        with pytest.raises(ConfigurationError) as refused, shared_study(storage, "w", joining=False):
            pass
        with shared_study(storage, "w", joining=True), shared_study(storage, "other", joining=False):
            pass
    assert str(refused.value) == (
        "study 'w' already has its --study-name process running (it makes the bundle); "
        "add this one with --join-study w"
    )
    with shared_study(storage, "w", joining=False):
        pass


def test_an_owner_whose_lock_went_with_its_connection_still_finishes(storage: str) -> None:
    """The ownership lock's connection is held for the whole run; one the server dropped meanwhile
    (a restart, an idle timeout) made the unlock at the end raise, after the bundle was written."""
    from preauth.training import shared_study as module
    from preauth.training.shared_study import shared_study

    with shared_study(storage, "r", joining=False) as shared, module._connection(shared) as other:
        key = module._lock_key(other, shared, "owner")
        ended = other.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks "
            "WHERE locktype = 'advisory' AND granted AND objid::bigint = %s",
            (key,),
        ).fetchall()
        assert ended == [(True,)]


def test_a_joiner_killed_mid_trial_is_failed_and_its_trial_run_again(
    storage: str, bundled_risk: Path, tmp_path: Path
) -> None:
    import optuna

    running = optuna.trial.TrialState.RUNNING
    stuck: list[int] = []
    # The study exists before its owner runs (a joiner refuses a study nobody started); the joiner
    # records its settings in it and dies mid-trial, then the owner comes.
    optuna.create_study(study_name="k", storage=storage, direction="maximize")
    for _ in range(3):  # the kill lands between two trials now and then: then the study has none stuck
        joiner = train(tmp_path / "joiner-models", bundled_risk, "--study-storage", storage, "--join-study", "k",
                       "--trials", str(KILLED_TRIALS))  # fmt: skip
        mine = f":{joiner.pid}"
        deadline = time.monotonic() + 120
        while not stuck and time.monotonic() < deadline and joiner.poll() is None:
            with contextlib.suppress(KeyError):  # not created yet
                study = optuna.load_study(study_name="k", storage=storage)
                stuck = [t.number for t in study.get_trials(states=(running,))
                         if t.user_attrs.get("worker", "").endswith(mine)]  # fmt: skip
            if stuck:
                os.kill(joiner.pid, signal.SIGKILL)  # mid-trial: no chance to tell anyone
        joiner.communicate(timeout=60)
        study = optuna.load_study(study_name="k", storage=storage)
        stuck = [t.number for t in study.get_trials(states=(running,))]
        if stuck:
            break
    assert len(stuck) == 1 and joiner.returncode == -signal.SIGKILL

    models = tmp_path / "models"
    owner = train(models, bundled_risk, "--study-storage", storage, "--study-name", "k",
                  "--trials", str(KILLED_TRIALS))  # fmt: skip
    _, owner_err = owner.communicate(timeout=600)  # without heartbeats: waits for the dead trial forever
    assert owner.returncode == 0, owner_err
    study = optuna.load_study(study_name="k", storage=storage)
    states = Counter(t.state.name for t in study.trials)
    assert study.trials[stuck[0]].state == optuna.trial.TrialState.FAIL
    assert states["COMPLETE"] == KILLED_TRIALS and states["RUNNING"] == 0 and states["FAIL"] == 1
    [bundle] = models.iterdir()
    summary = json.loads((bundle / "bundle.json").read_text())["search"]
    assert summary["n_complete"] == KILLED_TRIALS and summary["n_trials"] == len(study.trials)


def test_a_trial_failed_by_another_process_while_it_ran_is_dropped_and_refilled(storage: str) -> None:
    import optuna

    from preauth.training.shared_study import open_study, run_trials, shared_study

    other_process = optuna.storages.RDBStorage(storage)
    with shared_study(storage, "d", joining=False):
        study = open_study(optuna.samplers.RandomSampler(seed=0), optuna.pruners.NopPruner(), "d")

        def objective(trial: optuna.Trial) -> float:
            if trial.number == 0:  # what fail_stale_trials in another process does to a silent trial
                other_process.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
            trial.set_user_attr("n_rounds", 1)  # refused now that the trial is finished
            return 0.5

        run_trials(study, objective, trials=3, timeout=None, callbacks=[])
    try:
        assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE", "COMPLETE", "COMPLETE"]
    finally:
        # Close the pooled connections here: left to the garbage collector, psycopg warns about
        # them in whichever test runs next.
        other_process.engine.dispose()
        study._storage._backend.engine.dispose()


def test_a_trial_interrupted_with_ctrl_c_is_failed_at_once(storage: str) -> None:
    """Ctrl-C in a shared study's trial left it RUNNING: the owner (or the owner run again) waited
    out the grace period for a process that was still alive and had said it stopped."""
    import optuna

    from preauth.training.shared_study import open_study, run_trials, shared_study

    def objective(trial: optuna.Trial) -> float:
        raise KeyboardInterrupt

    with shared_study(storage, "c", joining=False):
        study = open_study(optuna.samplers.RandomSampler(seed=0), optuna.pruners.NopPruner(), "c")
        try:
            with pytest.raises(KeyboardInterrupt):
                run_trials(study, objective, trials=2, timeout=None, callbacks=[])
            assert [t.state.name for t in study.get_trials(deepcopy=False)] == ["FAIL"]
        finally:
            study._storage._backend.engine.dispose()


def test_a_claimed_trial_has_beaten_before_its_process_is_named(
    storage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Optuna fails only trials that have a heartbeat: one claimed by a process killed before its
    heartbeat thread's first beat would stay running for ever (and the owner wait for it). So the
    first beat is recorded with the claim, before the trial names its process."""
    import optuna
    import sqlalchemy as sa

    from preauth.training.shared_study import open_study, run_trials, shared_study

    beaten: list[bool] = []
    real = optuna.Trial.set_user_attr

    def set_user_attr(trial: optuna.Trial, key: str, value: object) -> None:
        if key == "worker":
            with sa.create_engine(storage).connect() as connection:
                beats = connection.execute(
                    sa.text("SELECT count(*) FROM trial_heartbeats WHERE trial_id = :id"),
                    {"id": trial._trial_id},
                ).scalar_one()
            beaten.append(beats == 1)
        real(trial, key, value)

    monkeypatch.setattr(optuna.Trial, "set_user_attr", set_user_attr)
    with shared_study(storage, "h", joining=False):
        study = open_study(optuna.samplers.RandomSampler(seed=0), optuna.pruners.NopPruner(), "h")
        try:
            run_trials(study, lambda trial: 0.5, trials=2, timeout=None, callbacks=[])
        finally:
            study._storage._backend.engine.dispose()
    assert beaten == [True, True]


def test_a_trial_that_never_beat_is_failed_after_the_grace_period_and_refilled(
    storage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process killed between claiming a trial and its first beat leaves a running trial with no
    heartbeat, which Optuna's own check never fails: the owner fails it once the grace period is
    over, runs one in its place, and finishes instead of waiting for ever."""
    import contextvars
    import threading
    import warnings

    import optuna

    from preauth.training import shared_study as module
    from preauth.training.shared_study import open_study, run_trials, shared_study

    monkeypatch.setattr(module, "GRACE_PERIOD", 1)
    with shared_study(storage, "u", joining=False):
        study = open_study(optuna.samplers.RandomSampler(seed=0), optuna.pruners.NopPruner(), "u")
        try:
            with warnings.catch_warnings():  # Optuna's note that heartbeats belong to optimize()
                warnings.filterwarnings("ignore", message="Heartbeat of storage")
                study.ask()  # claimed by a process that died before it beat: no heartbeat row
            done = threading.Event()

            def owner() -> None:
                run_trials(study, lambda trial: 0.5, trials=2, timeout=None, callbacks=[])
                done.set()

            # the shared study is a context variable: the thread runs in a copy of this context
            threading.Thread(target=contextvars.copy_context().run, args=(owner,), daemon=True).start()
            assert done.wait(30), "the owner is still waiting for the trial that never beat"
        finally:
            study._storage._backend.engine.dispose()
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE", "COMPLETE"]
