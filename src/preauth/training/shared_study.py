"""One Optuna study tuned by several `preauth train` processes, on one machine or many.

``preauth train LABELS --study-storage postgresql+psycopg://... --study-name N --trials T`` keeps
the study in PostgreSQL (Optuna's ``RDBStorage``); any number of ``preauth train LABELS
--study-storage ... --join-study N --trials T`` processes, started before or after, add trials to
it. Every process runs trials until the study holds ``T``: each claims its next trial under a
PostgreSQL advisory lock, so the study ends with exactly ``T`` trials however many processes
share it. Joiners then stop; the process that named the study waits for the trials still running
elsewhere and does the last step (threshold, refit, evaluation, bundle) once, from the best trial
of all. That trial's out-of-fold predictions are computed again where they are needed (the same
folds and seed give the same predictions).

A process killed mid-trial (``kill -9``, a lost machine) leaves no trial running forever: every
running trial beats (Optuna's RDBStorage heartbeat, every 2 s); one that has not beaten for 8 s is
failed by the next process that claims a trial or waits, and a trial is run in its place, so the
study still completes exactly ``T``.

All processes must train on the same labels file with the same options, so that their trials
score the same folds: the first records what it searches (:class:`StudySetup`) in the study, and
a process whose own differs is refused before it adds a trial. Without ``--study-storage`` nothing here is used: the study stays in memory.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError
from ..postgres import CONNECT_TIMEOUT


@dataclass(frozen=True)
class SharedStudy:
    storage: str
    name: str
    joining: bool


@dataclass(frozen=True)
class StudySetup:
    """What every process of a shared study must search alike: trials scored on other rows, folds
    or features are not comparable, yet the best of them all would be chosen and refit as if they
    were. The first process records it in the study; every other one is refused if its own differs."""

    rows: str
    """sha256 of the search's rows (:func:`rows_digest`): the labels file, --target, --schema,
    --holdout and --seed all show in it."""
    features: tuple[str, ...]
    folds: int
    seed: int
    trials: int
    monotone: str

    def differences(self, recorded: dict[str, Any]) -> list[str]:
        """What differs from the study's recorded setup, in the words of the options."""
        said = {
            "rows": "the training rows (labels file, --target, --schema or --holdout)",
            "features": "the features (--exclude, --include or --schema)",
            "monotone": "--monotone/--no-monotone",
        }
        here = self.recorded()
        return [
            said.get(key) or f"--{key} {here[key]} here, {recorded.get(key)} in the study"
            for key in here
            if here[key] != recorded.get(key)
        ]

    def recorded(self) -> dict[str, Any]:
        """As the study keeps it (JSON: the features a list)."""
        return {**self.__dict__, "features": list(self.features)}


SETUP_KEY = "preauth_setup"
"""The study's user attribute holding its :class:`StudySetup`."""


def rows_digest(*arrays: Any) -> str:
    """sha256 of arrays' bytes: the same rows, in the same order, give the same digest."""
    import hashlib

    import numpy as np

    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


class StudyJoined(Exception):
    """Raised in a joining process once the study is full: its part is done, there is no last step."""

    def __init__(self, ran: int, total: int) -> None:
        super().__init__(f"ran {ran} of the study's {total} trials")
        self.ran = ran
        self.total = total


WORKER = f"{socket.gethostname()}:{os.getpid()}"

_CURRENT: ContextVar[SharedStudy | None] = ContextVar("preauth_shared_study", default=None)


@contextmanager
def shared_study(storage: str, name: str, *, joining: bool) -> Iterator[SharedStudy]:
    """Within this block, the training search uses the named study in ``storage``."""
    if not storage.startswith(("postgresql://", "postgresql+psycopg://")):
        raise ConfigurationError(
            f"--study-storage must be a PostgreSQL URL (postgresql+psycopg://user@host/db), got '{storage}'"
        )
    if not name.strip():
        raise ConfigurationError("the study needs a name (--study-name or --join-study)")
    study = SharedStudy(storage, name, joining)
    with contextlib.ExitStack() as owning:
        if not joining:
            owning.enter_context(_owned(study))
        token = _CURRENT.set(study)
        try:
            yield study
        finally:
            _CURRENT.reset(token)


@contextmanager
def _owned(shared: SharedStudy) -> Iterator[None]:
    """Hold the study's ownership: one ``--study-name`` process at a time. Two would each wait for
    every trial and each write a bundle from them. PostgreSQL drops a session's advisory locks
    when its connection goes, so a killed owner's successor is not refused."""
    import psycopg

    with _connection(shared) as connection:
        key = _lock_key(connection, shared, "owner")
        if not connection.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:  # type: ignore[index]
            raise ConfigurationError(
                f"study '{shared.name}' already has its --study-name process running (it makes the "
                f"bundle); add this one with --join-study {shared.name}"
            )
        try:
            yield
        finally:
            # Held for the whole run: a connection the server dropped meanwhile (a restart) took
            # the lock with it, and must not turn a finished run into a traceback.
            with contextlib.suppress(psycopg.Error):
                connection.execute("SELECT pg_advisory_unlock(%s)", (key,))


