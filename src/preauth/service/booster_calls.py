"""XGBoost predictions for a row or two at a time, without the Python wrapper's per-call cost.

Profiling one-application requests showed the booster's Python layer (feature-name checks, array
interface building, JSON configuration, a proxy DMatrix per call) costing ~0.15 ms of the ~0.2 ms
an ``inplace_predict`` takes, and ~0.2 ms of a ``pred_contribs`` call, while the trees themselves
need microseconds. This module makes the same calls through XGBoost's C API with everything that
does not depend on the row prepared once per model.

The calls go through a library handle of this module's own, with every argument and result type
declared (so ctypes converts and checks them, and XGBoost's own handle is left as it is), and only
on the XGBoost versions this was tested on (:data:`TESTED_XGBOOST`): a C API can change its
meaning without changing a symbol. Both calls are also checked against the Python API on probe
rows when a model is loaded; if anything differs, the version is untested, a symbol is missing,
or the setting ``fast_booster_calls`` is off, :func:`fast_calls` returns None and the service uses
the ordinary Python API. Calls are serialised by a lock: the booster's output buffer is shared.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import logging
import threading
from typing import Any

import numpy as np

log = logging.getLogger("preauth.service")

TESTED_XGBOOST = ((3, 2),)
"""XGBoost (major, minor) series these calls were tested on; any other uses the Python API."""

_ULONG = ctypes.c_uint64  # XGBoost's bst_ulong
_HANDLE = ctypes.c_void_p
_OUT_SHAPE = ctypes.POINTER(ctypes.POINTER(_ULONG))
_OUT_FLOATS = ctypes.POINTER(ctypes.POINTER(ctypes.c_float))
_SIGNATURES: dict[str, tuple[list[Any], Any]] = {
    "XGBGetLastError": ([], ctypes.c_char_p),
    "XGProxyDMatrixCreate": ([ctypes.POINTER(_HANDLE)], ctypes.c_int),
    "XGDMatrixFree": ([_HANDLE], ctypes.c_int),
    "XGDMatrixCreateFromDense": ([ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(_HANDLE)], ctypes.c_int),
    "XGDMatrixSetStrFeatureInfo": (
        [_HANDLE, ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p), _ULONG],
        ctypes.c_int,
    ),
    "XGBoosterPredictFromDense": (
        [_HANDLE, ctypes.c_char_p, ctypes.c_char_p, _HANDLE, _OUT_SHAPE, ctypes.POINTER(_ULONG), _OUT_FLOATS],
        ctypes.c_int,
    ),
    "XGBoosterPredictFromDMatrix": (
        [_HANDLE, _HANDLE, ctypes.c_char_p, _OUT_SHAPE, ctypes.POINTER(_ULONG), _OUT_FLOATS],
        ctypes.c_int,
    ),
}


def tested_version(version: str) -> bool:
    """True when ``version`` (``3.2.0``, ``3.2.1rc1``) belongs to a series in :data:`TESTED_XGBOOST`."""
    parts = version.split(".")
    try:
        series = (int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or -1))
    except (IndexError, ValueError):
        return False
    return series in TESTED_XGBOOST


@functools.lru_cache(maxsize=1)
def _library() -> ctypes.CDLL:
    """XGBoost's shared library under a handle of our own, every call's signature declared."""
    from xgboost.libpath import find_lib_path

    lib = ctypes.CDLL(find_lib_path()[0])
    for name, (arguments, result) in _SIGNATURES.items():
        function = getattr(lib, name)
        function.argtypes = arguments
        function.restype = result
    return lib


class BoosterCalls:
    """``probability(matrix)`` and ``contributions(matrix)`` through the C API."""

    def __init__(self, booster: Any, feature_types: list[str]) -> None:
        self._lib = _LIB = _library()
        self._ulong = c_bst_ulong = _ULONG
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
            raise RuntimeError((self._lib.XGBGetLastError() or b"").decode(errors="replace").splitlines()[0])

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


def fast_calls(bundle: Any, probe: np.ndarray, *, enabled: bool = True) -> BoosterCalls | None:
    """C-API calls for this bundle when enabled, on a tested XGBoost, and in exact agreement with the
    Python API on ``probe``; else None (the Python API)."""
    import xgboost

    from ..reasons import contributions

    if not enabled:
        return None
    if not tested_version(xgboost.__version__):
        log.warning(
            "fast XGBoost calls are not tested on XGBoost %s; using the Python API", xgboost.__version__
        )
        return None
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
