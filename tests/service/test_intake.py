"""The service's fast intake agrees with the vectorised validation, message for message."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from service_helpers import application

from preauth import applications, features
from preauth.errors import InputError
from preauth.service.intake import check_records, encode_rows, records_from_csv

pytestmark = pytest.mark.booster_path

BAD = [
    application(Age=7),
    application(Age="abc"),
    application(Age=35.5),
    application(Age=None),
    application(Job=9),
    application(Housing="castle"),
    application(Housing=""),
    application(Purpose="boat"),
    application(**{"Credit amount": -5}),
    application(**{"Credit amount": "inf"}),
    application(Duration=0),
    application(**{"Credit amount": 10**20}),
    application(**{"Credit amount": 9e307}),
    application(Duration=2**63),
    application(Sex="other"),
]
GOOD = [
    application(),
    application(
        **{"Saving accounts": None, "Checking account": "", "Housing": "RENT", "Credit amount": 1234.5}
    ),
    application(**{"Saving accounts": "unknown", "Age": "41", "Duration": 24.0}),
]


def test_same_rejects_and_reasons_as_validate():
    records = GOOD + BAD
    checked = check_records(records)
    slow = applications.applications_from_records(records)
    assert [(p.row, p.column, p.reason) for p in checked.problems] == [
        (r.row, r.column, r.reason) for r in slow.rejects
    ]
    assert [a.row for a in checked.accepted] == list(slow.frame.index)


def test_same_matrix_as_features_encode():
    columns = applications.feature_columns(exclude=())
    checked = check_records(GOOD)
    slow = applications.applications_from_records(GOOD)
    np.testing.assert_array_equal(
        encode_rows(checked.accepted, columns), features.encode(slow.frame, columns)
    )
    assert [a.given for a in checked.accepted] == [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in slow.given.to_dict(orient="records")
    ]


def test_snake_case_keys_and_results_objects_are_accepted():
    snake = {f.key: f.example for f in applications.FIELDS}
    result_object = {"input_data": application(), "probability_fraud": 0.1}
    for records in ([snake], [result_object]):
        checked = check_records(records)
        assert len(checked.accepted) == 1 and not checked.problems
    assert check_records([snake]).accepted[0].values == check_records([result_object]).accepted[0].values


def test_request_level_errors():
    with pytest.raises(InputError, match="missing required column 'Duration'"):
        check_records([{k: v for k, v in application().items() if k != "Duration"}])
    with pytest.raises(InputError, match="row 1: expected an application object"):
        check_records([1, 2])  # no object at all: the request is unusable
    mixed = check_records([application(), None, [application()], application(Age=40)])
    assert [i.row for i in mixed.accepted] == [1, 4]  # one bad element costs its neighbours nothing
    assert [(p.row, p.column, p.value, p.reason) for p in mixed.problems] == [
        (2, None, "null", "expected an application object"),
        (
            3,
            None,
            json.dumps([application()], ensure_ascii=False),
            "expected an application object",
        ),
    ]
    (doubled,) = check_records([{**application(), "age": 40}]).problems  # a problem of that object only
    assert doubled.reason == "duplicate fields 'Age' and 'age' (both mean 'Age')"
    with pytest.raises(InputError, match="row 1: a CSV without a header needs 9 fields"):
        check_records(records_from_csv("35,male,2\n"))  # no row readable: the request is unusable


def test_a_blank_optional_field_is_missing_in_files_and_requests_alike():
    records = [application(Sex=""), application(Sex=None), application(Sex="other")]
    checked = check_records(records)
    slow = applications.applications_from_records(records)
    assert [a.row for a in checked.accepted] == list(slow.frame.index) == [1, 2]
    assert (
        [(p.row, p.column) for p in checked.problems]
        == [(r.row, r.column) for r in slow.rejects]
        == [(3, "Sex")]
    )
    assert slow.frame["Sex"].isna().all() and all(a.values["Sex"] is None for a in checked.accepted)


def test_a_long_bad_value_is_quoted_short_in_files_and_requests_alike():
    records = [application(Housing="x" * 5000), application(Age="9" * 90 + "a")]
    checked = check_records(records)
    slow = applications.applications_from_records(records)
    assert [p.reason for p in checked.problems] == [r.reason for r in slow.rejects]
    assert checked.problems[0].reason == f"'{'x' * 80}\u2026' is not one of: own, rent, free"
    assert checked.problems[1].reason == f"'{'9' * 80}\u2026' is not a whole number"
