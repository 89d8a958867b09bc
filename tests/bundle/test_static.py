"""The shipped bundle files pass the real tools and keep their structure."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from bundle.__main__ import render
from bundle.config import RUNBOOK_URL, SELECTOR, SEVERITIES
from exporter.web.app import create_app, create_metrics_app
from tests.bundle.conftest import run_tool
from tests.bundle.test_compose import PORT as COMPOSE_METRICS_PORT
from tests.helpers import ROOT, ClientFactory, make_settings

ALERTS = ROOT / "prometheus" / "alerts.yml"
RULES = ROOT / "prometheus" / "rules.yml"
UNIT_TESTS = sorted((ROOT / "prometheus").glob("*_test.yml"))
DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))


def _alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def test_generated_files_are_in_sync(tmp_path: Path) -> None:
    """Checked-in rules and dashboards equal what `python -m bundle` generates."""
    for rel, content in render().items():
        assert (ROOT / rel).read_text(encoding="utf-8") == content, (
            f"{rel} differs from what bundle/ generates: run `python -m bundle`")


def test_promtool_check_config() -> None:
    out = run_tool("promtool", "check", "config", ROOT / "prometheus" / "prometheus.yml")
    assert "SUCCESS" in out.stdout + out.stderr


def test_promtool_check_rules() -> None:
    run_tool("promtool", "check", "rules", RULES, ALERTS)


def test_promtool_unit_tests() -> None:
    out = run_tool("promtool", "test", "rules", *UNIT_TESTS, timeout=300)
    assert "FAILED" not in out.stdout + out.stderr


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    groups = [g for f in UNIT_TESTS for g in yaml.safe_load(f.read_text())["tests"]]
    for group in groups:
        for case in group.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    names = {r["alert"] for r in _alert_rules()}
    assert names - firing == set(), "alerts without a firing test"
    assert names - silent == set(), "alerts without a not-firing test"


def test_every_rule_file_is_loaded_by_prometheus() -> None:
    """No hand-written rule file sits beside the generated ones without being loaded."""
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    rule_files = {p.name for p in (ROOT / "prometheus").glob("*.yml")
                  if p.name != "prometheus.yml" and p not in UNIT_TESTS}
    assert rule_files == set(config["rule_files"])
    for path in UNIT_TESTS:
        assert set(yaml.safe_load(path.read_text())["rule_files"]) == rule_files, path.name


def test_declared_export_alerts_are_generated() -> None:
    """The alerts of declared exports are part of alerts.yml."""
    rules = {r["alert"]: r for r in _alert_rules()}
    assert rules["ClevertapExportTooFast"]["labels"] == {"severity": "warning"}
    assert "clevertap_export_min_runtime_seconds" in rules["ClevertapExportTooFast"]["expr"]
    reload_failed = rules["ClevertapExportConfigReloadFailed"]
    assert reload_failed["labels"] == {"severity": "warning"}
    assert reload_failed["for"] == "5m"


def test_amtool_check_config() -> None:
    out = run_tool("amtool", "check-config", ROOT / "alertmanager" / "alertmanager.yml")
    assert "SUCCESS" in out.stdout + out.stderr


def test_the_exporter_being_absent_mutes_every_export_alert() -> None:
    config = yaml.safe_load((ROOT / "alertmanager" / "alertmanager.yml").read_text())
    [absent] = [r for r in config["inhibit_rules"]
                if r["source_matchers"] == ['alertname="ClevertapExporterAbsent"']]
    [matcher] = absent["target_matchers"]
    pattern = re.fullmatch(r'alertname=~"(.*)"', matcher)
    assert pattern, matcher
    for name in SEVERITIES:  # Alertmanager anchors its regular expressions
        muted = re.fullmatch(pattern.group(1), name) is not None
        assert muted == (not name.startswith("ClevertapExporter")), name


def test_docker_compose_config() -> None:
    out = run_tool("docker-compose", "-f", ROOT / "docker-compose.yml", "config")
    config = yaml.safe_load(out.stdout)
    # docker-compose 1.x lists the services of every profile; the default stack has none.
    default = {n for n, service in config["services"].items() if not service.get("profiles")}
    assert default == {"exporter", "prometheus", "alertmanager", "grafana"}
    assert set(config["services"]) - default == {"postgres", "exporter-a", "exporter-b",
                                                 "webhook-lb"}
    for name, service in config["services"].items():
        if "image" in service:
            tag = service["image"].rsplit(":", 1)
            assert len(tag) == 2 and tag[1] not in ("latest", ""), f"{name} image is not pinned"
    assert {"exporter-data", "prometheus-data"} <= set(config["volumes"])


def _runbook_anchors() -> set[str]:
    anchors = set()
    for line in (ROOT / "docs" / "runbook.md").read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^a-z0-9 _-]", "", title).replace(" ", "-"))
    return anchors


def test_alerts_have_severity_annotations_and_runbook_sections() -> None:
    anchors = _runbook_anchors()
    for rule in _alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook_url"} <= set(annotations), name
        url = annotations["runbook_url"]
        assert url == f"{RUNBOOK_URL}#{name.lower()}", url
        assert url.split("#", 1)[1] in anchors, f"no section for {url} in docs/runbook.md"


def test_runbook_url_is_absolute() -> None:
    url = urlparse(RUNBOOK_URL)
    assert url.scheme in {"http", "https"} and url.netloc and not url.fragment, RUNBOOK_URL


async def test_the_default_runbook_url_resolves_to_every_alerts_section(
        aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    """No guessed forge address: the default is the exporter's own ``/runbook`` on the metrics
    port that docker-compose.yml and ``make run`` publish on this machine, and every alert's
    link lands on its section there (issue 21, item 4)."""
    url = urlparse(RUNBOOK_URL)
    assert (url.hostname, url.port) == ("localhost", COMPOSE_METRICS_PORT)
    settings = make_settings(tmp_path / "state.db", "--metrics-port", str(url.port))
    client = await aiohttp_client(create_metrics_app(create_app(settings, serve_metrics=False)))
    resp = await client.get(url.path)
    assert resp.status == 200 and resp.content_type == "text/html"
    ids = set(re.findall(r' id="([^"]+)"', await resp.text()))
    for rule in _alert_rules():
        fragment = urlparse(rule["annotations"]["runbook_url"]).fragment
        assert fragment in ids, f"{rule['alert']}: no section #{fragment} at {RUNBOOK_URL}"


# A raw series name in an expression (not inside a string, not a recorded name, not a function).
_RAW_SERIES = re.compile(
    r'(?<![\w:"$])(clevertap_export_\w+|up|process_start_time_seconds|ALERTS)(?![\w:(])')


def _expressions() -> list[str]:
    rules = [r["expr"] for f in (RULES, ALERTS)
             for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"]]
    queries = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        queries += [t["expr"] for p in _panels(dashboard) for t in p.get("targets", [])]
        queries += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return rules + queries


def test_every_series_is_selected_with_the_configured_selector() -> None:
    """SELECTOR reaches every raw series of every rule, alert, panel and variable."""
    checked = 0
    for expr in _expressions():
        for match in _RAW_SERIES.finditer(expr):
            rest = expr[match.end():]
            assert rest.startswith("{" + SELECTOR), f"{match.group(1)} without SELECTOR: {expr}"
            checked += 1
        # The one selector by name regex (the freshest replica's view) carries it too.
        if "__name__=~" in expr:
            assert "{" + SELECTOR + ", __name__=~" in expr, expr
    assert checked >= 40


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def test_dashboard_structure() -> None:
    assert DASHBOARDS, "no dashboard in grafana/dashboards"
    uids = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard["uid"]), path
        assert dashboard["uid"] not in uids
        uids.add(dashboard["uid"])
        assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
        assert dashboard.get("id") is None, "a provisioned dashboard must not carry an id"
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert {"datasource", "account", "partner", "export_type", "frequency"} <= set(variables)
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        for name, var in variables.items():
            if var["type"] == "query":
                assert var["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, name

        panels = _panels(dashboard)
        ids = [p["id"] for p in panels]
        assert len(ids) == len(set(ids)), "duplicate panel ids"
        boxes = []
        for panel in panels:
            grid = panel["gridPos"]
            assert set(grid) == {"h", "w", "x", "y"}, panel["title"]
            assert all(isinstance(v, int) and v >= 0 for v in grid.values()), panel["title"]
            assert grid["w"] >= 1 and grid["h"] >= 1 and grid["x"] + grid["w"] <= 24
            boxes.append((grid["x"], grid["y"], grid["x"] + grid["w"], grid["y"] + grid["h"]))
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"] == panel["datasource"], panel["title"]
                assert target["expr"].strip(), panel["title"]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                overlap = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
                assert not overlap, f"panels overlap: {a} {b}"
        for ds in _datasource_refs(dashboard):
            assert ds.get("uid") in {"${datasource}", "-- Grafana --"}, f"hard-coded {ds}"


def _datasource_refs(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        if isinstance(node.get("datasource"), dict):
            found.append(node["datasource"])
        for value in node.values():
            found.extend(_datasource_refs(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_datasource_refs(value))
    return found


def test_grafana_provisioning_points_at_the_dashboards() -> None:
    prov = ROOT / "grafana" / "provisioning"
    ds = yaml.safe_load((prov / "datasources" / "prometheus.yml").read_text())
    assert ds["datasources"][0]["type"] == "prometheus"
    providers = yaml.safe_load((prov / "dashboards" / "clevertap.yml").read_text())
    assert providers["providers"][0]["options"]["path"]


def test_dockerfile_is_small_non_root_and_healthchecked() -> None:
    text = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert bases and all(":" in b and "slim" in b for b in bases), bases
    user = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert user and not user[-1].startswith(("root", "0")), user
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, re.M)
    assert "EXPORTER_STATE_PATH=/data/state.db" in text and 'VOLUME ["/data"]' in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ignored[0] == "*" or "*" in ignored, "the build context should be a whitelist"
