"""What the tests share besides fixtures: paths, real exporters (in process and as processes),
event bodies and metric read-back. Test modules import these from here; ``conftest.py`` holds
only the fixtures and the markers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from exporter.cli.flags import parse_settings
from exporter.domain.limits import Limits
from exporter.domain.tracker import ExportTracker
from exporter.web.appkeys import RUNTIME
from exporter.web.settings import Settings
from tests.deps import install_line, package_of

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "data" / "samples"

Labels = tuple[tuple[str, str], ...]
Samples = dict[str, dict[Labels, float]]


def require_binary(name: str) -> str:
    """The absolute path of ``name`` on PATH, or fail the test saying what to install."""
    path = shutil.which(name)
    if path is None:
        package = package_of(name)
        pytest.fail(f"{name!r} is not on PATH: install the Debian package {package!r} "
                    f"({install_line([package])}); `make deps` does this", pytrace=False)
    return path


def make_settings(state_path: Path, *args: str) -> Settings:
    """Settings as the command line would give them, with no environment variables."""
    return parse_settings(["--state-path", str(state_path), *args], env={})


def limits(**changes: Any) -> Limits:
    """The flags' default limits, with ``changes``: what ``ExportTracker`` gets when the
    exporter starts with no flags."""
    return replace(parse_settings([], env={}).limits, **changes)


def parse_metrics(text: str) -> Samples:
    """Index every sample as ``{name: {sorted label pairs: value}}``."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def labels(**kw: str) -> Labels:
    return tuple(sorted(kw.items()))


def series(account: str = "default", partner: str = "amazon_s3", export_type: str = "events",
           frequency: str = "4h", **extra: str) -> Labels:
    return labels(account=account, partner=partner, export_type=export_type,
                  frequency=frequency, **extra)


def event(export_id: int | str = 1, status: str = "Initiated", when: Any = None, *,
          partner: str = "Amazon S3", type_: str = "Events",
          frequency: str = "Every 4 hours") -> dict[str, Any]:
    """A CleverTap body; ``when`` defaults to now, as epoch seconds."""
    return {
        "Export Request Id": export_id,
        "Partner": partner,
        "Type": type_,
        "Status": status,
        "Frequency": frequency,
        "Date and Time": time.time() if when is None else when,
    }


ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


class Exporter:
    """A test client bound to one exporter app and its state file."""

    def __init__(self, client: TestClient[web.Request, web.Application], state: Path) -> None:
        self.client = client
        self.state = state

    @property
    def app(self) -> web.Application:
        return self.client.app

    @property
    def tracker(self) -> ExportTracker:
        tracker = self.app[RUNTIME].tracker
        assert tracker is not None, "the state store is not open"
        return tracker

    async def post(self, body: Any, account: str | None = None,
                   headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        path = "/webhook" if account is None else f"/webhook/{account}"
        resp = await self.client.post(path, data=data, headers=headers or {})
        return resp.status, await resp.json()

    async def metrics(self) -> Samples:
        resp = await self.client.get("/metrics")
        assert resp.status == 200
        return parse_metrics(await resp.text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ExporterProcess:
    """The exporter as a real process (``python -m exporter``), for kill and restart tests;
    ``state=None`` leaves the state to ``args`` (``--state-url``)."""

    def __init__(self, state: Path | None, *args: str) -> None:
        self.state = state
        self.args = args
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0, ready_url: str | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "exporter", "--host", "127.0.0.1", "--port", str(self.port),
             *(["--state-path", str(self.state)] if self.state else []), *self.args],
            cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"exporter exited with {self.proc.returncode}: {err}")
            try:
                with urllib.request.urlopen(ready_url or f"{self.url}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("exporter did not become ready")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def post(self, body: dict[str, Any], account: str | None = None) -> tuple[int, str]:
        path = "/webhook" if account is None else f"/webhook/{account}"
        req = urllib.request.Request(f"{self.url}{path}", data=json.dumps(body).encode(),
                                     method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())["status"]

    def metrics(self) -> Samples:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as r:
            return parse_metrics(r.read().decode())

