"""The API's published shapes, derived from the application schema for the OpenAPI document.

Request bodies are read and checked by :mod:`preauth.service.intake` (faster than a model class,
and with the schema's own messages), so the request schemas here exist to document: they are
built from :data:`preauth.applications.FIELDS`, like every other view of an application.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ..applications import FIELDS, LARGEST_NUMBER, example_application


def application_schema() -> dict[str, Any]:
    """JSON Schema of one application under its original column names (snake_case keys work too)."""
    properties: dict[str, Any] = {}
    for f in FIELDS:
        prop: dict[str, Any] = {"description": f.description, "example": f.example}
        if f.is_category:
            levels = list(f.categories)
            nullable = f.missing_is_unknown or not f.required
            prop["type"] = ["string", "null"] if nullable else "string"
            prop["enum"] = [*levels, None] if nullable else levels
            if f.missing_is_unknown:
                prop["description"] += " (null, empty or 'unknown' when not known)"
            elif nullable:
                prop["description"] += " (null or empty when not given)"
        else:
            prop["type"] = "integer" if f.kind == "integer" else "number"
            if f.positive:
                prop["exclusiveMinimum"] = 0
                prop["maximum"] = LARGEST_NUMBER  # kept exactly up to 2^53, refused past it
            else:
                prop["minimum"], prop["maximum"] = f.minimum, f.maximum
        properties[f.name] = prop
    return {
        "type": "object",
        "title": "Application",
        "description": "One credit application. Keys may also be snake_case (credit_amount) or "
        "any alias the schema knows; extra keys are ignored.",
        "properties": properties,
        "required": [f.name for f in FIELDS if f.required],
        "example": example_application(),
    }


def second_example() -> dict[str, Any]:
    """Another valid application: missing balances, a long large loan."""
    example = example_application()
    example.update({"Age": 22, "Job": 1, "Housing": "rent", "Credit amount": 15000, "Duration": 48})
    example.update({"Saving accounts": None, "Checking account": None, "Purpose": "business"})
    return example


def single_body() -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": application_schema(),
                "examples": {
                    "typical": {"summary": "A typical application", "value": example_application()},
                    "missing balances": {"summary": "Balances not known", "value": second_example()},
                },
            }
        },
    }


def batch_body() -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"type": "array", "items": application_schema(), "minItems": 1},
                        {
                            "type": "object",
                            "properties": {
                                "instances": {"type": "array", "items": application_schema(), "minItems": 1}
                            },
                            "required": ["instances"],
                        },
                    ]
                },
                "examples": {"two applications": {"value": [example_application(), second_example()]}},
            }
        },
    }


def invocations_body() -> dict[str, Any]:
    header = ",".join(f.name for f in FIELDS)
    row = ",".join(str(f.example) for f in FIELDS)
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    # anyOf: an application object may carry extra keys, "instances" among them
                    "anyOf": [
                        application_schema(),
                        {"type": "array", "items": application_schema(), "minItems": 1},
                        {
                            "type": "object",
                            "properties": {
                                "instances": {"type": "array", "items": application_schema(), "minItems": 1}
                            },
                            "required": ["instances"],
                        },
                    ]
                },
                "examples": {
                    "one": {"value": example_application()},
                    "instances": {"value": {"instances": [example_application(), second_example()]}},
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
    feature: str = Field(examples=["Checking account"])
    value: Any = Field(examples=["little"])
    contribution: float = Field(description="Push on the log-odds of bad risk (TreeSHAP).", examples=[0.42])
    direction: str = Field(examples=["towards bad risk"])
    text: str = Field(examples=["Checking account: little raised the risk"])


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
    decision: str = Field(examples=["approve"], description="approve (good risk) or decline (bad risk).")
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


class RefusedRow(BaseModel):
    """A row ``/invocations`` could not score, in its place among the results."""

    input_data: dict[str, Any]
    error: Reject


InvocationsAnswer = ResultObject | RefusedRow | list[ResultObject | RefusedRow]
"""One result object for one application object, else a list in the order of the rows."""


class ModelCard(BaseModel):
    version: str
    created_at: str | None
    threshold: float
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
