"""XGBoost predictions for a row or two at a time, without the Python wrapper's per-call cost.

Profiling one-application requests showed the booster's Python layer (feature-name checks, array
interface building, JSON configuration, a proxy DMatrix per call) costing ~0.15 ms of the ~0.2 ms
an ``inplace_predict`` takes, and ~0.2 ms of a ``pred_contribs`` call, while the trees themselves
need microseconds. This module makes the same calls through XGBoost's C API with everything that
does not depend on the row prepared once per model.

Both calls are checked against the Python API on probe rows when a model is loaded; if anything
differs (or this XGBoost lacks a symbol) :func:`fast_calls` returns None and the service uses
the ordinary Python API. Calls are serialised by a lock: the booster's output buffer is shared.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import threading
from typing import Any

import numpy as np

log = logging.getLogger("preauth.service")


class BoosterCalls:
    """``probability(matrix)`` and ``contributions(matrix)`` through the C API."""

    def __init__(self, booster: Any, feature_types: list[str]) -> None:
        from xgboost.core import _LIB, c_bst_ulong

        self._lib = _LIB
        self._ulong = c_bst_ulong
        self._booster = booster  # keeps the handle alive
        self._handle = booster.handle
        self._lock = threading.Lock()
        self._proxy = ctypes.c_void_p()
        self._check(_LIB.XGProxyDMatrixCreate(ctypes.byref(self._proxy)))
        base = {"training": False, "iteration_begin": 0, "iteration_end": 0, "strict_shape": False}
        self._value_config = json.dumps({**base, "type": 0, "cache_id": 0, "missing": float("nan")}).encode()
        self._contrib_config = json.dumps({**base, "type": 2}).encode()
        self._dmatrix_config = json.dumps({"missing": float("nan"), "nthread": 1}).encode()
        encoded = [t.encode() for t in feature_types]
        self._types = (ctypes.c_char_p * len(encoded))(*encoded)
        self._n_types = c_bst_ulong(len(encoded))
        self._n_features = len(feature_types)

    def _check(self, code: int) -> None:
        if code != 0:
            from xgboost.core import _LIB

            raise RuntimeError(_LIB.XGBGetLastError().decode(errors="replace").splitlines()[0])

    @staticmethod
    def _interface(matrix: np.ndarray) -> bytes:
        return json.dumps(
            {
                "data": [matrix.ctypes.data, False],
                "shape": list(matrix.shape),
                "strides": None,
                "typestr": "<f4",
                "version": 3,
            }
        ).encode()

    def probability(self, matrix: np.ndarray) -> np.ndarray:
        """Probability of bad risk per row, as ``booster.inplace_predict`` gives it."""
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        shape = ctypes.POINTER(self._ulong)()
        dims = self._ulong()
        out = ctypes.POINTER(ctypes.c_float)()
        with self._lock:
            self._check(
                self._lib.XGBoosterPredictFromDense(
                    self._handle,
                    self._interface(matrix),
                    self._value_config,
                    self._proxy,
                    ctypes.byref(shape),
                    ctypes.byref(dims),
                    ctypes.byref(out),
                )
            )
            return np.ctypeslib.as_array(out, shape=(len(matrix),)).astype(np.float64)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """TreeSHAP contributions per row, bias last, as ``predict(pred_contribs=True)`` gives them."""
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        shape = ctypes.POINTER(self._ulong)()
        dims = self._ulong()
        out = ctypes.POINTER(ctypes.c_float)()
        data = ctypes.c_void_p()
        self._check(
            self._lib.XGDMatrixCreateFromDense(
                self._interface(matrix), self._dmatrix_config, ctypes.byref(data)
            )
        )
        try:
            self._check(
                self._lib.XGDMatrixSetStrFeatureInfo(data, b"feature_type", self._types, self._n_types)
            )
            with self._lock:
                self._check(
                    self._lib.XGBoosterPredictFromDMatrix(
                        self._handle,
                        data,
                        self._contrib_config,
                        ctypes.byref(shape),
                        ctypes.byref(dims),
                        ctypes.byref(out),
                    )
                )
                width = self._n_features + 1
                return (
                    np.ctypeslib.as_array(out, shape=(len(matrix) * width,))
                    .reshape(len(matrix), width)
                    .copy()
                )
        finally:
            self._lib.XGDMatrixFree(data)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter shutdown the library may be gone
            self._lib.XGDMatrixFree(self._proxy)


def fast_calls(bundle: Any, probe: np.ndarray) -> BoosterCalls | None:
    """C-API calls for this bundle when they agree exactly with the Python API on ``probe``."""
    from ..reasons import contributions

    try:
        types = list(bundle.booster.feature_types or bundle.meta.get("feature_types") or [])
        calls = BoosterCalls(bundle.booster, types)
        same_p = np.array_equal(
            calls.probability(probe), np.asarray(bundle.booster.inplace_predict(probe), dtype=np.float64)
        )
        same_c = np.array_equal(calls.contributions(probe), contributions(bundle, probe))
    except Exception as error:  # an XGBoost without these entry points: use the Python API
        log.warning("fast XGBoost calls unavailable (%s); using the Python API", error)
        return None
    if not (same_p and same_c):
        log.warning("fast XGBoost calls disagree with the Python API; using the Python API")
        return None
    return calls
