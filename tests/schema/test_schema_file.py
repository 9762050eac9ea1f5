"""Schema files: German Credit is one bundled file; every mistake in a file gets its own line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from preauth.applications import (
    FIELDS,
    GERMAN,
    OUTCOME,
    SchemaError,
    dump_schema,
    field_by_name,
    load_schema,
    parse_schema,
)

GOOD_FIELD = """
[[fields]]
name = "Amount"
kind = "number"
positive = true
"""


def mistakes(text: str) -> list[str]:
    with pytest.raises(SchemaError) as caught:
        parse_schema(text, "lender.toml")
    lines = str(caught.value).splitlines()
    assert lines == caught.value.mistakes
    assert all(line.startswith("lender.toml: ") for line in lines)
    return lines


def test_the_german_schema_is_the_bundled_file_and_the_module_names_are_views_of_it() -> None:
    assert GERMAN.name == "german_credit"
    assert GERMAN.source.endswith("schemas/german_credit.toml")
    assert GERMAN.fields == FIELDS
    assert [f.name for f in FIELDS] == [
        "Age", "Sex", "Job", "Housing", "Saving accounts", "Checking account", "Credit amount", "Duration", "Purpose",
    ]  # fmt: skip
    assert OUTCOME.name == "Risk" and OUTCOME.categories == ("good", "bad")
    assert GERMAN.protected == ("Sex",)
    assert field_by_name("saving_accounts").levels() == (
        "little",
        "moderate",
        "quite rich",
        "rich",
        "unknown",
    )
    assert field_by_name("Credit amount").direction == "increasing"
    assert field_by_name("Duration").direction == "increasing"
    balances = field_by_name("Saving accounts"), field_by_name("Checking account")
    assert all(f.ordered and f.direction == "decreasing" for f in balances)
    assert field_by_name("Age").direction is None
    assert field_by_name("Job").readable["3"] == "highly skilled"


def test_a_written_schema_reads_back_to_the_same_schema(tmp_path: Path) -> None:
    path = tmp_path / "copy.toml"
    path.write_text(GERMAN.to_toml(), encoding="utf-8")
    again = load_schema(path)
    assert again == GERMAN
    assert again.fingerprint == GERMAN.fingerprint


def test_the_refer_margin_is_the_fields_else_the_schemas_else_the_default_and_reads_back() -> None:
    schema = parse_schema(
        "refer_margin = 0.25\n" + GOOD_FIELD + "refer_margin = 0\n"
        "[[fields]]\nname = 'Term'\nkind = 'whole number'\nminimum = 1\nmaximum = 72\n"
    )
    assert schema.refer_margin == 0.25 and schema.field("Amount").refer_margin == 0.0
    assert schema.refer_margin_for("Amount") == 0.0 and schema.refer_margin_for("Term") == 0.25
    assert parse_schema(dump_schema(schema)) == schema
    assert GERMAN.refer_margin is None and GERMAN.refer_margin_for("Credit amount") == 0.10


def test_a_small_schema_with_a_target_an_ordered_category_and_a_missing_meaning() -> None:
    schema = parse_schema(
        """
