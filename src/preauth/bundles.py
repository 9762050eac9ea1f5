"""Model bundles: a versioned directory per training run, and the aliases that point at them.

A bundle is everything needed to score and to audit a model, with no pickle: the booster in
XGBoost's own format, and JSON metadata (features, category levels, threshold, parameters,
metrics, label provenance, data fingerprint, library versions). Loading checks the metadata
against this version of preauth and refuses a bundle it cannot score correctly.

Layout::

    models/
      aliases.json            {"production": "v2"}
      v1/ model.ubj bundle.json schema.toml [holdout.parquet trials.csv report.html ...]

``schema.toml`` is the schema the model was trained on (its sha256 in ``bundle.json``): whatever
uses the model (predict, serve, the report) reads applications with it, never with the code's
default. A bundle from before schemas travelled has none and is read with German Credit's.
      v2/ ...
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from .applications import GERMAN, Schema, SchemaError, parse_schema
from .calibration import Calibration
from .errors import ConfigurationError, ModelBundleError
from .features import category_levels, feature_types
from .files import staging_directory, write_text_atomic

FORMAT = "preauth-bundle"
FORMAT_VERSION = 1
MODEL_FILE = "model.ubj"
META_FILE = "bundle.json"
SCHEMA_FILE = "schema.toml"
ALIASES_FILE = "aliases.json"
PRODUCTION = "production"
SHADOW = "shadow"
"""The alias of the challenger: scored beside production on every request, stored, never acted on."""
_VERSION_RE = re.compile(r"^v(\d+)$")
_ALIAS_RE = re.compile(r"[a-z][a-z0-9_-]{0,39}")
ALIAS_RULE = "lower-case letters, digits, '-' and '_', starting with a letter, at most 40, not a version name"


@dataclass
class Bundle:
    """A loaded model: the booster and what it was trained with."""

    path: Path
    version: str
    booster: Any  # xgboost.Booster
    features: list[str]
    threshold: float
    meta: dict[str, Any]
    calibration: Calibration = field(default_factory=Calibration)
    """Applied to every probability served or written; the threshold is on its scale."""
    schema: Schema = GERMAN

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        """Calibrated probability of bad risk for an encoded matrix (see :func:`preauth.features.encode`)."""
        return self.calibration.apply(self.raw_proba(matrix))

    def raw_proba(self, matrix: np.ndarray) -> np.ndarray:
        """The booster's own probability, sigmoid(margin), before calibration (what reasons explain)."""
        return np.asarray(self.booster.inplace_predict(matrix), dtype=np.float64)

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.meta.get("metrics", {}))


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for name in ("preauth", "xgboost-cpu", "xgboost", "optuna", "pandas", "numpy", "scikit-learn"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return versions


def fingerprint(data: bytes) -> str:
    """The sha256 of the training data, so a model can be traced to the exact rows it saw."""
    return hashlib.sha256(data).hexdigest()


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON to a temporary file beside ``path``, then rename: never a half-written file."""
    text = json.dumps(payload, indent=2, default=_json_default) + "\n"
    write_text_atomic(path, text)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def next_version(models_dir: Path) -> str:
    numbers = [int(m.group(1)) for p in _list_dirs(models_dir) if (m := _VERSION_RE.match(p.name))]
    return f"v{max(numbers, default=0) + 1}"


def _list_dirs(models_dir: Path) -> list[Path]:
    return [p for p in models_dir.iterdir() if p.is_dir()] if models_dir.exists() else []


def save_bundle(
    models_dir: Path,
    booster: Any,
    *,
    features: Sequence[str],
    threshold: float,
    meta: Mapping[str, Any],
    extra_files: Mapping[str, bytes] | None = None,
    schema: Schema = GERMAN,
) -> Path:
    """Write a new bundle under the next free version and return its directory.

    The bundle is assembled in a hidden temporary directory and renamed into place, so a reader
    never sees a half-written version.
    """
    staging = staging_directory(models_dir, "staging")
    staging.chmod(0o755)
    booster.save_model(str(staging / MODEL_FILE))
    (staging / SCHEMA_FILE).write_text(schema.to_toml(), encoding="utf-8")
    for name, data in (extra_files or {}).items():
        (staging / name).write_bytes(data)
    while True:
        version = next_version(models_dir)
        payload = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "version": version,
            "created_at": datetime.now(UTC).isoformat(),
            "features": list(features),
            "feature_types": feature_types(features, schema),
            "category_levels": category_levels(features, schema),
            "schema": [schema_entry(f.name, schema) for f in schema.fields],
            "schema_name": schema.name,
            "schema_fingerprint": schema.fingerprint,
            "threshold": float(threshold),
            "library_versions": library_versions(),
            **dict(meta),
        }
        write_json_atomic(staging / META_FILE, payload)
        target = models_dir / version
        try:
            staging.rename(target)
        except OSError:
            continue  # another run took this version a moment ago: take the next one
        return target


def schema_entry(name: str, schema: Schema = GERMAN) -> dict[str, Any]:
    f = schema.field(name)
    entry: dict[str, Any] = {"name": f.name, "kind": f.kind}
    if f.is_category:
        entry["categories"] = list(f.levels())
    else:
        entry.update(minimum=f.minimum, maximum=f.maximum, positive=f.positive)
    return entry


def read_aliases(models_dir: Path) -> dict[str, str]:
    path = models_dir / ALIASES_FILE
    if not path.exists():
        return {}
    try:
        aliases = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ModelBundleError(f"{path}: unreadable aliases file ({error})") from None
    if not isinstance(aliases, dict):
        raise ModelBundleError(f"{path}: unreadable aliases file (not a JSON object)")
    for alias, version in aliases.items():  # a hand-edited file: every name is looked up as text
        if not isinstance(version, str):
            raise ModelBundleError(
                f"{path}: alias '{alias}' points at {json.dumps(version)[:40]}, not a version of this directory"
            )
    return dict(aliases)


def resolve(models_dir: Path, ref: str | None = None) -> Path:
    """The directory of a bundle named by version, alias, or path; by default production, else latest.

    A version or alias name is looked up in ``models_dir`` before any directory of that name
    elsewhere, and an alias is followed only to a version of ``models_dir``.
    """
    aliases = read_aliases(models_dir)
    by_name = ref is not None and (ref in aliases or _VERSION_RE.match(ref) is not None)
    if ref and not by_name and Path(ref).is_dir() and (Path(ref) / META_FILE).exists():
        return Path(ref)
    if ref is None:
        ref = PRODUCTION if PRODUCTION in aliases else latest_version(models_dir)
        if ref is None:
            raise ModelBundleError(f"no model in {models_dir}: run `preauth train` first")
    version = aliases.get(ref, ref)
    if ref in aliases and not _VERSION_RE.match(version):
        raise ModelBundleError(
            f"{models_dir / ALIASES_FILE}: alias '{ref}' points at {version!r}, not a version of this directory"
        )
    path = models_dir / version
    # Only a version's directory is a damaged bundle: ``..``, ``""`` or ``from-store`` name some
    # other directory, which must never be called a bundle to remove.
    if _VERSION_RE.match(version) and path.is_dir() and not (path / META_FILE).exists():
        raise ModelBundleError(f"{path}: not a model bundle (no {META_FILE}); retrain or remove it")
    if not (path / META_FILE).exists():
        known = ", ".join(list_versions(models_dir)) or "none"
        named = f"'{version}' (alias '{ref}')" if ref in aliases else f"'{ref}'"
        raise ModelBundleError(f"no model {named} in {models_dir} (versions: {known})")
    return path


def list_versions(models_dir: Path) -> list[str]:
    found = [(int(m.group(1)), p.name) for p in _list_dirs(models_dir) if (m := _VERSION_RE.match(p.name))]
    return [name for _, name in sorted(found)]


def latest_version(models_dir: Path) -> str | None:
    versions = list_versions(models_dir)
    return versions[-1] if versions else None


def read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ModelBundleError(f"{path}: unreadable {META_FILE} ({error})") from None
    if meta.get("format") != FORMAT:
        raise ModelBundleError(f"{path}: not a preauth model bundle")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelBundleError(
            f"{path}: bundle format {meta.get('format_version')} is not supported "
            f"(this preauth reads format {FORMAT_VERSION})"
        )
    return dict(meta)


def load_bundle(models_dir: Path, ref: str | None = None) -> Bundle:
    """Load and check a bundle; refuses one whose features or categories this schema cannot encode."""
    path = resolve(models_dir, ref)
    meta = read_meta(path)
    schema = read_bundle_schema(path, meta)
    features = list(meta.get("features", []))
    try:
        expected = category_levels(features, schema)
        types = feature_types(features, schema)
    except Exception:
        raise ModelBundleError(f"{path}: its features {features} are not in this schema") from None
    if meta.get("category_levels") != expected or meta.get("feature_types") != types:
        raise ModelBundleError(
            f"{path}: its feature types or category levels differ from this schema's; "
            "retrain it with this preauth"
        )
    booster = load_booster(path)
    if booster.num_features() != len(features):
        raise ModelBundleError(
            f"{path}: the booster has {booster.num_features()} features, the bundle names {len(features)}"
        )
    names = booster.feature_names
    if names is not None and list(names) != features:
        raise ModelBundleError(
            f"{path}: the booster's features {list(names)} differ from the bundle's {features}"
        )
    try:
        calibration = Calibration.from_json(meta.get("calibration"))
    except ModelBundleError as error:
        raise ModelBundleError(f"{path}: {error}") from None
    check_referral(path, meta)
    return Bundle(
        path,
        meta["version"],
        booster,
        features,
        bundle_threshold(path, meta),
        meta,
        calibration=calibration,
        schema=schema,
    )


SEEN_KEY = "seen"
"""The block of ``bundle.json`` holding what training saw, per model feature (the refer rule's)."""

REVIEW_BAND_KEY = "review_band"
"""The key of ``bundle.json`` holding the review band (calibrated probability, each side of the threshold)."""


def check_referral(path: Path, meta: Mapping[str, Any]) -> None:
    """The refer rule's numbers, checked on load: a damaged ``seen`` block (a range of NaN, a
    text) or band silently stopped referring anyone, the safety a lender relies on outside the
    training data. A bundle written before either existed has none and refers as it always did."""
    seen = meta.get(SEEN_KEY, {})
    problem = None if isinstance(seen, Mapping) else f"its {SEEN_KEY!r} block is not an object"
    for name, known in seen.items() if problem is None else ():
        if isinstance(known, Mapping) and "levels" in known:
            if not isinstance(known["levels"], list) or not all(isinstance(v, str) for v in known["levels"]):
                problem = f"the levels seen of {name!r} are not a list of texts"
        elif not (
            isinstance(known, Mapping)
            and all(_is_number(known.get(k)) and math.isfinite(known[k]) for k in ("min", "max"))
            and known["min"] <= known["max"]
        ):
            problem = f"the range seen of {name!r} is not two numbers, min <= max"
        if problem:
            break
    band = meta.get(REVIEW_BAND_KEY, 0.0)
    if problem is None and not (_is_number(band) and 0 <= band < 0.5):  # as train and the setting
        problem = f"its review band {str(band)[:40]!r} is not a number at least 0 and below 0.5"
    if problem is not None:
        raise ModelBundleError(f"{path}: {META_FILE}: {problem}; restore the file or retrain")


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def bundle_threshold(path: Path, meta: Mapping[str, Any]) -> float:
    """The bundle's threshold, a probability: a NaN there (a hand-edited file) approved every
    applicant and an infinity refused none, as if the model had decided."""
    value = meta.get("threshold")
    if _is_number(value) and 0 <= value <= 1:
        return float(value)
    raise ModelBundleError(
        f"{path}: its {META_FILE} threshold {str(value)[:40]!r} is not a probability between 0 and 1; "
        "restore the file or retrain"
    )


def load_booster(path: Path) -> Any:
    """The bundle's booster file as an ``xgboost.Booster``; an unreadable one is one line naming it."""
    from .boosters import xgboost

    xgb = xgboost()
    try:
        return xgb.Booster(model_file=str(path / MODEL_FILE))
    except xgb.core.XGBoostError as error:
        raise ModelBundleError(
            f"{path}: cannot load {MODEL_FILE} ({xgboost_reason(error, 'unreadable')})"
        ) from None


def not_scored(version: str, source: str, first: int, last: int, error: BaseException) -> ModelBundleError:
    """One line for rows a model could not score: the file, the rows (numbered in the whole file),
    the model, and XGBoost's reason without its source path and stack."""
    reason = xgboost_reason(error, type(error).__name__)
    return ModelBundleError(f"{source}, rows {first}-{last}: model {version} could not score them ({reason})")


def xgboost_reason(error: BaseException, default: str) -> str:
    """The first line of an XGBoost error, for a one-line message: XGBoost starts it with
    "[time] /its/source/file.cc:line: " and follows it with a stack trace, neither the user's to read."""
    text = str(error).strip()
    first = text.splitlines()[0] if text else ""
    return re.sub(r"^\[[0-9:]+\]\s+\S+:\d+:\s*", "", first) or default


def read_bundle_schema(path: Path, meta: Mapping[str, Any]) -> Schema:
    """The schema a bundle was trained on; German Credit's for a bundle older than travelling schemas."""
    file = path / SCHEMA_FILE
    if not file.exists():
        if meta.get("schema_fingerprint"):
            raise ModelBundleError(f"{path}: {SCHEMA_FILE} is missing; retrain or restore it")
        return GERMAN
    try:
        schema = parse_schema(file.read_text(encoding="utf-8"), str(file))
    except (OSError, UnicodeDecodeError, SchemaError) as error:
        first = str(error).splitlines()[0] if str(error) else "unreadable"
        raise ModelBundleError(f"{path}: unreadable {SCHEMA_FILE} ({first})") from None
    expected = meta.get("schema_fingerprint")
    if expected and schema.fingerprint != expected:
        raise ModelBundleError(
            f"{path}: {SCHEMA_FILE} was changed after training (its sha256 differs from bundle.json's); "
            "restore it or retrain"
        )
    return schema


def promote(models_dir: Path, ref: str, alias: str = PRODUCTION) -> str:
    """Point an alias (``production``) at a version of ``models_dir``; a running server picks the change up.

    Only a version named ``vN`` (or by another alias) that loads: an alias written from a path
    would point at a name this directory does not have, and every server following it would lose
    its model. Returns the version.
    """
    if not _ALIAS_RE.fullmatch(alias) or _VERSION_RE.match(alias):
        raise ConfigurationError(f"alias {alias!r} is not a valid alias name ({ALIAS_RULE})")
    aliases = read_aliases(models_dir)
    version = aliases.get(ref, ref)
    if not _VERSION_RE.match(version):
        known = ", ".join(list_versions(models_dir)) or "none"
        raise ConfigurationError(
            f"cannot promote {ref!r}: name a version of {models_dir} (v1, v2, ...) or an alias; versions: {known}"
        )
    if alias == SHADOW and version == aliases.get(PRODUCTION):
        # The service would score every request twice with one model and call it a challenger.
        raise ConfigurationError(f"{version} is the production model; a shadow must be another version")
    load_bundle(models_dir, version)
    aliases[alias] = version
    write_json_atomic(models_dir / ALIASES_FILE, aliases)
    return version


def drop_alias(models_dir: Path, alias: str) -> str | None:
    """Remove an alias (``preauth models shadow --off``); returns the version it pointed at, if any.

    Written like :func:`promote` (a new file renamed into place), so a running server notices."""
    aliases = read_aliases(models_dir)
    version = aliases.pop(alias, None)
    if version is not None:
        write_json_atomic(models_dir / ALIASES_FILE, aliases)
    return version
