"""The exporter as an operator runs it: separate metrics port, JSON logs, clean shutdown."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import ExporterProcess, event, free_port, series


def test_metrics_port_separates_the_webhook(
    exporter_process: Callable[..., ExporterProcess],
) -> None:
    metrics_port = free_port()
    exp = exporter_process("--metrics-port", str(metrics_port), "--log-format", "json")
    exp.start(ready_url=f"http://127.0.0.1:{metrics_port}/readyz")
    assert exp.post(event(1, "Initiated")) == (200, "accepted")
    # The internet-facing port has no /metrics ...
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{exp.url}/metrics", timeout=5)
    assert err.value.code == 404
    # ... the internal one has, and no webhook.
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        assert b'clevertap_export_in_flight{account="default"' in r.read()
    req = urllib.request.Request(f"http://127.0.0.1:{metrics_port}/webhook",
                                 data=json.dumps(event(2)).encode(), method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 404

    exp.stop()
    assert exp.proc is not None and exp.proc.returncode == 0
    logs = exp.proc.stderr.read().decode().splitlines() if exp.proc.stderr else []
    entries = [json.loads(line) for line in logs]
    assert any("listening" in e["msg"] for e in entries)
    assert any(e["level"] == "warning" and "no webhook credentials" in e["msg"]
               for e in entries)


def test_bad_state_path_fails_with_a_message(
    exporter_process: Callable[..., ExporterProcess],
) -> None:
    exp = exporter_process(state=Path("/proc/forbidden/state.db"))
    with pytest.raises(RuntimeError, match="cannot open state database"):
        exp.start()


def test_restart_keeps_in_flight(exporter_process: Callable[..., ExporterProcess]) -> None:
    exp = exporter_process()
    exp.start()
    assert exp.post(event(1, "Initiated")) == (200, "accepted")
    exp.stop()
    exp.start()
    assert exp.metrics()["clevertap_export_in_flight"][series()] == 1
