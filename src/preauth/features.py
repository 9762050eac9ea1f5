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

from .applications import GERMAN, Schema


def feature_types(columns: Sequence[str], schema: Schema = GERMAN) -> list[str]:
    """XGBoost's feature types: ``c`` for categories, ``q`` for numbers and for ordered categories,
    whose codes keep their order (so a split says "moderate or more", not an arbitrary subset)."""
    return ["c" if schema.field(c).is_category and not schema.field(c).ordered else "q" for c in columns]


def category_levels(columns: Sequence[str], schema: Schema = GERMAN) -> dict[str, list[str]]:
    """The levels each categorical column is coded against, in code order."""
    return {c: list(schema.field(c).levels()) for c in columns if schema.field(c).is_category}


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
