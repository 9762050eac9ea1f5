"""Turning validated applications into the matrix XGBoost reads.

Categories are passed to XGBoost as native categorical features (integer codes into the schema's
fixed levels), so that each original column stays one feature: one contribution per column in the
reasons, and no encoder state to save beside the booster. The levels come from the schema, never
from the data, so a model and a scorer cannot disagree about them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .applications import GERMAN, Field, Schema
from .errors import ConfigurationError


def feature_types(columns: Sequence[str], schema: Schema = GERMAN) -> list[str]:
    """XGBoost's feature types: ``c`` for categories, ``q`` for numbers and for ordered categories,
    whose codes keep their order (so a split says "moderate or more", not an arbitrary subset)."""
    return ["c" if schema.field(c).is_category and not schema.field(c).ordered else "q" for c in columns]


def category_levels(columns: Sequence[str], schema: Schema = GERMAN) -> dict[str, list[str]]:
    """The levels each categorical column is coded against, in code order."""
    return {c: list(schema.field(c).levels()) for c in columns if schema.field(c).is_category}


def monotone_direction(f: Field) -> int:
    """XGBoost's code for a field's direction: 1 increasing, -1 decreasing, 0 free.

    An ordered category is coded by its position in the listed order (a number to XGBoost), so a
    direction holds along that order; its missing level is coded missing, outside the order and
    free of it. An unordered category has no order, so a direction on one is a schema mistake,
    refused here rather than silently ignored (XGBoost would ignore it, and the promise it makes
    would not hold).
    """
    if f.direction is None:
        return 0
    if f.is_category and not f.ordered:
        raise ConfigurationError(
            f"'{f.name}' is a category: its levels have no order, so risk cannot be "
            f"{f.direction} in it; remove its direction from the schema, or list the levels in "
            'order and make it kind = "ordered category"'
        )
    if f.direction not in ("increasing", "decreasing"):
        raise ConfigurationError(
            f"'{f.name}': direction must be increasing or decreasing, got '{f.direction}'"
        )
    return 1 if f.direction == "increasing" else -1


def monotone_constraints(columns: Sequence[str], schema: Schema = GERMAN) -> dict[str, str]:
    """The constrained columns among ``columns`` and their direction, in column order."""
    out = {}
    for name in columns:
        f = schema.field(name)
        if monotone_direction(f) != 0:
            out[f.name] = str(f.direction)
    return out


def xgboost_constraints(columns: Sequence[str], schema: Schema = GERMAN) -> str:
    """``monotone_constraints`` as XGBoost takes it: one code per column, in column order."""
    return "(" + ",".join(str(monotone_direction(schema.field(c))) for c in columns) + ")"


def encode(frame: pd.DataFrame, columns: Sequence[str], schema: Schema = GERMAN) -> np.ndarray:
    """A float32 matrix in ``columns`` order; a category outside the levels becomes NaN (missing)."""
    matrix = np.empty((len(frame), len(columns)), dtype=np.float32)
    for j, name in enumerate(columns):
        f = schema.field(name)
        values = frame[name]
        if f.is_category:
            # The codes are the schema's (Schema.level_codes), the same ones the service's intake uses;
            # a value without one (outside the levels, an ordered category's missing level) is missing.
            coded = schema.level_codes[name]
            if isinstance(values.dtype, pd.CategoricalDtype):
                lookup = np.array(
                    [coded.get(c, np.nan) for c in values.cat.categories] + [np.nan], np.float32
                )
                matrix[:, j] = lookup[values.cat.codes.to_numpy()]  # code -1 (missing) takes the last entry
            else:
                matrix[:, j] = values.map(coded).to_numpy(dtype=np.float32, na_value=np.nan)
        else:
            matrix[:, j] = values.to_numpy(dtype=np.float32, na_value=np.nan)
    return matrix
