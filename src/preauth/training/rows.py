"""Per-row seeded draws: a row's fate decided by the seed and its number in the input alone.

Workers that each hold a piece of a large input must agree on which rows are in the holdout and
which are in the sample the train process gets, without talking to each other and without the
rows travelling anywhere. A uniform number drawn from (seed, purpose, row number) gives that:
the same row gets the same draw on any worker, in any piece cut, on any run with the same seed.
"""

from __future__ import annotations

import numpy as np

HOLDOUT, SAMPLE = 1, 2
"""The purposes a draw is made for; each gets its own stream, so a row's two draws are independent."""

_MASK = (1 << 64) - 1


def draws(rows: np.ndarray, seed: int, purpose: int) -> np.ndarray:
    """A uniform number in [0, 1) per row number (float64), from splitmix64 of (seed, purpose, row)."""
    key = ((seed * 0x9E3779B97F4A7C15) ^ (purpose * 0xD1B54A32D192ED03)) & _MASK
    z = np.asarray(rows, dtype=np.uint64) + np.uint64(key)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def in_holdout(rows: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Whether each row (by its number in the input) is set aside for the holdout: about ``fraction``."""
    return draws(rows, seed, HOLDOUT) < fraction
