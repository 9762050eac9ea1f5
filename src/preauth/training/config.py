"""What a training run is asked to do: the options, checked, and the model's input columns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..applications import GERMAN, Schema
from ..calibration import CalibrationChoice
from ..errors import ConfigurationError
from ..referral import DEFAULT_REVIEW_BAND

Target = Literal["llm", "risk"]
TARGET_COLUMN = "target"
GOOD, BAD = "good risk", "bad risk"
_LABEL_CODES = {"good risk": 0, "bad risk": 1, "good": 0, "bad": 1}
RISK_MEASURE = "real outcome (Risk)"
MAX_REJECTS_KEPT = 100
"""Rejected rows whose reasons go into the bundle's label provenance (all are counted)."""


@dataclass(frozen=True)
class TrainingConfig:
    """Every choice a training run makes; saved in the bundle so a run can be repeated.

    ``exclude`` lists columns left out *in addition to* the default (``Sex``); ``include`` brings
    a default-excluded column back.
    """

    trials: int = 30
    timeout: float | None = None
    seed: int = 42
    folds: int = 5
    holdout_fraction: float = 0.2
    target: Target = "llm"
    exclude: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    threshold: float | None = None
    review_band: float = DEFAULT_REVIEW_BAND
    """Calibrated probability each side of the threshold in which a decision is referred to a person."""
    threads: int = 1
    """XGBoost threads. Fixed so that a seed gives the same model on any machine; on 1,000 rows one
    thread is also the fastest (thread start-up costs more than the work it shares)."""
    max_rounds: int = 1000
    early_stopping_rounds: int = 50
    bootstrap: int = 1000
    """Resamples of the holdout for the 95% interval of every holdout metric (0: none)."""
    refit: bool = True
    """After the holdout evaluation, refit the shipped booster on every labelled row."""
    monotone: bool = True
    """Train under the schema's per-field directions (XGBoost ``monotone_constraints``)."""
    calibration: CalibrationChoice = "auto"
    """``auto`` fits Platt and isotonic on the search's out-of-fold scores and keeps the lower CV log loss."""

    def check(self) -> None:
        if self.trials < 1:
            raise ConfigurationError("--trials must be at least 1")
        if self.folds < 2:
            raise ConfigurationError("--folds must be at least 2")
        if not 0 < self.holdout_fraction < 1:
            raise ConfigurationError("the holdout fraction must be between 0 and 1")
        if self.threshold is not None and not 0 < self.threshold < 1:
            raise ConfigurationError(f"--threshold must be between 0 and 1, got {self.threshold}")
        if not 0 <= self.review_band < 0.5:
            raise ConfigurationError(
                f"--review-band must be at least 0 and below 0.5, got {self.review_band}"
            )
        if self.bootstrap < 0:
            raise ConfigurationError("the number of bootstrap resamples cannot be negative")
        if self.timeout is not None and not self.timeout > 0:  # NaN too
            raise ConfigurationError(f"--timeout must be positive, got {self.timeout}")
        if not 0 <= self.seed < 2**32:  # what NumPy and scikit-learn take; was their traceback
            raise ConfigurationError(f"--seed must be a whole number from 0 to {2**32 - 1}, got {self.seed}")
        if self.calibration not in ("auto", "none", "platt", "isotonic"):
            raise ConfigurationError(
                f"--calibration must be one of auto, none, platt, isotonic, got '{self.calibration}'"
            )
        if self.target not in ("llm", "risk"):
            raise ConfigurationError(f"--target must be llm or risk, got '{self.target}'")

    def features(self, schema: Schema = GERMAN) -> list[str]:
        """The model's input columns: the schema minus its protected attributes and the exclusions."""
        exclude = _canonical_fields(self.exclude, "--exclude", schema)
        include = _canonical_fields(self.include, "--include", schema)
        columns = schema.feature_columns(exclude=(*schema.protected, *exclude), include=include)
        if not columns:
            raise ConfigurationError("every column is excluded: the model needs at least one input")
        return columns


def outcome_measure(schema: Schema = GERMAN) -> str:
    """What metrics against the real outcome are measured against: ``real outcome (Risk)``."""
    return f"real outcome ({schema.target.column})" if schema.target is not None else RISK_MEASURE


def _canonical_fields(names: Sequence[str], option: str, schema: Schema) -> list[str]:
    out = []
    for name in names:
        canonical = schema.canonical_column(name)
        if canonical is None or canonical not in schema.field_names:
            known = ", ".join(schema.field_names)
            raise ConfigurationError(f"{option}: unknown column '{name}'; the model's columns are: {known}")
        out.append(canonical)
    return out
