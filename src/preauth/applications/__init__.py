"""Credit applications: the schema, and reading and validating files against it.

- :mod:`.schema`: what an application is (a :class:`Schema` value and its canonical TOML text),
  column spellings, model inputs;
- :mod:`.schema_file`: schemas read from TOML, every mistake on its own line;
- :mod:`.german`: German Credit, :data:`GERMAN`, the default schema (one schema file like any other);
- :mod:`.reading`: CSV, Parquet and JSON into text cells, and the front doors below;
- :mod:`.cells`: the text of a cell, one value or a whole typed column at a time;
- :mod:`.batches`: a large file read in batches of text cells;
- :mod:`.validation`: text cells checked against the schema, bad rows kept as :class:`Reject`.
"""

import importlib
from typing import TYPE_CHECKING, Any

from .german import (
    DEFAULT_EXCLUDED,
    FIELD_NAMES,
    FIELDS,
    GERMAN,
    OUTCOME,
    canonical_column,
    example_application,
    feature_columns,
    field_by_name,
)
from .schema import (
    GERMAN_COSTS,
    ID_COLUMN,
    LARGEST_NUMBER,
    MISSING_TOKENS,
    UNKNOWN,
    Costs,
    Field,
    OnUnknown,
    Schema,
    Target,
    dump_schema,
    normalize_name,
    too_large_reason,
)
from .schema_file import SchemaError, load_schema, parse_schema

# Reading and validation need pandas and Arrow: they load on first use, so that importing the schema
# (the CLI's option lists, `preauth --help`) stays cheap.
_LAZY = {
    "applications_from_csv_text": "reading",
    "applications_from_records": "reading",
    "cell_text": "cells",
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
    from .cells import cell_text
    from .reading import (
        applications_from_csv_text,
        applications_from_records,
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
    "GERMAN",
    "GERMAN_COSTS",
    "ID_COLUMN",
    "LARGEST_NUMBER",
    "MALFORMED_ROWS",
    "MISSING_TOKENS",
    "OUTCOME",
    "UNKNOWN",
    "Applications",
    "Costs",
    "Field",
    "OnUnknown",
    "Reject",
    "Schema",
    "SchemaError",
    "Target",
    "applications_from_csv_text",
    "applications_from_records",
    "canonical_column",
    "cell_text",
    "check_header",
    "dump_schema",
    "example_application",
    "feature_columns",
    "field_by_name",
    "load_schema",
    "normalize_name",
    "parse_schema",
    "read_applications",
    "read_table",
    "records_to_table",
    "too_large_reason",
    "validate",
]
