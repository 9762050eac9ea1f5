"""The model a running service decides with, and how it follows ``preauth models promote``.

:class:`ModelSource` holds the loaded bundle. When the service serves an alias (``production``
by default), a background task looks at ``models/aliases.json`` once a second (one ``stat``); when
the alias points somewhere new, the new bundle is loaded beside the old one and swapped in with a
single assignment. Requests already running finish with the bundle they started with, so a
promotion drops nothing.

The ``shadow`` alias (``preauth models shadow vN``) is followed the same way: the shadow model is
loaded beside production and :class:`Decider` scores every application with it too (probability
and verdict only, no reasons), in the same call as production's, and hangs the score on the
decision for the store. A shadow that cannot be loaded or fails to score is logged and counted,
and the decision goes on without its shadow score: the challenger can never cost an answer.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ..applications import Schema
from ..bundles import ALIASES_FILE, META_FILE, SHADOW, Bundle, load_bundle, read_aliases, resolve
from ..coalescing import Coalescer
from ..decisions import Decision, ShadowScore, decided, verdict
from ..reasons import BIAS, contributions, principal_reasons
from ..referral import referral_reasons, with_review_band
from ..settings import Settings
from .booster_calls import BoosterCalls, fast_calls
from .intake import Intake, check_records, encode_rows
from .observability import Telemetry

log = logging.getLogger("preauth.service")
INLINE_ROWS = 32
MAX_ROWS_PER_CALL = 4096
SHADOW_LOG_INTERVAL = 60.0


@dataclass
class Served:
    """A loaded bundle ready to decide: booster pinned to one thread per call."""

    bundle: Bundle
    fast: bool = True
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    calls: BoosterCalls | None = None

    def __post_init__(self) -> None:
        # One thread per prediction: with a row or two per call, thread hand-off costs more than
        # the trees, and the service gets its parallelism from concurrent requests and workers.
        self.bundle.booster.set_param({"nthread": 1})
        self.calls = fast_calls(self.bundle, _probe(self.bundle), enabled=self.fast)

    def probability(self, matrix: np.ndarray) -> np.ndarray:
        """Calibrated probability of bad risk, as ``Bundle.predict_proba`` gives it."""
        if self.calls is not None:
            raw = self.calls.probability(matrix)
        else:
            raw = np.asarray(self.bundle.booster.inplace_predict(matrix), dtype=np.float64).reshape(-1)
        return self.bundle.calibration.apply(raw)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        if self.calls is not None:
            return self.calls.contributions(matrix)
        return contributions(self.bundle, matrix)

    @property
    def version(self) -> str:
        return self.bundle.version

    def decide(self, accepted: Sequence[Intake], *, request_id: str, channel: str) -> list[Decision]:
        """Score, explain and describe each application as a decision (not yet stored)."""
        return self.decide_many([(accepted, Request(request_id, channel))])[0]

    def decide_many(self, requests: Sequence[tuple[Sequence[Intake], Request]]) -> list[list[Decision]]:
        """The decisions of several requests, scored with one call to the booster for all their rows."""
        bundle = self.bundle
        rows = [item for accepted, _ in requests for item in accepted]
        matrix = encode_rows(rows, bundle.features, bundle.schema)
        probability = self.probability(matrix)
        contribs = self.contributions(matrix)
        now = datetime.now(UTC)
        out: list[list[Decision]] = []
        i = 0
        for accepted, meta in requests:
            decisions = []
            for item in accepted:
                decisions.append(self._decision(item, float(probability[i]), contribs[i], now, meta))
                i += 1
            out.append(decisions)
        return out

    def shadow_scores(self, items: Sequence[Intake], checked_with: Schema) -> list[ShadowScore | None]:
        """This model's verdict on applications another model decided: probability and decision,
        no reasons (nobody reads them, and TreeSHAP is most of a decision's cost).

        ``items`` were checked with ``checked_with`` (production's schema); a model trained on
        another schema checks what the caller gave with its own, and a row it refuses gets None.
        """
        bundle = self.bundle
        if bundle.schema.fingerprint == checked_with.fingerprint:
            usable, places = list(items), list(range(len(items)))
        else:
            checked = check_records([item.given for item in items], schema=bundle.schema)
            usable, places = checked.accepted, [item.row - 1 for item in checked.accepted]
        out: list[ShadowScore | None] = [None] * len(items)
        if not usable:
            return out
        probability = self.probability(encode_rows(usable, bundle.features, bundle.schema))
        for place, item, p in zip(places, usable, probability, strict=True):
            referred = bool(referral_reasons(bundle, item.values, float(p)))
            out[place] = ShadowScore(
                bundle.version,
                float(p),
                bundle.threshold,
                verdict(float(p), bundle.threshold, referred=referred),
            )
        return out

    def _decision(self, item: Intake, p: float, row: np.ndarray, now: datetime, meta: Request) -> Decision:
        bundle = self.bundle
        bad = p >= bundle.threshold
        values = [item.values[name] for name in bundle.features]
        reasons = principal_reasons(bundle.features, values, row, decided_bad=bad, schema=bundle.schema)
        explained = {name: float(row[j]) for j, name in enumerate(bundle.features)}
        explained[BIAS] = float(row[-1])
        return decided(
            id=str(uuid.uuid4()),
            request_id=meta.request_id,
            created_at=now,
            channel=meta.channel,
            model_version=bundle.version,
            input=item.given,
            probability=p,
            threshold=bundle.threshold,
            reasons=[r.as_dict() for r in reasons],
            contributions=explained,
            refer=referral_reasons(bundle, item.values, p),
        )


@dataclass(frozen=True)
class Shadow:
    """The shadow alias as the service follows it, replaced whole (readers never see half a change)."""

    version: str | None = None
    """The version the alias names, also when it could not be loaded."""
    served: Served | None = None
    error: str | None = None
    """Why it is not loaded."""


@dataclass(frozen=True)
class Request:
    """What a decision records about the request that asked for it."""

    request_id: str
    channel: str


class Decider:
    """Decides the applications of concurrent requests together.

    Every request that reaches :meth:`decide` in one turn of the event loop joins one call to the
    booster (see :class:`~preauth.coalescing.Coalescer`): XGBoost's fixed cost per call (a DMatrix,
    node statistics for TreeSHAP, thread set-up) is paid once for all of them. A lone request waits
    for nothing; up to ``INLINE_ROWS`` rows are decided on the loop, more in a thread beside it
    (TreeSHAP costs ~0.15 ms a row; XGBoost's C calls release the GIL). A request whose rows make
    the booster fail fails alone: its neighbours are decided without it.
    """

    def __init__(self, source: ModelSource, telemetry: Telemetry | None = None) -> None:
        self.source = source
        self.telemetry = telemetry
        self._together: Coalescer[tuple[Sequence[Intake], Request], list[Decision]] = Coalescer(
            self._decide_many,
            weight=lambda request: len(request[0]),
            inline_weight=INLINE_ROWS,
            max_weight=MAX_ROWS_PER_CALL,
        )
        self._said: dict[str, tuple[float, int]] = {}

    async def decide(self, accepted: Sequence[Intake], *, request_id: str, channel: str) -> list[Decision]:
        return await self._together.submit((accepted, Request(request_id, channel)))

    def _decide_many(self, requests: list[tuple[Sequence[Intake], Request]]) -> list[list[Decision]]:
        served, shadow = self.source.current, self.source.shadow
        decided = served.decide_many(requests)
        if shadow.version is None or shadow.version == served.version:
            return decided  # none, or promoted: the challenger is the incumbent now
        return self._shadowed(shadow, served, requests, decided)

    def _shadowed(
        self,
        shadow: Shadow,
        served: Served,
        requests: list[tuple[Sequence[Intake], Request]],
        decided: list[list[Decision]],
    ) -> list[list[Decision]]:
        """Production's decisions with the shadow's scores on them; never raises."""
        rows = [item for accepted, _ in requests for item in accepted]
        version = str(shadow.version)
        try:
            if shadow.served is None:
                raise RuntimeError(shadow.error or "the shadow model is not loaded")
            scores = shadow.served.shadow_scores(rows, served.bundle.schema)
        except Exception as error:
            self._count(version, "failed", len(rows))
            self._say(version, f"shadow model {version} did not score {len(rows)} application(s): {error}")
            return decided
        out: list[list[Decision]] = []
        i = 0
        for batch in decided:
            out.append([dataclasses.replace(d, shadow=scores[i + k]) for k, d in enumerate(batch)])
            i += len(batch)
        missing = sum(score is None for score in scores)
        self._count(version, "scored", len(scores) - missing)
        if missing:
            self._count(version, "failed", missing)
            self._say(
                version,
                f"shadow model {version} refused {missing} application(s) production decided (its schema differs)",
            )
        return out

    def _count(self, version: str, outcome: str, n: int) -> None:
        if self.telemetry is not None and n:
            self.telemetry.count_shadow(version, outcome, n)

    def _say(self, version: str, message: str) -> None:
        """A shadow failure in the log: a version's first at once, then at most one line a minute."""
        now = time.monotonic()
        said_at, unsaid = self._said.get(version, (-math.inf, 0))
        if now - said_at < SHADOW_LOG_INTERVAL:
            self._said[version] = (said_at, unsaid + 1)
            return
        more = f" (and {unsaid} more failures since the last report)" if unsaid else ""
        log.warning("%s%s; production decisions are unaffected", message, more)
        self._said[version] = (now, 0)


def _probe(bundle: Bundle) -> np.ndarray:
    """Rows that exercise every level of every category, and missing values, for checking calls."""
    from .intake import check_records

    schema = bundle.schema
    example = schema.example()
    records = [example]
    for f in schema.fields:
        for level in f.levels() if f.is_category else ():
            records.append({**example, f.name: level})
    # Every value a schema lets be missing, missing at once (German Credit: both balances).
    records.append({**example, **{f.name: None for f in schema.fields if f.missing_allowed}})
    return encode_rows(check_records(records, schema=schema).accepted, bundle.features, schema)


def logit(p: float) -> float:
    p = min(max(p, 1e-300), 1 - 1e-16)
    return math.log(p / (1 - p))


class ModelSource:
    """Where the served bundle comes from, and the bundle currently served."""

    def __init__(
        self,
        models_dir: Path,
        ref: str | None = None,
        *,
        check_interval: float = 1.0,
        fast_calls: bool = True,
        review_band: float | None = None,
    ) -> None:
        self.models_dir = models_dir
        self.review_band = review_band
        self.ref = ref
        self.check_interval = check_interval
        self.fast_calls = fast_calls
        self._lock = threading.Lock()
        self._stamp = self._alias_stamp()
        self.current = Served(with_review_band(load_bundle(models_dir, ref), review_band), fast_calls)
        log.info("serving model %s from %s", self.current.version, self.current.bundle.path)
        self.shadow = Shadow()
        self._follow_shadow()

    @property
    def follows_alias(self) -> bool:
        """True when the served version is chosen by an alias (or by default), so promotion moves it."""
        if self.ref is None:
            return True
        if Path(self.ref).is_dir():
            return False
        return self.ref in read_aliases(self.models_dir) or self.ref == "production"

    def _alias_stamp(self) -> tuple[int, int, int] | None:
        """Changes whenever the alias file is replaced (promote writes a new file and renames it)."""
        try:
            st = os.stat(self.models_dir / ALIASES_FILE)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def refresh(self) -> bool:
        """Swap in the bundles the aliases now name, if they changed; True when production swapped."""
        stamp = self._alias_stamp()
        if stamp == self._stamp:
            return False
        with self._lock:
            # Once per change of the alias file: a damaged file is said once, not every second.
            self._stamp = stamp
            self._follow_shadow()
            return self._follow_production()

    def _follow_shadow(self) -> None:
        """Load (or drop) the model the ``shadow`` alias names; a failure is logged, never raised."""
        current = self.shadow
        try:
            version = read_aliases(self.models_dir).get(SHADOW)
        except Exception as error:  # the production side says the same about a damaged file
            log.error("cannot read the shadow alias, keeping shadow %s: %s", current.version, error)
            return
        if version is None:
            if current.version is not None:
                log.info("shadow model %s switched off", current.version)
            self.shadow = Shadow()
            return
        try:
            path = resolve(self.models_dir, SHADOW)
            if current.served is not None and path.resolve() == current.served.bundle.path.resolve():
                return
            served = Served(
                with_review_band(load_bundle(self.models_dir, SHADOW), self.review_band), self.fast_calls
            )
        except Exception as error:
            self.shadow = Shadow(str(version), None, str(error))
            log.error(
                "shadow model %s cannot be loaded, no shadow scores until it is fixed: %s", version, error
            )
            return
        self.shadow = Shadow(served.version, served)
        log.info("shadow model %s loaded: it scores every request beside production", served.version)

    def _follow_production(self) -> bool:
        try:
            if not self.follows_alias:
                return False
            path = resolve(self.models_dir, self.ref)
            if path.resolve() == self.current.bundle.path.resolve():
                return False
            fresh = Served(
                with_review_band(load_bundle(self.models_dir, self.ref), self.review_band),
                self.fast_calls,
            )
        except Exception as error:  # keep serving the old model; say why in the log
            log.error("model reload failed, still serving %s: %s", self.current.version, error)
            return False
        previous = self.current.version
        self.current = fresh
        log.info("model promoted: now serving %s (was %s)", fresh.version, previous)
        return True


def model_source(settings: Settings) -> ModelSource:
    """The bundle to serve: ``/opt/ml/model`` when present (SageMaker), else the models directory.

    ``/opt/ml/model`` may hold one bundle (``bundle.json`` at its top) or a whole models directory.
    """
    sagemaker = settings.sagemaker_model_dir
    fast = settings.fast_booster_calls
    band = settings.review_band
    if sagemaker is not None and sagemaker.is_dir():
        if (sagemaker / META_FILE).exists():
            return ModelSource(sagemaker.parent, str(sagemaker), fast_calls=fast, review_band=band)
        if any(sagemaker.glob(f"*/{META_FILE}")):
            return ModelSource(sagemaker, settings.serve_model, fast_calls=fast, review_band=band)
    return ModelSource(settings.models_dir, settings.serve_model, fast_calls=fast, review_band=band)
