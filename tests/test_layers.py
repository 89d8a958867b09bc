"""The layer contracts (``[tool.importlinter]`` in pyproject.toml) hold, and they do bite; each
subpackage's modules are public (its ``__all__``) or internal (a ``protected`` contract)."""

from __future__ import annotations

import ast
import importlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

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


def with_import(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess[str]:
    """The contracts run on a copy of the package whose ``module`` has one more import."""
    shutil.copytree(ROOT / "exporter", tmp_path / "exporter",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    path = tmp_path / Path(*module.split(".")).with_suffix(".py")
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    return lint(tmp_path)


def test_a_wrong_way_import_breaks_the_contract(tmp_path: Path) -> None:
    # The store reaching up into the command line: the kind of import the contract forbids.
    run = with_import(tmp_path, "exporter.store.sqlite", "from exporter.cli import flags")
    assert run.returncode != 0
    assert "exporter.store is not allowed to import exporter.cli" in run.stdout, run.stdout


def test_reaching_past_a_public_surface_breaks_a_contract(tmp_path: Path) -> None:
    # The command line taking a handler, not the application that wires it.
    run = with_import(tmp_path, "exporter.cli.serve", "from exporter.web import handlers")
    assert run.returncode != 0
    assert "Web internals" in run.stdout and "BROKEN" in run.stdout, run.stdout
    assert "exporter.cli.serve -> exporter.web.handlers" in run.stdout, run.stdout


def test_the_tools_stay_without_aiohttp(tmp_path: Path) -> None:
    run = with_import(tmp_path, "exporter.tools.client", "from exporter.web import app")
    assert run.returncode != 0
    assert "The tools are plain HTTP clients" in run.stdout and "BROKEN" in run.stdout


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return contracts


SUBPACKAGES = sorted(p.parent.name for p in (ROOT / "exporter").glob("*/__init__.py"))


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_every_module_is_public_or_internal(name: str) -> None:
    package = f"exporter.{name}"
    init = ROOT / "exporter" / name / "__init__.py"
    tree = ast.parse(init.read_text())
    assert ast.get_docstring(tree), f"{package} has no docstring saying what it offers"
    public = set(importlib.import_module(package).__all__)
    internal = {m.rsplit(".", 1)[1] for c in _contracts() if c["type"] == "protected"
                and c["allowed_importers"] == [package]
                for m in c["protected_modules"]}  # type: ignore[attr-defined]
    modules = {p.stem for p in init.parent.glob("*.py") if p.stem != "__init__"}
    assert not public & internal, f"{package}: both public and internal: {public & internal}"
    unclassified = modules - public - internal
    assert not unclassified, f"{package}: add these to __all__ or to a protected contract: " \
        f"{sorted(unclassified)}"
    assert internal <= modules, f"{package}: protected modules that do not exist"
    for entry in public - modules:  # a name, not a module: it must be there
        assert hasattr(importlib.import_module(package), entry), f"{package}.{entry}"
