"""Start-up: the CLI and scoring import only what they use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = ("xgboost", "sklearn", "optuna", "polars", "matplotlib", "pydantic_settings", "sqlalchemy", "fastapi")


def imported_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return result.stdout.split()


def test_the_cli_imports_no_heavy_library_before_a_command_runs() -> None:
    assert imported_after("import preauth.cli") == []


def test_loading_a_bundle_does_not_import_scikit_learn(small_models_dir: Path) -> None:
    code = f"from pathlib import Path\nfrom preauth.bundles import load_bundle\nload_bundle(Path({str(small_models_dir)!r}))"
    assert imported_after(code) == ["xgboost"]


def test_training_after_scoring_in_one_process_still_imports_scikit_learn(small_models_dir: Path) -> None:
    code = (
        f"from pathlib import Path\nfrom preauth.bundles import load_bundle\nload_bundle(Path({str(small_models_dir)!r}))\n"
        "from sklearn.model_selection import StratifiedKFold"
    )
    assert imported_after(code) == ["xgboost", "sklearn"]


def test_xgboost_estimators_work_after_a_scoring_import(small_models_dir: Path) -> None:
    code = (
        f"from pathlib import Path\nfrom preauth.bundles import load_bundle\nload_bundle(Path({str(small_models_dir)!r}))\n"
        "import numpy as np\nfrom xgboost import XGBClassifier\nfrom sklearn.base import is_classifier\n"
        "model = XGBClassifier(n_estimators=2, n_jobs=1).fit(np.arange(40.0).reshape(20, 2), [0, 1] * 10)\n"
        "assert is_classifier(model) and model.predict_proba(np.zeros((1, 2))).shape == (1, 2)"
    )
    assert imported_after(code) == ["xgboost", "sklearn"]


def test_scoring_a_file_to_json_lines_imports_no_library_it_does_not_use(
    small_models_dir: Path, tmp_path: Path
) -> None:
    """predict's own work (read, validate, score, write JSON Lines) imports XGBoost alone of the
    heavy libraries: the results' numbers are formatted by orjson, not Polars (0.15–0.2 s)."""
    source = tmp_path / "in.csv"
    source.write_text(
        "Age,Sex,Job,Housing,Saving accounts,Checking account,Credit amount,Duration,Purpose\n"
        "35,male,2,own,little,moderate,1234,12,car\n"
    )
    code = (
        "from pathlib import Path\nfrom preauth.bundles import load_bundle\nfrom preauth.results import score_file\n"
        f"bundle = load_bundle(Path({str(small_models_dir)!r}))\n"
        f"done = score_file(bundle, Path({str(source)!r}), Path({str(tmp_path / 'out.jsonl')!r}), 'jsonl')\n"
        "assert done.scored == 1, done"
    )
    assert imported_after(code) == ["xgboost"]
