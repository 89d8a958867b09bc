"""``send`` as a first-time user runs it: ``send --url`` with the URL configured in CleverTap,
HTTPS exporters with their own CA, and the README's example files."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.helpers import ROOT, ExporterProcess, free_port, series
from tests.pki import Pki, write_config
from tests.tools.test_client import cli

EXAMPLES = ROOT / "docs" / "examples"
Process = Callable[..., ExporterProcess]


def test_send_accepts_the_webhook_url(exporter_process: Process) -> None:
    exp = exporter_process()
    exp.start()
    initiated = str(EXAMPLES / "initiated.json")
    run = cli("send", "--url", f"{exp.url}/webhook", initiated)
    assert run.returncode == 0, run.stderr
    run = cli("send", "--url", f"{exp.url}/webhook/acme/", initiated)
    assert run.returncode == 0, run.stderr
    m = exp.metrics()
    assert m["clevertap_export_in_flight"][series(account="default")] == 1
    assert m["clevertap_export_in_flight"][series(account="acme")] == 1
    assert series(account="webhook") not in m["clevertap_export_in_flight"]


def test_send_404_names_the_path_it_tried(exporter_process: Process) -> None:
    exp = exporter_process()
    exp.start()
    run = cli("send", "--url", f"{exp.url}/hooks", str(EXAMPLES / "completed.json"))
    assert run.returncode == 1 and run.stdout.startswith("404 ")
    assert f"POST {exp.url}/hooks/webhook is not an endpoint of the exporter" in run.stderr


def test_send_to_https_with_cacert_or_insecure(pki: Pki, tmp_path: Path) -> None:
    config = write_config(tmp_path, f"tls_server_config:\n  cert_file: {pki.server_cert}\n"
                                    f"  key_file: {pki.server_key}\n")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--host", "127.0.0.1", "--port", str(port),
         "--state-path", str(tmp_path / "state.db"), "--web.config.file", str(config)],
        cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"https://127.0.0.1:{port}"
    try:
        ctx = ssl.create_default_context(cafile=str(pki.ca))
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"{url}/readyz", context=ctx, timeout=2):
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        body = str(EXAMPLES / "completed.json")
        untrusted = cli("send", "--url", url, body)
        assert untrusted.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
        trusted = cli("send", "--url", f"{url}/webhook", "--cacert", str(pki.ca), body)
        assert trusted.returncode == 0, trusted.stderr
        insecure = cli("send", "--url", url, "--insecure", "--account", "b", body)
        assert insecure.returncode == 0, insecure.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_documented_examples_ship_and_are_accepted(exporter_process: Process) -> None:
    exp = exporter_process()
    exp.start()
    for name in ("initiated.json", "completed.json"):
        run = cli("send", "--now", "--url", exp.url, str(EXAMPLES / name))
        assert run.returncode == 0 and "accepted" in run.stdout, run.stdout + run.stderr
    run = cli("replay", "--url", exp.url, str(EXAMPLES / "events.jsonl"))
    assert run.returncode == 0, run.stdout + run.stderr
    # The pages that post them (docs/operator.md) name the files that ship.
    operator = (ROOT / "docs" / "operator.md").read_text()
    for name in ("completed.json", "initiated.json", "events.jsonl"):
        assert (EXAMPLES / name).is_file()
        assert f"docs/examples/{name}" in operator
