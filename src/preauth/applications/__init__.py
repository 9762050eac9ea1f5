"""Credit applications: the one schema, and reading and validating files against it.

- :mod:`.schema`: what an application is (``FIELDS``), column spellings, model inputs;
- :mod:`.reading`: CSV, Parquet and JSON into text cells, and the front doors below;
- :mod:`.validation`: text cells checked against the schema, bad rows kept as :class:`Reject`.
"""

from .reading import (
    applications_from_csv_text,
    applications_from_records,
    cell_text,
    check_header,
    read_applications,
    read_table,
    records_to_table,
)
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