name = "lender"
id = "ref"
[target]
column = "Status"
bad = [2]
good = [1]
[[fields]]
name = "Records"
kind = "ordered category"
categories = ["none", "some", "many"]
missing = "not asked"
direction = "increasing"
[[fields]]
name = "Income"
kind = "number"
minimum = 0
maximum = 1000
missing = "not declared"
direction = "decreasing"
""",
        "lender.toml",
    )
    records, income = schema.fields
    assert records.ordered and records.levels() == ("none", "some", "many", "not asked")
    assert records.direction == "increasing"
    assert income.missing_allowed and not income.is_category and income.direction == "decreasing"
    assert (
        schema.target is not None
        and schema.target.outcome("2") == "bad"
        and schema.target.outcome("1") == "good"
    )
    assert schema.is_id_column("REF", 3)
    assert parse_schema(dump_schema(schema), "again.toml") == schema


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name = \n", "lender.toml: not valid TOML (Invalid value (at line 1, column 8))"),
        ("name = 'x'", "lender.toml: no fields: add a [[fields]] table for each column"),
        ("colour = 'x'" + GOOD_FIELD, "lender.toml: key 'colour': unknown key; the keys are: costs, description, fields, id, name, protected, refer_margin, target"),
        ("[[fields]]\nkind = 'number'\npositive = true", "lender.toml: fields entry 1: 'name' is missing"),
        ("[[fields]]\nname = 'A'\nkind = 'text'", "lender.toml: field 'A': 'kind' must be one of: number, whole number, category, ordered category; got 'text'"),
        ("[[fields]]\nname = 'A'\nkind = 'number'", "lender.toml: field 'A': a number needs 'minimum' and 'maximum' (or 'positive = true')"),
        ("[[fields]]\nname = 'A'\nkind = 'number'\nminimum = 5\nmaximum = 1", "lender.toml: field 'A': 'minimum' 5 is above 'maximum' 1"),
        ("[[fields]]\nname = 'A'\nkind = 'number'\nminimum = '5'\nmaximum = 9", "lender.toml: field 'A': 'minimum' must be a number, got '5'"),
        ("[[fields]]\nname = 'A'\nkind = 'number'\npositive = true\ndirection = 'up'", "lender.toml: field 'A': 'direction' must be one of: increasing, decreasing; got 'up'"),
        ("[[fields]]\nname = 'A'\nkind = 'category'", "lender.toml: field 'A': a category needs 'categories'"),
        ("[[fields]]\nname = 'A'\nkind = 'category'\ncategories = ['x', 'y']\ndirection = 'increasing'", "lender.toml: field 'A': 'direction' applies to numbers and ordered categories: a category's levels have no order (list them in order and make it kind = \"ordered category\")"),
        ("[[fields]]\nname = 'A'\nkind = 'ordered category'\ncategories = ['x', 'y']\ndirection = 'down'", "lender.toml: field 'A': 'direction' must be one of: increasing, decreasing; got 'down'"),
        ("[[fields]]\nname = 'A'\nkind = 'category'\ncategories = ['x', 'X']", "lender.toml: field 'A': category 'x' is listed twice"),
        ("[[fields]]\nname = 'A'\nkind = 'category'\ncategories = ['x']\npositive = true", "lender.toml: field 'A': 'positive' applies to numbers, not to a category"),
        ("[[fields]]\nname = 'A'\nkind = 'category'\ncategories = ['x']\nlabels = {y = 'Y'}", "lender.toml: field 'A': label for 'y', which is not one of the categories"),
        ("[[fields]]\nname = 'A'\nkind = 'category'\ncategories = ['x']\nexample = 'z'", "lender.toml: field 'A': 'example' 'z' is not a valid value of this field"),
        ("[[fields]]\nname = 'A'\nkind = 'number'\npositive = true\nrequired = 'no'", "lender.toml: field 'A': 'required' must be true or false, got 'no'"),
        ("[[fields]]\nname = 'A'\nkind = 'number'\npositive = true\nshade = 1", "lender.toml: field 'A': unknown key 'shade'; the keys are: aliases, categories, description, direction, example, key, kind, labels, maximum, minimum, missing, name, positive, refer_margin, required, unit"),
        (GOOD_FIELD + GOOD_FIELD, "lender.toml: field 'Amount': 'Amount' is listed twice"),
        ("costs = 5" + GOOD_FIELD, "lender.toml: key 'costs': must be a table ([costs] with approve_bad and refuse_good)"),
        ("[costs]\napprove_bad = 0\nrefuse_good = 1" + GOOD_FIELD, "lender.toml: [costs]: 'approve_bad' must be above 0, got 0"),
        ("[costs]\napprove_bad = 3" + GOOD_FIELD, "lender.toml: [costs]: 'refuse_good' is missing (both costs are needed to choose a threshold)"),
        ("[costs]\napprove_bad = 'x'\nrefuse_good = 1" + GOOD_FIELD, "lender.toml: [costs]: 'approve_bad' must be a number, got 'x'"),
        ("[costs]\napprove_bad = 3\nrefuse_good = 1\nwrite_off = 2" + GOOD_FIELD, "lender.toml: costs key 'write_off': unknown key; the keys are: approve_bad, refuse_good"),
        ("protected = ['Sex']" + GOOD_FIELD, "lender.toml: key 'protected': 'Sex' is not one of the fields"),
        ("[target]\ncolumn = 'S'\nbad = ['1']" + GOOD_FIELD, "lender.toml: [target]: 'good' must list the values that mean good risk, e.g. good = [\"good\"] or good = [\"0\"]"),
        ("[target]\ncolumn = 'S'\nbad = ['1']\ngood = ['1']" + GOOD_FIELD, "lender.toml: [target]: '1' is listed as both bad and good"),
        ("[target]\nbad = ['1']\ngood = ['0']" + GOOD_FIELD, "lender.toml: [target]: 'column' is missing"),
        ("[target]\ncolumn = 'amount'\nbad = ['1']\ngood = ['0']" + GOOD_FIELD, "lender.toml: [target]: 'amount' is also a name of 'Amount'"),
        ("id = 'amount'" + GOOD_FIELD, "lender.toml: key 'id': 'amount' is also a name of 'Amount'"),
        ("refer_margin = -0.1" + GOOD_FIELD, "lender.toml: key 'refer_margin': 'refer_margin' must be 0 or more (a share of the training range), got -0.1"),
        ("refer_margin = 'wide'" + GOOD_FIELD, "lender.toml: key 'refer_margin': 'refer_margin' must be a number, got 'wide'"),
        ("[[fields]]\nname = 'A'\nkind = 'category'\ncategories = ['x']\nrefer_margin = 0.2", "lender.toml: field 'A': 'refer_margin' applies to numbers, not to a category"),
    ],
)  # fmt: skip
def test_each_mistake_gets_one_line_naming_the_file_and_the_field_or_key(text: str, expected: str) -> None:
    assert expected in mistakes(text)


def test_every_mistake_is_reported_at_once() -> None:
    lines = mistakes(
        "protected = ['Nobody']\n"
        "[[fields]]\nname = 'A'\nkind = 'text'\n"
        "[[fields]]\nname = 'B'\nkind = 'number'\nminimum = 3\nmaximum = 1\n"
    )
    assert len(lines) == 3
    assert [line.split(": ")[1] for line in lines] == ["field 'A'", "field 'B'", "key 'protected'"]


def test_the_cli_prints_one_line_per_mistake_and_exits_2(tmp_path: Path, bundled_data: Path) -> None:
    bad = tmp_path / "lender.toml"
    bad.write_text("[[fields]]\nname = 'A'\nkind = 'text'\n[[fields]]\nname = 'B'\nkind = 'number'\n")
    done = subprocess.run(
        [sys.executable, "-c", "from preauth.cli import main; main()", "schema", "check", str(bundled_data), "--schema", str(bad)],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"preauth: error: {bad}: field 'A': 'kind' must be one of: number, whole number, category, ordered category; got 'text'",
        f"preauth: error: {bad}: field 'B': a number needs 'minimum' and 'maximum' (or 'positive = true')",
    ]
    missing = subprocess.run(
        [sys.executable, "-c", "from preauth.cli import main; main()", "schema", "check", str(bundled_data), "--schema", str(tmp_path / "nope.toml")],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert missing.returncode == 2
    assert missing.stderr == f"preauth: error: {tmp_path / 'nope.toml'}: schema file not found\n"


def test_the_readme_schema_example_is_a_valid_schema() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    schema = parse_schema(block, "README.md")
    savings, amount, _marital = schema.fields
    assert (
        savings.ordered and savings.levels()[-1] == "no account" and savings.readable["none"] == "no savings"
    )
    assert amount.direction == "increasing" and schema.canonical_column("Loan Amount") == "Amount"
    assert schema.id_column == "Ref" and schema.protected == ("Marital",)