def open_study(sampler: Any, pruner: Any, name: str, setup: StudySetup | None = None) -> Any:
    """The search's study: in memory, or the shared one (created by whichever process comes first,
    which records ``setup``; a process whose setup differs from the recorded one is refused)."""
    import optuna

    shared = _CURRENT.get()
    if shared is None:
        return optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner, study_name=name)
    if shared.joining:
        # The same seed in every process would propose the same first trials in each.
        sampler = optuna.samplers.TPESampler(seed=os.getpid())
    try:
        with _locked(shared):  # two processes creating Optuna's tables at once would collide
            storage = _storage(shared.storage)
        if shared.joining:
            _await_owner(shared, storage)
        with _locked(shared):
            study = optuna.create_study(
                direction="maximize",
                sampler=sampler,
                pruner=pruner,
                study_name=shared.name,
                storage=storage,
                load_if_exists=True,
            )
            if setup is not None:
                _same_setup(study, setup, shared)
            return study
    except Exception as error:  # sqlalchemy's or psycopg's own types for an unreachable database
        if isinstance(error, ConfigurationError):
            raise
        raise _cannot_open(error) from None


OWNER_WAIT = 30.0
"""Seconds a ``--join-study`` process waits for its study to exist or its ``--study-name`` process
to start (machines started together), before it takes the name for a typo and stops."""


def _await_owner(shared: SharedStudy, storage: Any) -> None:
    """Return once the study exists or its owner runs; refuse a name nobody has started.

    A joiner used to create a study of a mistyped name and run every trial in it alone: a whole
    search's time, with no ``--study-name`` process ever to make the bundle from it. Whether an
    owner runs is read from ``pg_locks`` (:data:`_HELD`), on one connection for the whole wait.
    """
    import optuna

    deadline = time.monotonic() + OWNER_WAIT
    with _connection(shared) as connection:
        owner = _lock_key(connection, shared, "owner")
        while True:
            names = optuna.study.get_all_study_names(storage)
            if shared.name in names or connection.execute(_HELD, (owner, owner)).fetchone()[0]:
                return
            if time.monotonic() >= deadline:
                there = f"; the studies there: {', '.join(sorted(names)[:10])}" if names else ""
                raise ConfigurationError(
                    f"no study '{shared.name}' in --study-storage, and no --study-name process started "
                    f"it within {OWNER_WAIT:g} s: start `--study-name {shared.name}` first, or check "
                    f"the name{there}"
                )
            time.sleep(0.5)


_HELD = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND classid = (%s::bigint >> 32)::oid AND objid = (%s::bigint & 4294967295)::oid AND objsubid = 1)"
)
"""Whether some session holds an advisory lock of this (bigint) key, such as a study's owner lock
(:func:`_owned`): read from ``pg_locks``, so a look never holds the lock itself (trying it would,
for an instant, refuse an owner starting then)."""


def _cannot_open(error: Exception) -> ConfigurationError:
    """The one line for a study storage that cannot be reached or used."""
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return ConfigurationError(f"--study-storage: cannot open the study ({reason})")


def _same_setup(study: Any, setup: StudySetup, shared: SharedStudy) -> None:
    """Record ``setup`` in a new study; refuse to add trials to one searched differently."""
    recorded = study.user_attrs.get(SETUP_KEY)
    if recorded is None:
        study.set_user_attr(SETUP_KEY, setup.recorded())
        return
    differences = setup.differences(recorded)
    if differences:
        raise ConfigurationError(
            f"study '{shared.name}' was searched with other settings: {'; '.join(differences)}. "
            "Every process of a study trains on the same labels with the same options"
        )


def run_trials(
    study: Any,
    objective: Callable[[Any], float],
    *,
    trials: int,
    timeout: float | None,
    callbacks: list[Callable[[Any, Any], None]],
) -> None:
    """``study.optimize`` in memory; in a shared study, trials claimed one at a time up to ``trials``."""
    import optuna

    shared = _CURRENT.get()
    if shared is None:
        # Pruned trials do not use up the budget: the callbacks stop the study at `trials` completed.
        study.optimize(objective, n_trials=None, timeout=timeout, callbacks=callbacks)
        return
    started = time.monotonic()
    ran = 0
    while True:
        ran += _claim_and_run(study, objective, shared, trials, timeout, started, callbacks)
        if shared.joining:
            raise StudyJoined(ran, trials)
        # The last step needs every trial: wait for those other processes still run. A process
        # killed mid-trial stops beating; its trial is failed after the grace period, and then
        # the study is short of a trial, which this process runs itself (the loop above again).
        while study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            _fail_stale(study)
            time.sleep(0.5)
        if _is_full(study, trials) or (timeout is not None and time.monotonic() - started >= timeout):
            return


HEARTBEAT_INTERVAL = 2
"""Seconds between a running trial's heartbeats in the shared study (a thread beats while it runs)."""
GRACE_PERIOD = 8
"""Seconds without a heartbeat after which a trial's process is taken for dead and the trial failed."""


