"""The monitoring report as Prometheus gauges at ``/metrics``, refreshed by the service itself.

Every ``monitor_interval_seconds`` the service computes :func:`preauth.monitoring.monitor` for
the served model over the last ``monitor_window_days`` (the same function as ``preauth monitor``
and ``GET /v1/monitoring``) and sets the gauges. With several workers the gauges live in the shared
metrics directory (``multiprocess_mode="mostrecent"``: the last value written wins) and one worker
at a time does the work: whoever holds an exclusive lock on a file there (released when it
exits, so another takes over). A value that cannot be computed (no outcomes yet: no AUC) is NaN.

The refresher keeps a :class:`~preauth.monitoring_window.WindowCache`: after the first refresh it
reads only the decisions and outcomes stored since the last one, for the same report.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from prometheus_client import Gauge

from ..monitoring import monitor
from ..monitoring_window import WindowCache
from ..store import DecisionStore
from .observability import Telemetry
from .serving import ModelSource

log = logging.getLogger("preauth.service")
LOCK_FILE = "monitoring.lock"


class MonitoringGauges:
    """The gauge families; ``update`` sets them from one monitoring report."""

    def __init__(self, telemetry: Telemetry) -> None:
        registry = None if telemetry.multiprocess_dir else telemetry.registry
        self.multiprocess_dir = telemetry.multiprocess_dir

        def gauge(name: str, text: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(name, text, list(labels), registry=registry, multiprocess_mode="mostrecent")

        self.psi = gauge("preauth_psi", "PSI of a model input against its training reference.", ("feature",))
        self.score_psi = gauge(
            "preauth_score_psi", "PSI of the score (P(bad risk)) against its training reference."
        )
        self.rates = {
            name: gauge(f"preauth_{name}_rate", f"Share of the served model's decisions that are '{name}'.")
            for name in ("approve", "decline", "refer")
        }
        self.decisions = gauge(
            "preauth_monitored_decisions", "Decisions of the served model in the monitoring window."
        )
        self.live_auc = gauge(
            "preauth_live_auc", "AUC of the served model on decisions with a recorded outcome."
        )
        self.ece = gauge(
            "preauth_live_ece", "Expected calibration error on decisions with a recorded outcome."
        )
        self.ece_chance = gauge(
            "preauth_live_ece_chance_upper",
            "95th percentile of the ECE a perfectly calibrated model would show on these outcomes by chance:"
            " alert on preauth_live_ece above it, not on a fixed number.",
        )
        self.refreshed = gauge(
            "preauth_monitoring_refreshed_timestamp_seconds", "When the gauges were last set."
        )
        self._features: set[str] = set()

    def update(self, report: dict[str, Any]) -> None:
        """Set every gauge from a report of :func:`preauth.monitoring.monitor`."""
        features = {item["feature"]: item["psi"] for item in report["inputs"]}
        for gone in self._features - set(features):  # a promotion changed the inputs
            self.psi.labels(gone).set(math.nan)
        for name, value in features.items():
            self.psi.labels(name).set(_number(value))
        self._features = set(features)
        self.score_psi.set(_number((report["score"] or {}).get("psi")))
        for name, gauge in self.rates.items():
            gauge.set(_number(report[f"{name}_rate"]))
        self.decisions.set(report["decisions"])
        live = report["live"] or {}
        self.live_auc.set(_number(live.get("auc")))
        calibration = live.get("calibration") or {}
        self.ece.set(_number(calibration.get("ece")))
        self.ece_chance.set(_number(calibration.get("ece_chance_upper")))
        self.refreshed.set(time.time())


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


class _Turn:
    """Whether this process refreshes: always with one worker; with several, the lock holder."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._file: IO[str] | None = None

    def mine(self) -> bool:
        if self.directory is None or self._file is not None:
            return True
        handle = (self.directory / LOCK_FILE).open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle  # held until the process ends
        return True


def refresh_once(
    gauges: MonitoringGauges,
    store: DecisionStore,
    source: ModelSource,
    window_days: float,
    cache: WindowCache,
) -> None:
    since = datetime.now(UTC) - timedelta(days=window_days)
    gauges.update(monitor(store, source.current.bundle.path, since=since, cache=cache))


async def refresh_gauges(
    gauges: MonitoringGauges, store: DecisionStore, source: ModelSource, interval: float, window_days: float
) -> None:
    """The service's chore: refresh now, then every ``interval`` seconds; a failure waits for the next."""
    turn = _Turn(gauges.multiprocess_dir)
    cache = WindowCache()  # one model's window at a time: a promotion starts it again
    while True:
        if turn.mine():
            try:
                await asyncio.to_thread(refresh_once, gauges, store, source, window_days, cache)
            except Exception:
                log.exception("refreshing the monitoring gauges failed")
        await asyncio.sleep(interval)


__all__ = ["MonitoringGauges", "refresh_gauges"]
