"""`preauth models promote` takes only a version of the models directory, under a well-formed alias."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from preauth.bundles import load_bundle
from preauth.cli import cli
from preauth.errors import ModelBundleError


@pytest.fixture
def models(tmp_path: Path, bundle_run) -> Path:
    """models/v1 promoted to production, and a good bundle v77 outside the models directory."""
    root = tmp_path / "models"
    shutil.copytree(bundle_run.bundle_path, root / "v1")
    shutil.copytree(bundle_run.bundle_path, tmp_path / "elsewhere" / "v77")
    (root / "aliases.json").write_text(json.dumps({"production": "v1"}))
    return root


def promote(models: Path, *args: str):
    return CliRunner().invoke(cli, ["--models-dir", str(models), "models", "promote", *args])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["../elsewhere/v77"], "cannot promote '../elsewhere/v77'"),
        (["{elsewhere}"], "cannot promote"),
        (["{models}/v1"], "cannot promote"),
        (["v1", "--alias", "../production"], "alias '../production' is not a valid alias name"),
        (["v1", "--alias", "Production"], "is not a valid alias name"),
        (["v1", "--alias", "v2"], "is not a valid alias name"),
        (["v1", "--alias", ""], "is not a valid alias name"),
        # ``promote v1 --alias shadow`` once skipped the check ``models shadow v1`` makes.
        (["v1", "--alias", "shadow"], "v1 is the production model; a shadow must be another version"),
        (["production", "--alias", "shadow"], "v1 is the production model; a shadow must be another version"),
    ],
)
def test_paths_and_bad_alias_names_are_refused_in_one_line(models: Path, args, message) -> None:
    elsewhere = models.parent / "elsewhere" / "v77"
    args = [a.format(elsewhere=elsewhere, models=models) for a in args]
    before = (models / "aliases.json").read_text()
    result = promote(models, *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert (models / "aliases.json").read_text() == before
    assert load_bundle(models).version == "v1"


def test_models_shadow_refuses_the_production_model_in_the_same_words(models: Path) -> None:
    result = CliRunner().invoke(cli, ["--models-dir", str(models), "models", "shadow", "production"])
    assert result.exit_code == 2, result.output
    assert (
        result.stderr.strip()
        == "preauth: error: v1 is the production model; a shadow must be another version"
    )
    assert json.loads((models / "aliases.json").read_text()) == {"production": "v1"}


def test_a_version_or_alias_of_the_directory_is_promoted(models: Path) -> None:
    assert promote(models, "v1", "--alias", "staging-2_a").exit_code == 0
    result = promote(models, "staging-2_a")
    assert result.exit_code == 0 and "production → v1" in result.output
    assert json.loads((models / "aliases.json").read_text()) == {"production": "v1", "staging-2_a": "v1"}


def test_an_alias_pointing_outside_the_directory_is_refused(models: Path, monkeypatch) -> None:
    (models / "aliases.json").write_text(json.dumps({"production": "../elsewhere/v77"}))
    with pytest.raises(ModelBundleError, match="alias 'production' points at '../elsewhere/v77'"):
        load_bundle(models)


def test_a_directory_named_like_a_version_does_not_shadow_the_models_directory(
    models: Path, tmp_path: Path, monkeypatch
) -> None:
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "bundle.json").write_text("{}")  # not a bundle: loading it would fail
    monkeypatch.chdir(tmp_path)
    assert load_bundle(models, "v1").path == models / "v1"
    assert promote(models, "v1").exit_code == 0
