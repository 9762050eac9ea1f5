"""Calibration: turning the booster's scores into probabilities a credit officer can read as such.

The booster is trained with ``scale_pos_weight`` (bad risk up-weighted), so its raw output says
which applicant is riskier but not how likely a default is: its mean runs far above the observed
rate. A calibration map, fitted on the search's out-of-fold predictions (scores the booster gave
to rows it had not seen), corrects that:

- **Platt** scaling: ``p = sigmoid(a · logit(raw) + b)``, two numbers;
- **isotonic** regression, centred: the pooled blocks' observed rates placed at each block's mean
  raw score, stored as those breakpoints and applied with ``np.interp``: strictly increasing
  between the first and last breakpoint (flat beyond), so no ties inside a step.

Both are stored in ``bundle.json`` as plain numbers, never pickled, and both are non-decreasing
in the raw score, so the ranking (ROC AUC) and the direction of every monotone constraint
survive. Reasons still explain the booster's margin (raw log-odds), which the map transforms.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .errors import ConfigurationError, ModelBundleError

Method = Literal["none", "platt", "isotonic"]
METHODS: tuple[str, ...] = ("none", "platt", "isotonic")
CalibrationChoice = Literal["auto", "none", "platt", "isotonic"]
_EPS = 1e-7


@dataclass(frozen=True)
class Calibration:
    """A non-decreasing map from the booster's raw probability to a calibrated one."""

    method: Method = "none"
    a: float = 1.0
    b: float = 0.0
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    chosen_by: str = ""
    cv_log_loss: Mapping[str, float] = field(default_factory=dict)

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of bad risk for raw booster probabilities."""
        raw = np.asarray(raw, dtype=np.float64)
        if self.method == "platt":
            return _sigmoid(self.a * _logit(raw) + self.b)
        if self.method == "isotonic":
            return np.interp(raw, np.asarray(self.x), np.asarray(self.y))
        return raw

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method}
        if self.method == "platt":
            out.update(a=self.a, b=self.b)
        elif self.method == "isotonic":
            out.update(x=list(self.x), y=list(self.y))
        if self.chosen_by:
            out["chosen_by"] = self.chosen_by
        if self.cv_log_loss:
            out["cv_log_loss"] = dict(self.cv_log_loss)
        out["note"] = "applied to the booster's probability; reasons explain the booster's margin before it"
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Calibration:
        """The calibration stored in a bundle; a bundle without one is served uncalibrated."""
        if not data:
            return cls()
        method = data.get("method")
        try:
            # Every number finite, the probabilities within 0..1: a NaN made every probability
            # NaN, and so every applicant approved. (A Platt slope may be 0 or below: fitted on a
            # model with no signal, it says so; training writes what the data gave.)
            if method == "platt":
                a, b = float(data["a"]), float(data["b"])
                if not (math.isfinite(a) and math.isfinite(b)):
                    raise ValueError("a Platt map needs finite numbers")
                return cls("platt", a=a, b=b)
            if method == "isotonic":
                x = tuple(float(v) for v in data["x"])
                y = tuple(float(v) for v in data["y"])
                if (
                    not x
                    or len(x) != len(y)
                    or not np.isfinite([*x, *y]).all()
                    or any(np.diff(x) < 0)
                    or any(np.diff(y) < 0)
                ):
                    raise ValueError("breakpoints must be finite, non-decreasing and as many x as y")
                if not 0 <= y[0] <= y[-1] <= 1:
                    raise ValueError("an isotonic map's probabilities must lie between 0 and 1")
                return cls("isotonic", x=x, y=y)
            if method == "none":
                return cls()
        except (KeyError, TypeError, ValueError) as error:
            raise ModelBundleError(f"unreadable calibration in bundle.json ({error})") from None
        raise ModelBundleError(f"unknown calibration method '{method}' in bundle.json")


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -700.0, 700.0)))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def fit_platt(y: np.ndarray, raw: np.ndarray) -> Calibration:
    """Logistic regression of the label on logit(raw), unregularised in effect (C large)."""
    from sklearn.linear_model import LogisticRegression

    z = _logit(np.asarray(raw, dtype=np.float64)).reshape(-1, 1)
    model = LogisticRegression(C=1e6, max_iter=1000).fit(z, y)
    return Calibration("platt", a=float(model.coef_[0, 0]), b=float(model.intercept_[0]))


def fit_isotonic(y: np.ndarray, raw: np.ndarray) -> Calibration:
    """Centred isotonic regression of the label on raw, kept as its breakpoints (flat beyond the ends).

    Plain isotonic regression is a step curve: every applicant in one of its flat steps gets the
    same probability, however differently the booster ranked them, and those ties cost ROC AUC
    (measured: 0.014 on a 100-row fold, bench/quality.py). Centred isotonic regression (Oron and
    Flournoy, 2017) keeps the same pooled blocks and their rates but puts each block's rate at the
    mean raw score of its rows and interpolates between those points, so the map is strictly
    increasing between the first and last block: the booster's ranking survives inside a step, and
    the rate of each block is still the observed one at its centre.
    """
    from sklearn.isotonic import IsotonicRegression

    raw = np.asarray(raw, dtype=np.float64)
    model = IsotonicRegression(out_of_bounds="clip", y_min=_EPS, y_max=1 - _EPS)
    fitted = model.fit_transform(raw, y)
    rates, block = np.unique(fitted, return_inverse=True)  # PAVA's blocks have distinct rates
    centres = np.bincount(block, weights=raw) / np.bincount(block)
    return Calibration("isotonic", x=tuple(float(v) for v in centres), y=tuple(float(v) for v in rates))


_FITTERS = {"platt": fit_platt, "isotonic": fit_isotonic}


def fit_calibration(
    y: np.ndarray, raw: np.ndarray, choice: CalibrationChoice = "auto", *, folds: int = 5, seed: int = 0
) -> Calibration:
    """Fit the asked-for map on out-of-fold ``raw`` scores; ``auto`` picks by cross-validated log loss.

    The comparison itself is cross-validated (fit on k−1 parts of the out-of-fold scores, scored on
    the last), so isotonic's flexibility is not rewarded for memorising the rows it was fitted on.
    """
    if choice not in ("auto", *METHODS):
        raise ConfigurationError(f"--calibration must be one of auto, none, platt, isotonic, got '{choice}'")
    y = np.asarray(y, dtype=np.int64)
    raw = np.asarray(raw, dtype=np.float64)
    if choice == "none":
        return Calibration(chosen_by="--calibration none")
    if choice != "auto":
        fitted = _FITTERS[choice](y, raw)
        return Calibration(
            fitted.method, fitted.a, fitted.b, fitted.x, fitted.y, chosen_by=f"--calibration {choice}"
        )
    from sklearn.model_selection import StratifiedKFold

    splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(raw, y)
    losses: dict[str, list[float]] = {name: [] for name in _FITTERS}
    for fit_part, score_part in splits:
        for name, fitter in _FITTERS.items():
            mapped = fitter(y[fit_part], raw[fit_part]).apply(raw[score_part])
            losses[name].append(log_loss(y[score_part], mapped))
    mean = {name: round(float(np.mean(v)), 6) for name, v in losses.items()}
    best = min(mean, key=lambda name: (mean[name], name != "platt"))  # a tie goes to Platt (2 numbers)
    fitted = _FITTERS[best](y, raw)
    return Calibration(
        fitted.method,
        fitted.a,
        fitted.b,
        fitted.x,
        fitted.y,
        chosen_by=f"lowest {folds}-fold log loss on the search's out-of-fold predictions",
        cv_log_loss=mean,
    )


@dataclass(frozen=True)
class EceNoise:
    """The ECE a perfectly calibrated model would show with the same predictions on as many rows.

    ECE is never 0 on a finite sample: each bin's observed rate wanders from its mean p by chance,
    and on a few hundred or thousand rows that chance part is as large as the errors one looks
    for (on 1,000 German Credit rows it averages about 0.029, above 0.03 in four draws of ten).
    An ECE under ``upper`` cannot be told from perfect calibration; only one above it says the
    probabilities are off.
    """

    mean: float  # the chance ECE's mean over the draws
    upper: float  # its 95th percentile
    draws: int


def ece_noise(p: np.ndarray, bins: int = 10, draws: int = 1000, seed: int = 0) -> EceNoise | None:
    """The chance ECE of ``p``: outcomes drawn as Bernoulli(p) ``draws`` times, each draw's ECE.

    Bins are independent, so each bin's observed rate is drawn on its own: exactly (every row's
    Bernoulli) where a bin holds up to 2,000 rows, from the normal law with the exact variance
    ``sum p(1-p) / n**2`` above that, where the central limit theorem has long taken over. The
    cost is bounded by ``draws × bins × 2,000`` whatever the number of rows.
    """
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    if len(p) == 0:
        return None
    rng = np.random.default_rng(seed)
    index = np.minimum((p * bins).astype(np.int64), bins - 1)
    total = np.zeros(draws)
    for b in range(bins):
        inside = p[index == b]
        n = len(inside)
        if n == 0:
            continue
        if n <= 2000:
            rate = (rng.random((draws, n)) < inside).mean(axis=1)
        else:
            rate = inside.mean() + rng.standard_normal(draws) * np.sqrt(np.sum(inside * (1 - inside))) / n
        total += n * np.abs(rate - inside.mean())
    chance = total / len(p)
    return EceNoise(float(chance.mean()), float(np.quantile(chance, 0.95)), draws)


def chance_fields(p: np.ndarray) -> dict[str, float | None]:
    """:func:`ece_noise` as the two fields every ECE is shown with (the training metrics, the report,
    monitoring): ``ece_chance``, its mean, and ``ece_chance_upper``, its 95th percentile."""
    chance = ece_noise(p)
    return {
        "ece_chance": chance.mean if chance else None,
        "ece_chance_upper": chance.upper if chance else None,
    }


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float | None:
    """ECE with ``bins`` equal-width bins: the row-weighted mean |observed rate − mean p| per bin."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if len(y) == 0:
        return None
    index = np.minimum((p * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = index == b
        if inside.any():
            total += inside.sum() * abs(y[inside].mean() - p[inside].mean())
    return float(total / len(y))
