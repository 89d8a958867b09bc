"""The operator alert rules, checked and unit-tested with the real promtool.

promtool comes from the Debian package ``prometheus`` (``.ci/run`` installs it); when it is
missing the test fails rather than skips.
"""

from __future__ import annotations

import shutil
import subprocess

from tests.conftest import ROOT

PROMETHEUS = ROOT / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary is not None, "promtool is missing: apt-get install -y prometheus"
    return subprocess.run([binary, *args], cwd=PROMETHEUS, capture_output=True, text=True,
                          timeout=120)


def test_operator_rules_are_valid() -> None:
    run = promtool("check", "rules", "operator_alerts.yml")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS: 2 rules found" in run.stdout


def test_operator_rules_unit_tests() -> None:
    run = promtool("test", "rules", "operator_alerts_test.yml")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout


def test_every_operator_alert_has_a_runbook_section() -> None:
    import yaml

    runbook = (ROOT / "docs" / "runbook-operator.md").read_text()
    rules = yaml.safe_load((PROMETHEUS / "operator_alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            name = rule["alert"]
            assert rule["labels"]["severity"] in ("critical", "warning", "info")
            assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
            assert rule["annotations"]["runbook_url"] == (
                f"docs/runbook-operator.md#{name.lower()}")
            assert f"## {name}" in runbook
