"""Another lender's schema, written or edited by hand the wrong way: one line naming the file and
the field, exit 2, or correct work (train, predict and serve on data made here)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from preauth.applications import SchemaError, parse_schema
from preauth.cli import cli

RESULTS_COLUMNS = (
    "id, input_data, probability_fraud, is_fraud, target, confidence, timestamp, decision, reasons"
)


def _field(name: str, aliases: str = "") -> str:
    return f"[[fields]]\nname = {name!r}\nkind = 'number'\npositive = true\n{aliases}\n"


@pytest.mark.parametrize(
    ("text", "spelling"),
    [
        (_field("decision"), "decision"),
        (_field("Probability Fraud"), "Probability Fraud"),
        (_field("Notes", "aliases = ['input_data']"), "input_data"),
        ("id = 'Ref'\n" + _field("ID"), "ID"),
        (_field("Target"), "Target"),
    ],
)
def test_a_field_spelled_like_a_results_column_is_one_line_naming_it(text: str, spelling: str) -> None:
    """A field ``decision`` or ``probability_fraud`` was once trained on, and ``predict --format
    csv`` wrote one column of that name: the verdict or the probability, the applicant's value lost."""
    with pytest.raises(SchemaError) as raised:
        parse_schema(text + _field("Amount"), "lender.toml")
    field = text.split("name = ")[1].split("\n")[0].strip("'")
    assert raised.value.mistakes == [
        f"lender.toml: field '{field}': '{spelling}' is a results file's own column ({RESULTS_COLUMNS}); "
        "rename the column in the data to use it"
    ]


