"""The rendered pod's command line, environment and files start a real exporter that behaves
as the manifests promise: probes answer, the webhook wants the Secret's credentials, /metrics
stays off the public port, and the reloader's request applies a changed exports ConfigMap.
The replicated variant's pod, started twice on one real PostgreSQL database from the Secret's
state-url, behaves as one exporter."""

from __future__ import annotations

import base64
import os
import sys
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.bundle.conftest import Server, http, wait_until
from tests.deploy.conftest import SECRET, Objects, find, one
from tests.helpers import Samples, free_port, parse_metrics
from tests.postgres import pg_cluster, pg_url

__all__ = ["pg_cluster", "pg_url"]  # fixtures used here, imported from tests.postgres

SECRET_DATA = {
    "auth-token": "token-from-the-secret",
    "basic-auth-user": "clevertap",
    "basic-auth-password": "basic-password",
    "oauth-client-id": "clevertap-oauth",
    "oauth-client-secret": "oauth-secret",
}
EVENT = {"Export Request Id": 7, "Partner": "Amazon S3", "Type": "Events",
         "Status": "Initiated", "Frequency": "Every 4 hours", "Date and Time": 1_700_000_000}


@dataclass
class Pod:
    """The exporter container of a rendered Deployment, run as a local process."""

    argv: list[str]
    env: dict[str, str]
    ports: dict[int, int]  # container port -> local port
    mounts: dict[str, Path]  # mount path -> local directory
    container: dict[str, Any]

    def url(self, port: int | str, path: str) -> str:
        number = port if isinstance(port, int) else next(
            p["containerPort"] for p in self.container["ports"] if p["name"] == port)
        return f"http://127.0.0.1:{self.ports[number]}{path}"


def local_pod(objects: Objects, tmp: Path, secret: Mapping[str, str] = SECRET_DATA) -> Pod:
    """The Deployment's exporter container with its volumes as directories under ``tmp``
    (the Secret's keys from ``secret``) and a free local port for each container port."""
    spec = one(objects, "Deployment", "clevertap-export-exporter")["spec"]["template"]["spec"]
    c = next(c for c in spec["containers"] if c["name"] == "exporter")
    volumes = {v["name"]: v for v in spec["volumes"]}
    config_maps = {o["metadata"]["name"]: o["data"] for o in find(objects, "ConfigMap")}
    mounts: dict[str, Path] = {}
    for mount in c["volumeMounts"]:
        local = tmp / mount["name"]
        local.mkdir(parents=True)
        volume = volumes[mount["name"]]
        if "secret" in volume:
            assert volume["secret"]["secretName"] == SECRET
            files = secret
        else:
            files = config_maps.get(volume.get("configMap", {}).get("name"), {})
        for key, value in files.items():
            (local / key).write_text(value)
        mounts[mount["mountPath"]] = local

    def here(value: str) -> str:
        for path, local in mounts.items():
            if value == path or value.startswith(path + "/"):
                return str(local) + value[len(path):]
        return value

    ports = {p["containerPort"]: free_port() for p in c["ports"]}
    # The container's environment and nothing of the test's, as in the image.
    env = {"PATH": os.environ["PATH"], "PYTHONUNBUFFERED": "1"}
    for source in c.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]])
    for e in c.get("env", []):
        env[e["name"]] = (here(e["value"]) if "value" in e
                          else secret[e["valueFrom"]["secretKeyRef"]["key"]])
    args = []
    for arg in c["args"]:
        flag, _, value = arg.partition("=")
        args.append(f"{flag}={ports[int(value)] if flag == '--metrics-port' else here(value)}")
    # The container listens on all addresses with the default --port; here, loopback only.
    argv = [str(Path(sys.executable).parent / "clevertap-export-exporter"), *args,
            "--host", "127.0.0.1", "--port", str(ports[9877])]
    return Pod(argv, env, ports, mounts, c)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize("variant", ["base", "base+oauth", "base+basic-auth"])
