"""The kustomize tree renders, validates offline, and says what the deployment promises."""

from __future__ import annotations

import json
import posixpath
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bundle.__main__ import main as bundle_main
from bundle.__main__ import render as bundle_render
from bundle.kubernetes import COMPONENT, job_name
from tests.bundle.conftest import run_tool
from tests.deploy.conftest import SECRET, VARIANTS, Objects, find, one
from tests.helpers import ROOT

Render = Callable[[str], Objects]

#: Kubernetes versions the built-in objects are validated against: an older supported release
#: (1.32) and the newest schema kubernetes-validate 1.37 ships, that of the dev extra's kubectl.
K8S_VERSIONS = ("1.32.0", "1.37.0")
OPERATOR_GROUP = "monitoring.coreos.com"
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
EXPORTER = "exporter"
SINGLE = [v for v in VARIANTS if "replicated" not in v and v != "base+all"]
REPLICATED = [v for v in VARIANTS if v not in SINGLE]


def pod_specs(objects: Objects) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, pod template) of every workload."""
    for obj in objects:
        if obj["kind"] in WORKLOADS:
            template = obj["spec"]["template"]
            if obj["kind"] == "CronJob":
                template = obj["spec"]["jobTemplate"]["spec"]["template"]
            yield obj, template


def exporter_deployment(objects: Objects) -> dict[str, Any]:
    return one(objects, "Deployment", "clevertap-export-exporter")


def container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in pod["spec"]["containers"] if c["name"] == name)


def env(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in c.get("env", [])}


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_builds(render: Render, variant: str) -> None:
    objects = render(variant)
    keys = [(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(keys) == len(set(keys)), "duplicate objects"
    assert exporter_deployment(objects)
    assert one(objects, "Service", "clevertap-export-exporter")


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_builtin_objects_validate_against_the_kubernetes_schema(
        render: Render, variant: str, version: str) -> None:
    problems = []
    for obj in render(variant):
        if obj["apiVersion"].startswith(OPERATOR_GROUP + "/"):
            continue  # custom resources: test_operator_objects_validate_against_their_crds
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} "
                            f"at {list(exc.path)}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{obj['kind']} {obj['apiVersion']}: no schema in Kubernetes "
                            f"{version}")
    assert not problems, "\n".join(problems)


def test_operator_objects_validate_against_their_crds(
        render: Render, crd_validator: Callable[[Objects], Any]) -> None:
    custom = {json.dumps(o, sort_keys=True): o for v in VARIANTS for o in render(v)
              if o["apiVersion"].startswith(OPERATOR_GROUP + "/")}
    kinds = {o["kind"] for o in custom.values()}
    assert kinds == {"ServiceMonitor", "PrometheusRule"}
    # In the same run, so that the validator is shown not to be a rubber stamp: a bad
    # duration and a misspelt field both fail.
    broken = json.loads(json.dumps(one(render("base+prometheus-operator"), "ServiceMonitor")))
    broken["metadata"]["name"] = "broken"
    broken["spec"]["endpoints"][0]["interval"] = "30 seconds"
    broken["spec"]["endpoints"][0]["scrapeTimout"] = "10s"
    result = crd_validator([*custom.values(), broken])
    problems = [line for line in result.stdout.splitlines() if ": " in line]
    assert result.returncode == 1, result.stdout + result.stderr
    assert all(p.startswith("ServiceMonitor/broken: ") for p in problems), result.stdout
    assert any("interval must match pattern" in p for p in problems), result.stdout
    assert any("scrapeTimout" in p for p in problems), result.stdout


def prometheus_rule() -> dict[str, Any]:
    return one(list(yaml.safe_load_all((ROOT / COMPONENT / "prometheusrule.yaml").read_text())),
               "PrometheusRule")


def test_prometheus_rule_holds_the_groups_of_the_plain_rule_files() -> None:
    plain = [g for name in ("rules.yml", "alerts.yml")
             for g in yaml.safe_load((ROOT / "prometheus" / name).read_text())["groups"]]
    assert prometheus_rule()["spec"]["groups"] == plain


def test_prometheus_rule_passes_promtool(tmp_path: Path, render: Render) -> None:
    rendered = one(render("overlays/single"), "PrometheusRule")
    rules = tmp_path / "prometheusrule-spec.yml"
    rules.write_text(yaml.safe_dump(rendered["spec"]))
    out = run_tool("promtool", "check", "rules", rules)
    count = sum(len(g["rules"]) for g in rendered["spec"]["groups"])
    assert f"SUCCESS: {count} rules found" in out.stdout + out.stderr


def test_dashboard_config_map_is_the_plain_dashboard(render: Render) -> None:
    config_map = one(render("base+prometheus-operator"), "ConfigMap",
                     "clevertap-export-exporter-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    plain = (ROOT / "grafana" / "dashboards" / "clevertap-exports.json").read_text()
    assert config_map["data"] == {"clevertap-exports.json": plain}


def test_bundle_check_catches_a_stale_kubernetes_copy(tmp_path: Path) -> None:
    assert bundle_main(["--check"]) == 0, "run `python -m bundle`"
    for rel, content in bundle_render().items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(content)
    assert bundle_main(["--check", "--out", str(tmp_path)]) == 0
    stale = tmp_path / COMPONENT / "prometheusrule.yaml"
    stale.write_text(stale.read_text().replace("for: 5m", "for: 6m"))
    assert bundle_main(["--check", "--out", str(tmp_path)]) == 1


@pytest.mark.parametrize("variant", ["base+prometheus-operator", "overlays/single",
                                     "overlays/replicated"])
def test_service_monitor_scrapes_the_metrics_port_as_the_rules_job(
        render: Render, variant: str) -> None:
    objects = render(variant)
    monitor = one(objects, "ServiceMonitor")
    [service] = [s for s in find(objects, "Service")
                 if selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
    [endpoint] = monitor["spec"]["endpoints"]
    port = next(p for p in service["spec"]["ports"] if p["name"] == endpoint["port"])
    pod = exporter_deployment(objects)["spec"]["template"]
    assert selects(service["spec"]["selector"], pod["metadata"]["labels"])
    ports = {p["name"]: p["containerPort"] for p in container(pod, EXPORTER)["ports"]}
    assert port["targetPort"] in ports
    assert f"--metrics-port={ports[port['targetPort']]}" in container(pod, EXPORTER)["args"]
    # Applied after the operator's own job label (the Service name): the rules' job wins.
    assert endpoint["relabelings"][-1] == {
        "action": "replace", "targetLabel": "job", "replacement": job_name()}
    assert job_name() == "clevertap-export"


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_workload_is_hardened_and_sized(render: Render, variant: str) -> None:
    pods = list(pod_specs(render(variant)))
    assert pods
    for workload, pod in pods:
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        spec = pod["spec"]
        security = spec["securityContext"]
        assert security["runAsNonRoot"] is True, where
        assert security["runAsUser"] == 10001 and security["runAsGroup"] == 10001, where
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        for c in spec["containers"] + spec.get("initContainers", []):
            what = f"{where} container {c['name']}"
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{what}: {kind}"
            assert c["securityContext"] == {
                "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]}}, what
            name, _, tag = c["image"].rpartition(":")
            assert name and "/" not in tag and tag not in ("", "latest"), f"{what}: unpinned"
            ports = {p["name"] for p in c.get("ports", [])}
            for probe in ("livenessProbe", "readinessProbe"):
                assert c[probe]["httpGet"]["port"] in ports, f"{what}: {probe}"
        exporter = container(pod, EXPORTER)
        assert exporter["startupProbe"]["httpGet"]["port"] in {p["name"] for p in
                                                              exporter["ports"]}
        assert exporter["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert exporter["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_exporter_image_is_the_package_version(render: Render) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    pod = exporter_deployment(render("base"))["spec"]["template"]
    assert container(pod, EXPORTER)["image"] == f"clevertap-export-exporter:{version}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_secrets_come_from_files_of_the_mounted_secret(render: Render, variant: str) -> None:
    objects = render(variant)
    pod = exporter_deployment(objects)["spec"]["template"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    exporter = container(pod, EXPORTER)
    secret_dirs = [m["mountPath"] for m in exporter["volumeMounts"]
                   if volumes[m["name"]].get("secret", {}).get("secretName") == SECRET]
    assert len(secret_dirs) == 1
    files = {k: e["value"] for k, e in env(exporter).items() if k.endswith("_FILE")}
    assert "EXPORTER_AUTH_TOKEN_FILE" in files
    for key, path in files.items():
        assert posixpath.dirname(path) == secret_dirs[0], key
        assert key[:-len("_FILE")] not in env(exporter), f"{key} and its plain variable"
    for e in env(exporter).values():
        assert "value" in e or e["valueFrom"]["secretKeyRef"]["name"] == SECRET, e["name"]
    config_maps = {o["metadata"]["name"] for o in find(objects, "ConfigMap")}
    for source in exporter["envFrom"]:
        assert source["configMapRef"]["name"] in config_maps
    env_map = next(o for o in find(objects, "ConfigMap")
                   if o["metadata"]["name"] == exporter["envFrom"][0]["configMapRef"]["name"])
    assert "EXPORTER_TIMEZONE" in env_map["data"]


@pytest.mark.parametrize("variant", SINGLE)
def test_single_replica_keeps_sqlite_on_its_volume(render: Render, variant: str) -> None:
    objects = render(variant)
    deployment = exporter_deployment(objects)
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    exporter = container({"spec": pod}, EXPORTER)
    state = env(exporter)["EXPORTER_STATE_PATH"]["value"]
    [claim] = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    [mount] = [m for m in exporter["volumeMounts"] if m["name"] == claim["name"]]
    assert posixpath.dirname(state) == mount["mountPath"]
    one(objects, "PersistentVolumeClaim", claim["persistentVolumeClaim"]["claimName"])
    assert pod["securityContext"]["fsGroup"] == 10001


@pytest.mark.parametrize("variant", REPLICATED)
def test_replicated_variant_shares_postgresql_and_survives_disruption(
        render: Render, variant: str) -> None:
    objects = render(variant)
    deployment = exporter_deployment(objects)
    replicas = deployment["spec"]["replicas"]
    assert replicas >= 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = deployment["spec"]["template"]
    exporter = container(pod, EXPORTER)
    assert "EXPORTER_STATE_PATH" not in env(exporter)
    assert env(exporter)["EXPORTER_STATE_URL_FILE"]["value"].endswith("/state-url")
    assert not find(objects, "PersistentVolumeClaim")
    assert not [v for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v]
    assert "/data" not in {m["mountPath"] for m in exporter["volumeMounts"]}
    budget = one(objects, "PodDisruptionBudget")
    assert selects(budget["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"])
    assert 1 <= budget["spec"]["minAvailable"] < replicas
    spread = pod["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {"kubernetes.io/hostname",
                                                   "topology.kubernetes.io/zone"}
    for constraint in spread:
        assert selects(constraint["labelSelector"]["matchLabels"], pod["metadata"]["labels"])


@pytest.mark.parametrize("variant", ["base+ingress", "overlays/single", "overlays/replicated"])
def test_ingress_publishes_only_the_webhook_and_the_token_endpoint(
        render: Render, variant: str) -> None:
    objects = render(variant)
    ingress = one(objects, "Ingress")
    service = one(objects, "Service")
    paths = set()
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            paths.add((path["path"], path["pathType"]))
            backend = path["backend"]["service"]
            assert backend == {"name": service["metadata"]["name"], "port": {"name": "webhook"}}
    assert paths == {("/webhook", "Prefix"), ("/oauth/token", "Exact")}
    assert {h for t in ingress["spec"]["tls"] for h in t["hosts"]} == {
        r["host"] for r in ingress["spec"]["rules"]}
    pod = exporter_deployment(objects)["spec"]["template"]
    webhook = next(p for p in service["spec"]["ports"] if p["name"] == "webhook")
    ports = {p["name"]: p["containerPort"] for p in container(pod, EXPORTER)["ports"]}
    # The webhook port is the exporter's --port (default 9877), not the metrics port.
    assert ports[webhook["targetPort"]] == 9877
    assert not any(a.startswith("--port") for a in container(pod, EXPORTER)["args"])


@pytest.mark.parametrize("variant", ["base+network-policy", "overlays/replicated"])
def test_network_policy_admits_the_two_ports_it_names(render: Render, variant: str) -> None:
    objects = render(variant)
    policy = one(objects, "NetworkPolicy")
    pod = exporter_deployment(objects)["spec"]["template"]
    assert selects(policy["spec"]["podSelector"]["matchLabels"], pod["metadata"]["labels"])
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    named = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert named == {"webhook", "metrics"}
    assert named <= {p["name"] for p in container(pod, EXPORTER)["ports"]}
    for rule in policy["spec"]["ingress"]:
        assert rule["from"], "an ingress rule without sources admits everyone"


@pytest.mark.parametrize("variant", VARIANTS)
def test_config_reloader_watches_the_exports_file_and_calls_reload(
        render: Render, variant: str) -> None:
    pod = exporter_deployment(render(variant))["spec"]["template"]
    exporter = container(pod, EXPORTER)
    reloader = container(pod, "config-reloader")
    args = dict(a.lstrip("-").split("=", 1) for a in reloader["args"])
    exporter_args = dict(a.lstrip("-").split("=", 1) for a in exporter["args"])
    assert posixpath.dirname(exporter_args["config.file"]) == args["volume-dir"]
    mounts = {m["mountPath"]: m["name"] for m in reloader["volumeMounts"]}
    assert mounts[args["volume-dir"]] in {m["name"] for m in exporter["volumeMounts"]}
    assert args["webhook-url"] == f"http://127.0.0.1:{exporter_args['metrics-port']}/-/reload"
    # Mounted as a directory (no subPath): the kubelet then swaps in a changed ConfigMap.
    assert not any("subPath" in m for m in exporter["volumeMounts"])
