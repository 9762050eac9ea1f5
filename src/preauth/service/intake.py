"""Request bodies to model rows: the service's fast path through the application schema.

:func:`preauth.applications.validate` is vectorised for files of any size, but its fixed cost (a
few milliseconds of pandas) would dominate a one-application request. This module checks a handful
of objects against the same :class:`~preauth.applications.Schema` (the served bundle's), each value
by the same check files use (:mod:`preauth.applications.values`), so the verdicts and messages
are the same by construction, and encodes each straight into a float32 row the way
:func:`preauth.features.encode` does.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..applications import GERMAN, Field, Schema, cell_text, check_header
from ..applications.reading import NotAnApplication, application_objects
from ..applications.values import check_value, excerpt
from ..errors import InputError
from .security import ECHO_LIMIT, TEXT_LIMIT, shorten

SOURCE = "<request>"


@dataclass
class Intake:
    """One valid application: canonical values (``frame`` row), as given, and encoded."""

    row: int
    values: dict[str, Any]
    given: dict[str, Any]


@dataclass(frozen=True)
class Problem:
    """Why one application was refused, in the schema's own words."""

    row: int
    column: str | None
    value: str | None
    reason: str

    def message(self) -> str:
        return str(InputError(self.reason, source=SOURCE, row=self.row, column=self.column))

    def as_dict(self) -> dict[str, Any]:
        """The problem as answered, the value echoed at most ``ECHO_LIMIT`` characters long (and
        any other text the client sent, such as a key, within ``TEXT_LIMIT``)."""
        value, reason = self.value, self.reason
        if value is not None and len(value) > ECHO_LIMIT:
            value, reason = shorten(value, ECHO_LIMIT), reason.replace(value, shorten(value, ECHO_LIMIT))
        reason = shorten(reason, TEXT_LIMIT)
        message = str(InputError(reason, source=SOURCE, row=self.row, column=self.column))
        return {"row": self.row, "field": self.column, "value": value, "reason": reason, "message": message}


@dataclass
class Checked:
    """The outcome of checking a request's applications: the good ones and the refused ones."""

    accepted: list[Intake]
    problems: list[Problem]
    records: list[Mapping[str, Any]]


def check_records(records: Sequence[Any], *, all_fields: bool = False, schema: Schema = GERMAN) -> Checked:
    """Validate application objects; raises :class:`InputError` only when the request as a whole
    is unusable (no objects at all, no applications, a required field absent from every object).

    A refused object has one problem (its first bad field, as file validation reports it), or with
    ``all_fields`` one per bad field: a person fixing one application wants every mistake at once."""
    rows, malformed = application_objects(records, SOURCE)  # a results file's object: its application
    if not rows:
        raise InputError("no applications (empty list)", source=SOURCE)
    # Each object's keys are its own: an object is checked the same alone or in a batch, whatever
    # keys (or spellings of them) its neighbours use.
    mapped = [_columns(record, number, schema) for number, record in enumerate(rows, start=1)]
    present = {name for columns, _ in mapped for name in columns}
    for f in schema.fields:
        if f.required and f.name not in present:
            error = InputError(f"missing required column '{f.name}'", source=SOURCE)
            error.column = f.name  # the field, for the 422 answer; the message already names it
            raise error
    accepted: list[Intake] = []
    problems: list[Problem] = []
    for number, (record, (columns, doubled)) in enumerate(zip(rows, mapped, strict=True), start=1):
        if number in malformed:  # not an object: refused alone, its neighbours still decided
            text, reason = malformed[number]
            problems.append(Problem(number, None, text, reason))
            continue
        if doubled is not None:
            problems.append(doubled)
            continue
        outcome = check_one(record, columns, number, schema)
        if isinstance(outcome, Intake):
            accepted.append(outcome)
        else:
            problems.extend(field_problems(record, columns, number, schema) if all_fields else [outcome])
    return Checked(accepted, problems, rows)


def _columns(record: Mapping[str, Any], row: int, schema: Schema) -> tuple[dict[str, str], Problem | None]:
    """Canonical field name → this object's key; two keys for one field are a problem of this row."""
    columns: dict[str, str] = {}
    doubled = None
    for key in record:
        name = schema.canonical_column(str(key))
        if name is None:
            continue
        if name in columns and doubled is None:
            reason = f"duplicate fields '{columns[name]}' and '{key}' (both mean '{name}')"
            doubled = Problem(row, name, None, reason)
        columns.setdefault(name, str(key))
    return columns, doubled