def test_rendered_pod_runs_as_promised(render: Callable[[str], Objects], tmp_path: Path,
                                       servers: Callable[..., Server], variant: str) -> None:
    objects = render(variant)
    pod = local_pod(objects, tmp_path)
    ready = pod.container["readinessProbe"]["httpGet"]
    server = servers(variant, pod.argv, tmp_path / "exporter.log",
                     pod.url(ready["port"], ready["path"]), pod.env)
    server.wait_ready()
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = pod.container[probe]["httpGet"]
        assert http("GET", pod.url(get["port"], get["path"]))[0] == 200, probe

    webhook = pod.url("webhook", "/webhook/prod")
    assert http("POST", webhook, EVENT)[0] == 401
    token = {"Authorization": f"Bearer {SECRET_DATA['auth-token']}"}
    assert http("POST", webhook, EVENT, headers=token) == (200, {"status": "accepted"})
    if "basic-auth" in variant:
        auth = basic(SECRET_DATA["basic-auth-user"], SECRET_DATA["basic-auth-password"])
        assert http("POST", webhook, EVENT, headers=auth) == (200, {"status": "duplicate"})
    if "oauth" in variant:
        status, grant = http(
            "POST", pod.url("webhook", "/oauth/token"),
            raw=urllib.parse.urlencode({"grant_type": "client_credentials"}).encode(),
            headers={**basic(SECRET_DATA["oauth-client-id"], SECRET_DATA["oauth-client-secret"]),
                     "Content-Type": "application/x-www-form-urlencoded"})
        assert status == 200, grant
        bearer = {"Authorization": f"Bearer {grant['access_token']}"}
        assert http("POST", webhook, EVENT, headers=bearer) == (200, {"status": "duplicate"})

    # The public port serves no metrics, status page or reload.
    for path in ("/metrics", "/", "/-/reload"):
        assert http("GET", pod.url("webhook", path))[0] == 404, path
    status, exports = http("GET", pod.url("metrics", "/api/v1/exports"))
    assert status == 200 and exports["timezone"] == pod.env["EXPORTER_TIMEZONE"]

    # What the config-reloader sidecar does after the kubelet swapped in a new ConfigMap.
    reloader = next(c for c in one(objects, "Deployment")["spec"]["template"]["spec"]
                    ["containers"] if c["name"] == "config-reloader")
    args = dict(a.lstrip("-").split("=", 1) for a in reloader["args"])
    exports_dir = pod.mounts[args["volume-dir"]]
    (exports_dir / "exports.yml").write_text(yaml.safe_dump({"exports": [{
        "name": "Nightly profiles", "account": "prod", "partner": "GCS", "type": "Profiles",
        "frequency": "Daily"}]}))
    reload_url = urllib.parse.urlsplit(args["webhook-url"])
    assert reload_url.hostname == "127.0.0.1" and reload_url.port is not None
    status, body = http("POST", pod.url(reload_url.port, reload_url.path))
    assert status == 200, body
    _, text = http("GET", pod.url("metrics", "/metrics"))
    declared = parse_metrics(text)["clevertap_export_declared_info"]
    assert [dict(k)["name"] for k in declared] == ["Nightly profiles"]
    assert (tmp_path / "data" / "state.db").is_file(), "state is not on the data volume"


@pytest.mark.parametrize("variant", ["base+replicated", "overlays/replicated"])
def test_replicated_pods_share_one_postgresql_state(
        render: Callable[[str], Objects], tmp_path: Path, servers: Callable[..., Server],
        pg_url: str, variant: str) -> None:
    objects = render(variant)
    secret = {**SECRET_DATA, "state-url": pg_url}
    replicas = one(objects, "Deployment")["spec"]["replicas"]
    assert replicas == 2
    pods = [local_pod(objects, tmp_path / f"pod-{i}", secret) for i in range(replicas)]
    for i, pod in enumerate(pods):
        # The URL is read from the Secret's volume, and no volume holds a SQLite file.
        state_file = Path(pod.env["EXPORTER_STATE_URL_FILE"])
        assert state_file.read_text() == pg_url and "EXPORTER_STATE_PATH" not in pod.env
        ready = pod.container["readinessProbe"]["httpGet"]
        servers(f"{variant} replica {i}", pod.argv, tmp_path / f"exporter-{i}.log",
                pod.url(ready["port"], ready["path"]), pod.env).wait_ready()
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = pod.container[probe]["httpGet"]
            assert http("GET", pod.url(get["port"], get["path"]))[0] == 200, (i, probe)

    token = {"Authorization": f"Bearer {SECRET_DATA['auth-token']}"}
    started = int(time.time()) - 3600
    initiated = {**EVENT, "Export Request Id": 8, "Date and Time": started}
    completed = {**initiated, "Status": "Completed", "Date and Time": started + 600}
    a, b = (pod.url("webhook", "/webhook/prod") for pod in pods)
    assert http("POST", a, initiated, headers=token) == (200, {"status": "accepted"})
    # B decides after catching up with A, so it closes A's run; each knows the other's delivery.
    assert http("POST", b, completed, headers=token) == (200, {"status": "accepted"})
    assert http("POST", b, initiated, headers=token) == (200, {"status": "duplicate"})
    assert http("POST", a, completed, headers=token) == (200, {"status": "duplicate"})

    def metrics(pod: Pod) -> Samples:
        status, text = http("GET", pod.url("metrics", "/metrics"))
        assert status == 200, text
        return parse_metrics(text)

    def converged() -> list[Samples] | None:
        views = [metrics(pod) for pod in pods]
        done = [v.get("clevertap_export_duration_seconds_count") for v in views]
        return views if all(done) and all(d == done[0] for d in done) else None

    views = wait_until("both replicas to show the completed run", converged, timeout=15)
    for view in views:
        assert set(view["clevertap_export_in_flight"].values()) == {0}
        assert sorted((dict(k)["status"], n)
                      for k, n in view["clevertap_export_status_events_total"].items()) == [
            ("completed", 1), ("initiated", 1)]
        assert list(view["clevertap_export_last_duration_seconds"].values()) == [600]
        assert not any(view.get("clevertap_export_abandoned_total", {}).values())
    assert (views[0]["clevertap_export_status_events_total"]
            == views[1]["clevertap_export_status_events_total"])
    assert views[0]["clevertap_export_in_flight"] == views[1]["clevertap_export_in_flight"]