def test_infer_leaves_a_column_named_like_a_results_column_out_and_says_why(tmp_path: Path) -> None:
    data = pd.DataFrame(
        {"decision": ["yes", "no"] * 20, "probability_fraud": range(40), "Amount": range(100, 140)}
    )
    data.to_csv(tmp_path / "apps.csv", index=False)
    out = tmp_path / "apps.toml"
    result = CliRunner().invoke(cli, ["schema", "infer", str(tmp_path / "apps.csv"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    schema = parse_schema(out.read_text(encoding="utf-8"), str(out))
    assert schema.field_names == ("Amount",)
    text = out.read_text(encoding="utf-8")
    assert (
        f"# Column 'decision' is a results file's own column ({RESULTS_COLUMNS}): left out; "
        "rename it in the data to use it." in text
    )


def test_a_lenders_columns_named_in_any_script_are_read_as_their_own_columns(tmp_path: Path) -> None:
    """Only ASCII letters were kept in a column's spelling-free name: ``Возраст`` and ``Сумма`` were
    both ``''`` (``infer`` refused the file: 'duplicate columns ... (both mean '')'), ``Größe`` and
    ``Grüße`` both ``gr_e``."""
    from preauth.applications import load_schema, normalize_name, read_applications

    names = ["Возраст", "Сумма", "Größe", "Grüße", "年龄", "आयु", "आय"]
    assert len({normalize_name(n) for n in names}) == len(names)
    assert normalize_name("ＡＧＥ") == normalize_name("Age") == "age"  # full-width: the same word
    data = pd.DataFrame(
        {
            "Возраст": [30, 41, 52, 23] * 10,
            "Сумма": range(100, 140),
            "Größe": [1, 2] * 20,
            "Grüße": ["a", "b", "c", "d"] * 10,
            "年龄": range(40),
        }
    )
    data.to_csv(tmp_path / "apps.csv", index=False)
    out = tmp_path / "apps.toml"
    runner = CliRunner()
    result = runner.invoke(cli, ["schema", "infer", str(tmp_path / "apps.csv"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    schema = load_schema(out)
    assert schema.field_names == tuple(data.columns)
    checked = runner.invoke(cli, ["schema", "check", str(tmp_path / "apps.csv"), "--schema", str(out)])
    assert checked.exit_code == 0, checked.output
    read = read_applications(tmp_path / "apps.csv", schema=schema)
    assert read.frame["Сумма"].tolist() == list(range(100, 140))
    assert schema.canonical_column("возраст") == "Возраст" and schema.canonical_column("Grösse") is None


def test_a_category_of_thousands_of_levels_is_plotted_by_its_most_common_ones(tmp_path: Path) -> None:
    """The report's dependence plot drew a tick per level: 10,000 labels made ``train`` spend a
    minute in matplotlib on a figure nobody could read."""
    import numpy as np
    import xgboost as xgb

    from preauth.bundles import MODEL_FILE
    from preauth.features import encode, feature_types
    from preauth.report import effects

    levels = [f"L{i:04d}" for i in range(2000)]
    schema = parse_schema(
        f"[[fields]]\nname = 'Level'\nkind = 'category'\ncategories = {levels!r}\n" + _field("Amount"),
        "lender.toml",
    )
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"Level": rng.choice(levels[:300], 400), "Amount": rng.uniform(1, 100, 400)})
    columns, types = ["Level", "Amount"], feature_types(["Level", "Amount"], schema)
    data = xgb.DMatrix(
        encode(frame, columns, schema),
        label=rng.integers(0, 2, 400),
        feature_names=columns,
        feature_types=types,
        enable_categorical=True,
    )
    xgb.train({"max_depth": 3, "nthread": 1}, data, num_boost_round=5).save_model(str(tmp_path / MODEL_FILE))
    section = effects.section(tmp_path, {"features": columns, "feature_types": types}, frame, schema)
    figure = section["dependence"]
    assert f"Level ({effects.MAX_LEVELS} most common of 2,000 levels)" in figure
    named = {level for level in levels if f">{level}<" in figure or f"{level}</" in figure}
    assert 0 < len(named) <= effects.MAX_LEVELS
    common = frame["Level"].value_counts()
    assert common.index[0] in named  # the most common level is one of them


def test_a_schema_with_tens_of_thousands_of_levels_reads_in_well_under_a_second() -> None:
    """Each level was counted against the whole list (and each label searched in it): 20,000
    levels took 5 s to read, at every load (train, predict, serve, each bundle read)."""
    import time

    levels = [f"L{i:05d}" for i in range(20_000)]
    labels = ", ".join(f"{level} = 'branch {level}'" for level in levels)
    text = (
        f"[[fields]]\nname = 'Branch'\nkind = 'category'\ncategories = {levels!r}\nlabels = {{ {labels} }}\n"
    )
    started = time.process_time()
    schema = parse_schema(text, "lender.toml")
    assert time.process_time() - started < 1.0
    assert schema.fields[0].levels() == tuple(levels)
    with pytest.raises(SchemaError) as raised:
        parse_schema(text.replace("'L19999']", "'L19999', 'l00003']"), "lender.toml")
    assert raised.value.mistakes == ["lender.toml: field 'Branch': category 'l00003' is listed twice"]


def test_a_value_outside_thousands_of_categories_is_refused_naming_a_few(tmp_path: Path) -> None:
    """The refusal listed every level: 2,000 levels made each rejected row's reason 14 KB (10,000:
    80 KB), on stderr, in the rejects file and in the API's answer alike."""
    from preauth.applications import read_applications
    from preauth.service.intake import check_records

    levels = [f"L{i:04d}" for i in range(2000)]
    text = f"[[fields]]\nname = 'Branch'\nkind = 'category'\ncategories = {levels!r}\n" + _field("Amount")
    schema = parse_schema(text, "lender.toml")
    (tmp_path / "apps.csv").write_text("Branch,Amount\nL0001,5\nX99,6\n", encoding="utf-8")
    read = read_applications(tmp_path / "apps.csv", schema=schema)
    expected = f"'X99' is not one of the 2,000 categories ({', '.join(levels[:20])}, \u2026)"
    assert [(r.row, r.column, r.reason) for r in read.rejects] == [(2, "Branch", expected)]
    checked = check_records([{"Branch": "X99", "Amount": 6}], schema=schema)
    assert [p.reason for p in checked.problems] == [expected]


@pytest.mark.parametrize(
    ("field", "shown"),
    [
        ("kind = 'whole number'\nminimum = 18\nmaximum = 99\nexample = inf", "Infinity"),
        ("kind = 'whole number'\nminimum = 18\nmaximum = 99\nexample = nan", "NaN"),
        ("kind = 'number'\npositive = true\nexample = 1e300", "1e+300"),
        ("kind = 'number'\npositive = true\nrequired = false\nexample = nan", "NaN"),
    ],
)
def test_an_example_the_field_would_refuse_is_one_line(field: str, shown: str) -> None:
    """``example = inf`` on a whole number ended in an OverflowError traceback (nan: ValueError);
    ``1e300`` was kept, then offered by the page and the API's documentation, and refused."""
    with pytest.raises(SchemaError) as raised:
        parse_schema(f"[[fields]]\nname = 'Age'\n{field}\n", "lender.toml")
    assert raised.value.mistakes == [
        f"lender.toml: field 'Age': 'example' {shown} is not a valid value of this field"
    ]


@pytest.mark.parametrize(
    ("categories", "mistake"),
    [
        ('["", "own"]', 'category "" is blank: a blank value is missing (\'missing\' says what it means)'),
        ('["own", " rent"]', 'category " rent" has spaces around it: values are read without them, so none would match'),
    ],
)  # fmt: skip
def test_a_blank_or_padded_category_is_one_line(tmp_path: Path, categories: str, mistake: str) -> None:
    """A cell is read stripped: a level ``" rent"`` matched no row (each refused as "'rent' is not
    one of: own,  rent"), and a level ``""`` made a blank cell of a required field a valid value."""
    (tmp_path / "s.toml").write_text(
        f"[[fields]]\nname = 'Home'\nkind = 'category'\ncategories = {categories}\n"
    )
    (tmp_path / "a.csv").write_text("Home\nown\nrent\n\n", encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["schema", "check", str(tmp_path / "a.csv"), "--schema", str(tmp_path / "s.toml")]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"preauth: error: {tmp_path / 's.toml'}: field 'Home': {mistake}"


def test_an_optional_field_empty_on_every_row_is_named_as_such_by_train(tmp_path: Path) -> None:
    """The column is in the file, empty on every row: train said "no 'Note' column, yet the model
    is to use it (--include Note)", a column it had and an option that was not the way out."""
    schema = (
        "[target]\ncolumn = 'Status'\nbad = ['bad']\ngood = ['good']\n"
        + _field("Amount")
        + "[[fields]]\nname = 'Note'\nkind = 'number'\npositive = true\nrequired = false\n"
    )
    (tmp_path / "s.toml").write_text(schema, encoding="utf-8")
    rows = "".join(f"{100 + i},,{'bad' if i % 3 == 0 else 'good'}\n" for i in range(60))
    (tmp_path / "apps.csv").write_text("Amount,Note,Status\n" + rows, encoding="utf-8")
    args = ["--models-dir", str(tmp_path / "models"), "--schema", str(tmp_path / "s.toml"), "train"]
    result = CliRunner().invoke(cli, [*args, str(tmp_path / "apps.csv"), "--target", "risk", "--trials", "1"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        f"preauth: error: {tmp_path / 'apps.csv'}: 'Note' is empty on every row (or not in the file), "
        "yet the model is to use it; fill it in, or leave it out (--exclude Note)"
    )
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_names_are_cached_only_at_a_sensible_length() -> None:
    """Every key of every request is normalized: kept whole in the cache, megabyte keys from a
    client would fill the server's memory (4,096 of them: gigabytes)."""
    from preauth.applications import normalize_name
    from preauth.applications.schema import _normalized

    before = _normalized.cache_info().currsize
    for n in range(5):
        assert normalize_name(f"Age{n} " + "x" * 100_000) == f"age{n}_" + "x" * 100_000
    assert _normalized.cache_info().currsize == before


@pytest.mark.parametrize("name", ["Price $^$", "Debt ($) to income ($)"])
def test_a_field_name_with_dollars_is_drawn_as_written_in_the_report(name: str) -> None:
    """matplotlib read text between two dollars as math: "Debt ($) to income ($)" lost its
    dollars, and "Price $^$" failed the report, and with it ``train``, in a traceback."""
    from preauth.report.figures import svg

    def bars(_figure: object, ax: object) -> None:
        ax[0, 0].barh([name, "Amount"], [1.0, 2.0])  # type: ignore[index]
        ax[0, 0].set(title=name)  # type: ignore[index]

    figure = svg("importance", bars)
    assert figure.count(f">{name}<") == 2  # the tick label and the title