def check_one(
    record: Mapping[str, Any], columns: Mapping[str, str], row: int, schema: Schema = GERMAN
) -> Intake | Problem:
    """Check one object whose keys were mapped to canonical names in ``columns``."""
    values: dict[str, Any] = {}
    given: dict[str, Any] = {}
    for f in schema.fields:
        outcome = _field_outcome(f, record, columns, row, schema)
        if isinstance(outcome, Problem):
            return outcome
        values[f.name] = outcome[0]
        if (key := columns.get(f.name)) is not None:
            given[key] = outcome[1]
    return Intake(row, values, given)


def field_problems(
    record: Mapping[str, Any], columns: Mapping[str, str], row: int, schema: Schema = GERMAN
) -> list[Problem]:
    """Every field of one object that fails its check (:func:`check_one` stops at the first)."""
    problems = []
    for f in schema.fields:
        outcome = _field_outcome(f, record, columns, row, schema)
        if isinstance(outcome, Problem):
            problems.append(outcome)
    return problems


def _field_outcome(
    f: Field, record: Mapping[str, Any], columns: Mapping[str, str], row: int, schema: Schema
) -> tuple[Any, Any] | Problem:
    """One field of one object, checked as the same cell of a file would be.

    A required field the object leaves out is a blank cell of a column the file must have (a
    JSON Lines line without the key is exactly that): refused as a missing value unless the field
    says what missing means. Alone, such an object is refused with the request (no object has the
    field); beside objects that have it, it used to be scored with the field empty. Any other
    field left out is a column the file may lack: its missing value.
    """
    key = columns.get(f.name)
    if key is None and not f.required:
        return (f.missing if f.missing_is_unknown else None), None
    text = "" if key is None else cell_text(record.get(key)).strip()
    return _check(f, text, row, schema)


def _check(f: Field, text: str, row: int, schema: Schema) -> tuple[Any, Any] | Problem:
    """The one value check files use too (:mod:`preauth.applications.values`), as a Problem or values."""
    checked = check_value(f, text, schema)
    if checked.reason is not None:
        return Problem(row, f.name, text, checked.reason)
    return checked.value, checked.given


def encode_rows(accepted: Sequence[Intake], features: Sequence[str], schema: Schema = GERMAN) -> np.ndarray:
    """The float32 matrix :func:`preauth.features.encode` would build for these applications."""
    matrix = np.empty((len(accepted), len(features)), dtype=np.float32)
    coders = [schema.level_codes.get(name) for name in features]
    for i, item in enumerate(accepted):
        values = item.values
        for j, (name, codes) in enumerate(zip(features, coders, strict=True)):
            value = values[name]
            if codes is None:
                matrix[i, j] = np.nan if value is None else value
            else:
                matrix[i, j] = codes.get(value, np.nan)
    return matrix


def records_from_body(body: Any) -> list[Any]:
    """A JSON body as a list of application objects: one object, a list, or ``{"instances": [...]}``."""
    if isinstance(body, dict):
        if "instances" in body and isinstance(body["instances"], list):
            return list(body["instances"])
        if "inputs" in body and isinstance(body["inputs"], list):
            return list(body["inputs"])
        return [body]
    if isinstance(body, list):
        return body
    raise InputError('expected an application object, a list of them, or {"instances": [...]}', source=SOURCE)


def records_from_csv(text: str, schema: Schema = GERMAN) -> list[dict[str, Any] | NotAnApplication]:
    """CSV text as application objects; without a header row, the original column order. A row
    with the wrong number of fields is a :class:`NotAnApplication` in its place: refused alone."""
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise InputError("empty body", source=SOURCE)
    lines = [line for line in csv.reader(io.StringIO(text), delimiter=_delimiter(text)) if line]
    if not lines:
        raise InputError("empty body", source=SOURCE)
    first = [c.strip() for c in lines[0]]
    if any(schema.canonical_column(c) is not None for c in first):
        check_header(first, SOURCE, schema)
        header, body = first, lines[1:]
        if not body:
            raise InputError("no applications (header only)", source=SOURCE)
    else:
        header, body = list(schema.field_names), lines
    out: list[dict[str, Any] | NotAnApplication] = []
    for cells in body:
        if len(cells) == len(header):
            out.append(dict(zip(header, cells, strict=True)))
            continue
        reason = (
            f"expected {len(header)} fields, got {len(cells)}"
            if header is first
            else f"a CSV without a header needs {len(schema.fields)} fields in the order "
            f"{', '.join(schema.field_names)}; got {len(cells)}"
        )
        out.append(NotAnApplication(excerpt(",".join(cells)), reason))
    return out


def _delimiter(text: str) -> str:
    first = text.split("\n", 1)[0]
    return ";" if first.count(";") > first.count(",") else ","
