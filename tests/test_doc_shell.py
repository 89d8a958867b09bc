"""The README's first example, run verbatim in bash against a real exporter (only its ports
changed): what it prints is what the README says, and it leaves nothing that alerts."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable

from tests.helpers import ROOT, ExporterProcess, require_binary, series

FENCE = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)


def readme_block(after: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = FENCE.search(text, text.index(after))
    assert found is not None
    return found.group(1)


def test_readme_sample_runs_as_shown(exporter_process: Callable[..., ExporterProcess]) -> None:
    require_binary("curl")
    block = readme_block("Post CleverTap's documented sample")
    shown = [line.removeprefix("# ") for line in block.splitlines() if line.startswith("# ")]
    exp = exporter_process()  # the defaults of `make run`: UTC, no credentials
    exp.start()
    # `make run` serves /metrics on --metrics-port 9878; here both are the one free port.
    for port in ("localhost:9877", "localhost:9878"):
        block = block.replace(port, f"127.0.0.1:{exp.port}")
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", block],
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    # curl -s ends the first answer without a newline.
    printed = re.sub(r"\}(?=clevertap_)", "}\n", run.stdout).splitlines()
    assert printed[0] == shown[0] == '{"status":"accepted"}'
    # The metric line as shown, its value the time of posting.
    name_labels, value = printed[1].rsplit(" ", 1)
    assert name_labels == shown[1].rsplit(" ", 1)[0]
    assert abs(float(value) - time.time()) < 120
    m = exp.metrics()
    delay = m["clevertap_export_last_delivery_delay_seconds"][(("account", "default"),)]
    assert abs(delay) < 60, "the sample's time must not look like a wrong time zone"
    key = series(partner="google_cloud_storage", frequency="one_time")
    assert m["clevertap_export_in_flight"][key] == 0
