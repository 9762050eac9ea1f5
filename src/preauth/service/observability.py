"""Prometheus metrics of the service: requests, latency, decisions by target, the model version.

With several workers (``preauth serve --workers N``) each process writes its samples into a
shared directory (prometheus_client's multiprocess mode, set up by the ``serve`` command) and
``/metrics`` adds them up; with one worker the metrics live in the process.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Telemetry:
    """The metric families of one app instance, in their own registry (tests run several apps)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)
        registry = None if multiprocess_dir else self.registry
        self.requests = Counter(
            "preauth_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "preauth_request_duration_seconds",
            "Time from request to the end of the answer, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.decisions = Counter(
            "preauth_decisions",
            "Decisions made and stored, by target and model version.",
            ["target", "model_version"],
            registry=registry,
        )
        self.shadow = Counter(
            "preauth_shadow_scores",
            "Applications the shadow model scored beside production (outcome scored), or did not "
            "(outcome failed: not loadable, an error, or outside its schema; production decided anyway).",
            ["model_version", "outcome"],
            registry=registry,
        )
        self.model = Gauge(
            "preauth_model_info",
            "The model version being served (value 1).",
            ["version"],
            registry=registry,
            multiprocess_mode="liveall",
        )
        self._request_children: dict[tuple[str, str, int], Counter] = {}
        self._latency_children: dict[str, Histogram] = {}
        self._served: str | None = None

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(route, method, str(status))
        child.inc()
        timer = self._latency_children.get(route)
        if timer is None:
            timer = self._latency_children[route] = self.latency.labels(route)
        timer.observe(seconds)

    def count_decision(self, target: str, model_version: str, n: int = 1) -> None:
        self.decisions.labels(target, model_version).inc(n)

    def count_shadow(self, model_version: str, outcome: str, n: int = 1) -> None:
        self.shadow.labels(model_version, outcome).inc(n)

    def serving(self, version: str) -> None:
        if self._served == version:
            return
        if self._served is not None:
            if self.multiprocess_dir is not None:  # samples live in files: a removed label would linger
                self.model.labels(self._served).set(0)
            else:
                with contextlib.suppress(KeyError):
                    self.model.remove(self._served)
        self.model.labels(version).set(1)
        self._served = version

    def exposition(self) -> bytes:
        if self.multiprocess_dir is None:
            return bytes(generate_latest(self.registry))
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(self.multiprocess_dir))
        return bytes(generate_latest(registry))
