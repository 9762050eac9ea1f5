"""Credit applications: the one schema, and reading and validating files against it.

- :mod:`.schema`: what an application is (``FIELDS``), column spellings, model inputs;
- :mod:`.reading`: CSV, Parquet and JSON into text cells, and the front doors below;
- :mod:`.validation`: text cells checked against the schema, bad rows kept as :class:`Reject`.
"""

import importlib
from typing import TYPE_CHECKING, Any

from .schema import (
    DEFAULT_EXCLUDED,
    FIELD_NAMES,
    FIELDS,
    ID_COLUMN,
    LARGEST_NUMBER,
    MISSING_TOKENS,
    OUTCOME,
    UNKNOWN,
    Field,
    OnUnknown,
    canonical_column,
    example_application,
    feature_columns,
    field_by_name,
    normalize_name,
    too_large_reason,
)

# Reading and validation need pandas and Arrow: they load on first use, so that importing the schema
# (the CLI's option lists, `preauth --help`) stays cheap.
_LAZY = {
    "applications_from_csv_text": "reading",
    "applications_from_records": "reading",
    "cell_text": "reading",
    "check_header": "reading",
    "read_applications": "reading",
    "read_table": "reading",
    "records_to_table": "reading",
    "MALFORMED_ROWS": "validation",
    "Applications": "validation",
    "Reject": "validation",
    "validate": "validation",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


if TYPE_CHECKING:
    from .reading import (
        applications_from_csv_text,
        applications_from_records,
        cell_text,
        check_header,
        read_applications,
        read_table,
        records_to_table,
    )
    from .validation import MALFORMED_ROWS, Applications, Reject, validate

__all__ = [
    "DEFAULT_EXCLUDED",
    "FIELDS",
    "FIELD_NAMES",
    "ID_COLUMN",
    "LARGEST_NUMBER",
    "MALFORMED_ROWS",
    "MISSING_TOKENS",
    "OUTCOME",
    "UNKNOWN",
    "Applications",
    "Field",
    "OnUnknown",
    "Reject",
    "applications_from_csv_text",
    "applications_from_records",
    "canonical_column",
    "cell_text",
    "check_header",
    "example_application",
    "feature_columns",
    "field_by_name",
    "normalize_name",
    "read_applications",
    "read_table",
    "records_to_table",
    "too_large_reason",
    "validate",
]
