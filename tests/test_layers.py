"""The layer contract (``[tool.importlinter]`` in pyproject.toml) holds, and it does bite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(tree / "pyproject.toml")],
        cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True,
        timeout=120, check=False,
    )


def test_the_package_keeps_its_layers() -> None:
    run = lint(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_wrong_way_import_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "exporter", tmp_path / "exporter",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    store = tmp_path / "exporter" / "store" / "sqlite.py"
    # The store reaching up into the command line: the kind of import the contract forbids.
    store.write_text(store.read_text() + "\nfrom exporter.cli import flags  # noqa\n")
    run = lint(tmp_path)
    assert run.returncode != 0
    assert "exporter.store is not allowed to import exporter.cli" in run.stdout, run.stdout
