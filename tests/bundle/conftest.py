"""Helpers for the monitoring-bundle tests: locating binaries, free ports, real servers.

Every binary is looked up on PATH. A missing one fails the test with the package to install
(``make deps`` installs them); it never skips, so CI cannot pass without really running them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import ROOT, require_binary


def run_tool(name: str, *args: str | Path, cwd: Path = ROOT,
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a tool from PATH; fail the test with its output when it exits non-zero."""
    binary = require_binary(name)
    proc = subprocess.run([binary, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        pytest.fail(f"{name} {' '.join(map(str, args))} exited {proc.returncode}:\n"
                    f"{proc.stdout}\n{proc.stderr}", pytrace=False)
    return proc


def http(method: str, url: str, body: Any = None, *, raw: bytes | None = None,
         timeout: float = 5, headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
    """One HTTP request on loopback; returns (status, decoded JSON or text)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    text = payload.decode(errors="replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def wait_until(what: str, check: Callable[[], Any], timeout: float = 30,
               every: float = 0.25) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, ValueError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(every)
    pytest.fail(f"timed out after {timeout}s waiting for {what}; last: {last!r}", pytrace=False)


class Server:
    """A child process with its output in a log file, stopped at teardown."""

    def __init__(self, name: str, argv: Sequence[str | Path], log: Path, ready_url: str,
                 env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.log = log
        self.ready_url = ready_url
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(
            [str(a) for a in argv], stdout=self._log_file, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=env)

    def wait_ready(self, timeout: float = 30) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.proc.returncode}:\n"
                            f"{self.log.read_text(errors='replace')[-4000:]}", pytrace=False)
            return http("GET", self.ready_url, timeout=2)[0] == 200

        wait_until(f"{self.name} at {self.ready_url}", ready, timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log_file.close()


@pytest.fixture(scope="module")
def servers() -> Iterator[Callable[..., Server]]:
    """Start servers with ``servers(name, argv, log, ready_url[, env])``; stopped at teardown."""
    started: list[Server] = []

    def start(name: str, argv: Sequence[str | Path], log: Path, ready_url: str,
              env: Mapping[str, str] | None = None) -> Server:
        server = Server(name, argv, log, ready_url, env)
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()


def prom_query(base: str, expr: str, **params: str) -> list[dict[str, Any]]:
    """An instant query against a real Prometheus; fails the test on a query error."""
    query = urllib.parse.urlencode({"query": expr, **params})
    status, body = http("GET", f"{base}/api/v1/query?{query}")
    if status != 200 or not isinstance(body, dict) or body.get("status") != "success":
        pytest.fail(f"query {expr!r} failed: HTTP {status}: {body!r}", pytrace=False)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def export_event(export_id: int, status: str, when: float, partner: str, type_: str,
                 frequency: str) -> dict[str, Any]:
    """A CleverTap export status webhook body with a Unix-seconds event time."""
    return {"Export Request Id": export_id, "Partner": partner, "Type": type_,
            "Status": status, "Frequency": frequency, "Date and Time": int(when)}


def prometheus_config(tmp: Path, targets: dict[str, list[int]], alertmanager: int) -> Path:
    """prometheus/prometheus.yml with 1 s intervals, absolute rule files and loopback targets
    (ports by job name)."""
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    config["rule_files"] = [str(ROOT / "prometheus" / f) for f in config["rule_files"]]
    for job in config["scrape_configs"]:
        # Loopback ports in place of compose's DNS names, and of the relabelling that names an
        # instance after its DNS name (for static targets it would name every one ":9878").
        job.pop("dns_sd_configs", None)
        job.pop("relabel_configs", None)
        job["static_configs"] = [
            {"targets": [f"127.0.0.1:{port}" for port in targets[job["job_name"]]]}]
    config["alerting"]["alertmanagers"] = [
        {"static_configs": [{"targets": [f"127.0.0.1:{alertmanager}"]}]}]
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def alert_key(labels: dict[str, str]) -> tuple[str, tuple[str, ...]]:
    """An alert by name and what identifies it: its outcome, or its export's labels."""
    if "outcome" in labels:
        return labels["alertname"], (labels["outcome"],)
    return labels["alertname"], (labels.get("partner", ""), labels.get("export_type", ""),
                                 labels.get("frequency", ""))


HOUR = 3600
S3, GCS, AZURE = "Amazon S3", "Google Cloud Storage", "Microsoft Azure"
FOUR_HOURLY = "Every 4 hours"

#: (alertname, identifying labels) that ``export_history`` plus one invalid body raise, and
#: nothing else.
EXPECTED_ALERTS = {
    ("ClevertapExportOverdue", ("google_cloud_storage", "profiles", "4h")),
    ("ClevertapExportStuck", ("azure_blob_storage", "events", "4h")),
    ("ClevertapExportFailed", ("azure_blob_storage", "profiles", "8h")),
    ("ClevertapExportWebhooksRejected", ("invalid",)),
}


def export_history(now: int, *more: dict[str, Any]) -> list[dict[str, Any]]:
    """A healthy, an overdue, a stuck, a failed and a one-time export, then ``more``."""
    return [
        # Healthy 4-hourly export: one run finished 4h ago, the next one running for 20m.
        export_event(1001, "Initiated", now - 4 * HOUR - 1800, S3, "Events", FOUR_HOURLY),
        export_event(1001, "Completed", now - 4 * HOUR, S3, "Events", FOUR_HOURLY),
        # Overdue 4-hourly export: last completion 7h30m ago (threshold 6h30m).
        export_event(2001, "Initiated", now - 8 * HOUR, GCS, "Profiles", FOUR_HOURLY),
        export_event(2001, "Completed", now - 7 * HOUR - 1800, GCS, "Profiles", FOUR_HOURLY),
        # Stuck 4-hourly export: in flight for 5h.
        export_event(3001, "Initiated", now - 5 * HOUR, AZURE, "Events", FOUR_HOURLY),
        # Failed 8-hourly export.
        export_event(5001, "Initiated", now - 2 * HOUR, AZURE, "Profiles", "Every 8 hours"),
        export_event(5001, "Failed", now - HOUR, AZURE, "Profiles", "Every 8 hours"),
        # One-time export completed 29h ago: never overdue.
        export_event(4001, "Initiated", now - 30 * HOUR, GCS, "Events", "One Time"),
        export_event(4001, "Completed", now - 29 * HOUR, GCS, "Events", "One Time"),
        *more,
        # Last event of the account is recent, so the delivery delay is small.
        export_event(1002, "Initiated", now - 1200, S3, "Events", FOUR_HOURLY),
    ]


def start_alertmanager(servers: Callable[..., Server], tmp: Path, port: int) -> Server:
    """The shipped alertmanager/alertmanager.yml on loopback, not clustered."""
    return servers("alertmanager", [
        require_binary("prometheus-alertmanager"),
        f"--config.file={ROOT / 'alertmanager' / 'alertmanager.yml'}",
        f"--storage.path={tmp / 'alertmanager'}", f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=", "--log.level=warn",
    ], tmp / "alertmanager.log", f"http://127.0.0.1:{port}/-/ready")


def start_exporter(servers: Callable[..., Server], name: str, tmp: Path, port: int,
                   *args: str) -> Server:
    """An exporter process on loopback with its own state file under ``tmp / name``."""
    return servers(name, [
        sys.executable, "-m", "exporter", "--host", "127.0.0.1", "--port", str(port),
        "--state-path", str(tmp / name / "state.db"), "--log-level", "WARNING", *args,
    ], tmp / f"{name}.log", f"http://127.0.0.1:{port}/readyz")


def start_prometheus(servers: Callable[..., Server], tmp: Path, port: int,
                     config: Path) -> Server:
    return servers("prometheus", [
        require_binary("prometheus"), f"--config.file={config}",
        f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ], tmp / "prometheus.log", f"http://127.0.0.1:{port}/-/ready")


def substitute(expr: str) -> str:
    """A dashboard query with its variables set to "all" and its intervals to fixed values."""
    for var in ("account", "partner", "export_type", "frequency"):
        expr = expr.replace(f"${var}", ".*").replace(f"${{{var}}}", ".*")
    expr = (expr.replace("$__rate_interval", "1m").replace("$__interval", "5m")
            .replace("$__range", "1h"))
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


def dashboards() -> list[dict[str, Any]]:
    return [json.loads(p.read_text())
            for p in sorted((ROOT / "grafana" / "dashboards").glob("*.json"))]


#: The dashboard row whose queries need landing checks (a destination on a store): their data
#: comes from tests/landing/test_e2e.py, which runs them against its own Prometheus.
LANDING_ROW = "Landing"


def dashboard_targets(*, landing: bool = False) -> list[tuple[str, str]]:
    """(panel title, substituted query) of every panel target of every dashboard: of the
    Landing row's panels with ``landing``, else of all the others."""
    out: list[tuple[str, str]] = []
    for dashboard in dashboards():
        row = None
        for top in dashboard["panels"]:
            if top.get("type") == "row":
                row = top["title"]
            if (row == LANDING_ROW) != landing:
                continue
            for panel in [top, *top.get("panels", [])]:
                out.extend((panel["title"], substitute(t["expr"]))
                           for t in panel.get("targets", []))
    return out
