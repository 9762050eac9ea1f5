"""The API's published shapes, derived from the application schema for the OpenAPI document.

Request bodies are read and checked by :mod:`preauth.service.intake` (faster than a model class,
and with the schema's own messages), so the request schemas here exist to document: they are
built from the served model's :class:`~preauth.applications.Schema`, like every other view of an
application (:func:`follow_schema` puts them in the OpenAPI document of a running service).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, Field

from ..applications import GERMAN, LARGEST_NUMBER, Schema, example_application


def application_schema(schema: Schema = GERMAN) -> dict[str, Any]:
    """JSON Schema of one application under its original column names (snake_case keys work too)."""
    properties: dict[str, Any] = {}
    for f in schema.fields:
        prop: dict[str, Any] = {"description": f.description, "example": f.example}
        if f.is_category:
            levels = list(f.categories)
            nullable = f.missing_is_unknown or not f.required
            prop["type"] = ["string", "null"] if nullable else "string"
            prop["enum"] = [*levels, None] if nullable else levels
            if f.missing_is_unknown:
                prop["description"] += f" (null, empty or '{f.missing}' when not known)"
            elif nullable:
                prop["description"] += " (null or empty when not given)"
        else:
            number = "integer" if f.kind == "integer" else "number"
            prop["type"] = [number, "null"] if f.missing_allowed or not f.required else number
            if f.positive:
                prop["exclusiveMinimum"] = 0
                prop["maximum"] = LARGEST_NUMBER  # kept exactly up to 2^53, refused past it
            else:
                prop["minimum"], prop["maximum"] = f.minimum, f.maximum
        properties[f.name] = prop
    return {
        "type": "object",
        "title": "Application",
        "description": f"One credit application. Keys may also be snake_case ({_snake_example(schema)}) or "
        "any alias the schema knows; extra keys are ignored.",
        "properties": properties,
        "required": [f.name for f in schema.fields if f.required],
        "example": schema.example(),
    }


def _snake_example(schema: Schema) -> str:
    """A key of the schema in snake_case, preferring one that differs from its name (``credit_amount``)."""
    keys = [f.key for f in schema.fields]
    return next((f.key for f in schema.fields if f.key != f.name and " " in f.name), keys[0])


def second_example(schema: Schema = GERMAN) -> dict[str, Any]:
    """Another valid application: every value the schema lets be missing left out (German Credit:
    the balances), each other category at its second level."""
    example = schema.example()
    for f in schema.fields:
        if f.missing_allowed:
            example[f.name] = None
        elif f.is_category and len(f.categories) > 1:
            example[f.name] = next(c for c in f.categories if c != f.example)
    return example


_REASON_FIELD = next(f for f in GERMAN.fields if f.is_category and f.name not in GERMAN.protected)


def single_body(schema: Schema = GERMAN) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": application_schema(schema),
                "examples": {
                    "typical": {"summary": "A typical application", "value": schema.example()},
                    "missing balances": {"summary": "Balances not known", "value": second_example(schema)},
                },
            }
        },
    }


def batch_body(schema: Schema = GERMAN) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"type": "array", "items": application_schema(schema), "minItems": 1},
                        {
                            "type": "object",
                            "properties": {
                                "instances": {
                                    "type": "array",
                                    "items": application_schema(schema),
                                    "minItems": 1,
                                }
                            },
                            "required": ["instances"],
                        },
                    ]
                },
                "examples": {"two applications": {"value": [schema.example(), second_example(schema)]}},
            }
        },
    }


def invocations_body(schema: Schema = GERMAN) -> dict[str, Any]:
    header = ",".join(f.name for f in schema.fields)
    row = ",".join(str(f.example) for f in schema.fields)
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    # anyOf: an application object may carry extra keys, "instances" among them
                    "anyOf": [
                        application_schema(schema),
                        {"type": "array", "items": application_schema(schema), "minItems": 1},
                        {
                            "type": "object",
                            "properties": {
                                "instances": {
                                    "type": "array",
                                    "items": application_schema(schema),
                                    "minItems": 1,
                                }
                            },
                            "required": ["instances"],
                        },
                    ]
                },
                "examples": {
                    "one": {"value": schema.example()},
                    "instances": {"value": {"instances": [schema.example(), second_example(schema)]}},
                },
            },
            "text/csv": {
                "schema": {"type": "string"},
                "examples": {
                    "with header": {"value": f"{header}\n{row}\n"},
                    "without header (original column order)": {"value": f"{row}\n"},
                },
            },
        },
    }


class Reason(BaseModel):
    feature: str = Field(examples=[_REASON_FIELD.name])
    value: Any = Field(examples=["little"])
    contribution: float = Field(description="Push on the log-odds of bad risk (TreeSHAP).", examples=[0.42])
    direction: str = Field(examples=["towards bad risk"])
    text: str = Field(examples=[f"{_REASON_FIELD.name}: {_REASON_FIELD.example} raised the risk"])


class Decision(BaseModel):
    """A stored decision."""

    id: str
    request_id: str
    timestamp: str = Field(description="When it was decided (ISO 8601, UTC).")
    model_version: str
    input: dict[str, Any] = Field(description="The application as given.", examples=[example_application()])
    probability: float = Field(description="Probability of bad risk.")
    target: str = Field(examples=["good risk"])
    is_fraud: bool = Field(description="probability >= threshold (the original's name for bad risk).")
    decision: str = Field(
        examples=["approve"],
        description="approve (good risk), decline (bad risk) or refer (a person decides: GET /v1/reviews).",
    )
    confidence: float = Field(description="max(probability, 1 - probability).")
    threshold: float
    reasons: list[Reason] = Field(description="At most four principal reasons.")
    contributions: dict[str, float] | None = Field(
        None, description="Every feature's contribution and the bias; they sum to logit(probability)."
    )
    channel: str = Field(examples=["api"], description="api, invocations or page.")


class Reject(BaseModel):
    row: int
    field: str | None
    value: str | None
    reason: str
    message: str


class BatchAnswer(BaseModel):
    decisions: list[Decision]
    rejects: list[Reject]


class DecisionDetail(Decision):
    """A stored decision with what a person and the world said about it later."""

    review: dict[str, Any] | None = Field(
        None, description="The reviewer's decision, name, reason and reviewed_at; null until reviewed."
    )
    outcome: dict[str, Any] | None = Field(
        None, description="The real outcome (repaid or defaulted) and known_at; null until known."
    )


class DecisionPage(BaseModel):
    decisions: list[Decision]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page.")


class ResultObject(BaseModel):
    """The original pipeline's result object."""

    input_data: dict[str, Any]
    probability_fraud: float
    is_fraud: bool
    target: str
    confidence: float
    timestamp: str
    decision: str | None = Field(
        None,
        description="approve, decline or refer (manual review); only when the request's "
        "X-Amzn-SageMaker-Custom-Attributes asks for explain",
    )
    reasons: list[dict[str, Any]] | None = Field(
        None, description="Why: a referral's reasons first; only with explain, as decision"
    )