def _is_full(study: Any, trials: int) -> bool:
    """--trials counts completed trials (those running may complete); pruned ones are cheap."""
    import optuna

    counted = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING)
    every = study.get_trials(deepcopy=False)
    return sum(t.state in counted for t in every) >= trials or len(every) >= 5 * trials


def _claim_and_run(
    study: Any,
    objective: Callable[[Any], float],
    shared: SharedStudy,
    trials: int,
    timeout: float | None,
    started: float,
    callbacks: list[Callable[[Any, Any], None]],
) -> int:
    """Claim and run trials while the study is short of ``trials``; how many this process ran."""
    import optuna
    from optuna.storages._heartbeat import get_heartbeat_thread

    ran = 0
    while timeout is None or time.monotonic() - started < timeout:
        with _locked(shared):  # count and claim as one step: the study never exceeds `trials`
            _fail_stale(study)  # a dead process's trial no longer holds a place
            with warnings.catch_warnings():  # "heartbeat is supposed to be used with optimize": we beat below
                warnings.filterwarnings("ignore", message="Heartbeat of storage", category=UserWarning)
                trial = None if _is_full(study, trials) else study.ask()
                if trial is not None:
                    # The first beat, before anything else: Optuna fails only trials that have
                    # beaten, so a process killed before its heartbeat thread's first beat would
                    # leave a trial running for ever, and the owner waiting for it.
                    study._storage.record_heartbeat(trial._trial_id)
        if trial is None:
            break
        ran += 1
        trial.set_user_attr("worker", WORKER)  # which machine and process ran it
        # What study.optimize does around each trial; the ask-and-tell loop must do it itself.
        # skip_if_finished: a trial whose beats were held up past the grace period may have been
        # failed by another process meanwhile; its result is then dropped and its place refilled.
        with get_heartbeat_thread(trial._trial_id, study._storage):
            try:
                value = objective(trial)
            except optuna.TrialPruned:
                frozen = study.tell(trial, state=optuna.trial.TrialState.PRUNED, skip_if_finished=True)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # failed by another process while it ran (above): nothing to tell
            except BaseException:  # Ctrl-C too (as study.optimize does): failed now, not 8 s on
                study.tell(trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
                raise
            else:
                frozen = study.tell(trial, value, skip_if_finished=True)
        for callback in callbacks:
            with contextlib.suppress(RuntimeError):  # study.stop() outside optimize(): the loop stops itself
                callback(study, frozen)
    return ran


def _fail_stale(study: Any) -> None:
    """Fail the running trials whose process stopped beating (killed, or its machine gone), and
    those that never beat at all (killed between their claim and its first beat)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    _fail_unbeaten(study)


def _fail_unbeaten(study: Any) -> None:
    """Optuna's ``fail_stale_trials`` looks only at trials with a heartbeat; a trial running for
    longer than the grace period without one has lost its process (the claim records the first
    beat), so it is failed too, and its place refilled."""
    from datetime import datetime, timedelta

    import optuna
    import sqlalchemy as sa

    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    cutoff = datetime.now() - timedelta(seconds=GRACE_PERIOD)  # Optuna's start times: local, naive
    old = [t._trial_id for t in running if t.datetime_start is not None and t.datetime_start < cutoff]
    if not old:
        return
    storage = study._storage
    query = sa.text("SELECT trial_id FROM trial_heartbeats WHERE trial_id IN :ids").bindparams(
        sa.bindparam("ids", expanding=True)
    )
    backend = getattr(storage, "_backend", storage)  # the RDBStorage behind Optuna's cache
    with backend.engine.connect() as connection:
        beaten = {row[0] for row in connection.execute(query, {"ids": old})}
    for trial_id in set(old) - beaten:
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.FAIL)


@contextmanager
def _locked(shared: SharedStudy) -> Iterator[None]:
    """A PostgreSQL advisory lock for this study, held by one process at a time on any machine."""
    with _connection(shared) as connection:
        key = _lock_key(connection, shared, "claim")
        connection.execute("SELECT pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s)", (key,))


def _connection(shared: SharedStudy) -> Any:
    """A connection of its own to the study's database (psycopg's, for advisory locks)."""
    import psycopg

    url = shared.storage.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
    except psycopg.Error as error:
        raise _cannot_open(error) from None


def _lock_key(connection: Any, shared: SharedStudy, purpose: str) -> int:
    """The advisory lock's key for ``purpose`` on this study. Advisory locks are per database, and
    Optuna's tables per schema: two schemas' studies of one name are two studies, not one."""
    schema = connection.execute("SELECT current_schema()").fetchone()[0]
    return zlib.crc32(f"preauth-study:{purpose}:{schema}:{shared.name}".encode())


def _sqlalchemy_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def _storage(url: str) -> Any:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            _sqlalchemy_url(url),
            engine_kwargs={"pool_pre_ping": True, "connect_args": {"connect_timeout": CONNECT_TIMEOUT}},
            heartbeat_interval=HEARTBEAT_INTERVAL,
            grace_period=GRACE_PERIOD,
        )
