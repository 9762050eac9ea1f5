"""The header names the model deciding now, also after `preauth models promote` in a running server."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from serving_support import preauth_serve

from preauth import bundles


def test_the_header_follows_a_promotion(browser: Any, page_models: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(page_models, models)
    v1 = bundles.load_bundle(models, "v1")
    kept = {k: v1.meta[k] for k in ("metrics", "label_provenance", "params") if k in v1.meta}
    bundles.save_bundle(models, v1.booster, features=v1.features, threshold=0.3, meta=kept)
    bundles.promote(models, "v1")
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        with preauth_serve(models, tmp_path, api_keys=None) as url:
            tab = context.new_page()
            tab.goto(url + "/#/model")
            tab.wait_for_function("document.querySelector('#model-badge').textContent === 'model v1'")
            tab.wait_for_selector("#model-card .version:text('v1')")
            promoted = subprocess.run(
                [sys.executable, "-c", "from preauth.cli import main; main()", "--models-dir", str(models)]
                + ["models", "promote", "v2"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert promoted.returncode == 0, promoted.stderr
            # Without touching the page: the poll brings the badge and the open Model tab up to date.
            tab.wait_for_function(
                "document.querySelector('#model-badge').textContent === 'model v2'", timeout=12_000
            )
            tab.wait_for_selector("#model-card .version:text('v2')", timeout=5_000)
    finally:
        context.close()