class RefusedRow(BaseModel):
    """A row ``/invocations`` could not score, in its place among the results."""

    input_data: dict[str, Any]
    error: Reject


InvocationsAnswer = ResultObject | RefusedRow | list[ResultObject | RefusedRow]
"""One result object for one application object, else a list in the order of the rows."""


class ReviewBand(BaseModel):
    """Decisions whose probability is within ``band`` of the threshold (each side) are referred."""

    band: float = Field(description="The band in use (0: only applications outside training are referred).")
    trained: float | None = Field(
        description="The band the bundle was trained with; null for a bundle older than review bands."
    )
    source: Literal["bundle", "PREAUTH_REVIEW_BAND"] = Field(
        description="Which decides: the bundle's own band, or the PREAUTH_REVIEW_BAND setting overriding it."
    )


class ModelCard(BaseModel):
    version: str
    created_at: str | None
    threshold: float
    review_band: ReviewBand
    features: list[str]
    metrics: dict[str, Any]
    label_provenance: Any = None
    loaded_at: str
    report_url: str | None


class ErrorDetail(BaseModel):
    status: int
    message: str
    errors: list[dict[str, Any]] | None = None


class ErrorAnswer(BaseModel):
    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorAnswer, "description": "Missing or invalid API key."},
    413: {"model": ErrorAnswer, "description": "Body larger than the limit."},
    422: {"model": ErrorAnswer, "description": "Invalid application: field-level messages."},
}


BODIES: dict[tuple[str, str], Callable[[Schema], dict[str, Any]]] = {
    ("/v1/decisions", "post"): single_body,
    ("/v1/decisions/batch", "post"): batch_body,
    ("/invocations", "post"): invocations_body,
    ("/endpoints/{endpoint_name}/invocations", "post"): invocations_body,
}


def follow_schema(app: FastAPI, schema_of: Callable[[], Schema]) -> None:
    """Make the app's OpenAPI document describe the served model's schema (``schema_of()``), not the
    code's default: request bodies and examples are rebuilt when a promotion changes the schema."""
    original = app.openapi
    documents: dict[str, dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        schema = schema_of()
        if schema.fingerprint not in documents:
            document = copy.deepcopy(original())
            for (path, method), body in BODIES.items():
                operation = document.get("paths", {}).get(path, {}).get(method)
                if operation is not None:
                    operation["requestBody"] = body(schema)
            documents[schema.fingerprint] = document
        return documents[schema.fingerprint]

    app.openapi = openapi  # type: ignore[method-assign]
