"""The compose stack's own files run as shipped: every exporter it starts is scraped, and the
``replicated`` profile's load balancer configuration passes Debian's ``nginx -t``
(issue 21 item 4, issue 22 item 1)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.bundle.conftest import run_tool
from tests.helpers import ROOT, require_binary

IMAGE = "clevertap-export-exporter:local"
WEBHOOK_PORT = 9877
#: ``--metrics-port`` of every shipped deployment: /metrics, the status page, ``/-/reload``.
PORT = 9878


def _compose() -> dict[str, Any]:
    out = run_tool("docker-compose", "-f", ROOT / "docker-compose.yml", "config")
    config: dict[str, Any] = yaml.safe_load(out.stdout)
    return config


def _exporter_services(config: dict[str, Any]) -> set[str]:
    return {name for name, service in config["services"].items()
            if service.get("image") == IMAGE}


def _scrape_job() -> dict[str, Any]:
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    (job,) = (j for j in config["scrape_configs"] if j["job_name"] == "clevertap-export")
    return dict(job)


def test_every_exporter_of_every_profile_is_scraped_by_its_service_name() -> None:
    """The ``replicated`` profile's replicas receive the webhooks: Prometheus must scrape them,
    not only the default profile's ``exporter``, and name each by its service, not by the
    container address a restart changes."""
    services = _exporter_services(_compose())
    assert services == {"exporter", "exporter-a", "exporter-b"}
    job = _scrape_job()
    assert "static_configs" not in job, "a static target that is not running is a down target"
    (sd,) = job["dns_sd_configs"]
    assert set(sd["names"]) == services and sd["type"] == "A" and sd["port"] == PORT
    (relabel,) = job["relabel_configs"]
    assert relabel["source_labels"] == ["__meta_dns_name"]
    assert relabel["target_label"] == "instance" and relabel["replacement"] == f"${{1}}:{PORT}"


def test_reload_and_metrics_are_off_the_webhook_port_in_compose_and_make_run() -> None:
    """As in the Kubernetes manifest and the systemd unit: the port CleverTap reaches serves
    the webhook only, and ``POST /-/reload`` is on a port published to this machine only, so
    anonymous clients cannot flood it (issue 23, item 11)."""
    services = _compose()["services"]
    for name in _exporter_services({"services": services}):
        service = services[name]
        assert service["environment"]["EXPORTER_METRICS_PORT"] == str(PORT), name
        for host_ip, target in map(_published, service.get("ports", [])):
            if target == PORT:
                assert host_ip == "127.0.0.1", f"{name} publishes {PORT} on {host_ip}"
            else:
                assert target == WEBHOOK_PORT, f"{name} publishes {target}"
    kubernetes = (ROOT / "deploy" / "kubernetes" / "base" / "deployment.yaml").read_text()
    assert f"--metrics-port={PORT}" in kubernetes
    recipe = run_tool("make", "-n", "run").stdout
    assert f"clevertap-export-exporter --metrics-port {PORT}" in recipe


def _published(port: dict[str, Any] | str) -> tuple[str, int]:
    """(host address, container port) of a published port as ``docker-compose config`` prints
    it: a mapping, or ``"127.0.0.1:9878:9878/tcp"`` when it has a host address."""
    if isinstance(port, dict):
        return str(port.get("host_ip", "0.0.0.0")), int(port["target"])
    host_ip, _, target = port.split("/")[0].split(":")
    return host_ip, int(target)


def _nginx_test(tmp_path: Path, conf: Path) -> subprocess.CompletedProcess[str]:
    """``nginx -t`` of ``conf`` as the compose profile mounts it (``conf.d/default.conf``, in
    ``http``), as the user running the tests, with everything nginx writes under ``tmp_path``.
    nginx resolves upstream names while it checks: a user and mount namespace gives it a hosts
    file with the compose service names, as the compose network does."""
    nginx = require_binary("nginx")
    unshare = require_binary("unshare")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost exporter-a exporter-b\n")
    paths = "\n".join(f"  {kind}_temp_path {tmp_path / kind};"
                      for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = tmp_path / "nginx.conf"
    # The namespace's root is the user running the tests: nginx would chown its temp
    # directories to "nobody", whom the namespace does not map.
    main.write_text(f"user root root;\npid {tmp_path / 'nginx.pid'};\nerror_log stderr;\n"
                    f"events {{}}\nhttp {{\n  access_log off;\n{paths}\n  include {conf};\n}}\n")
    script = f'mount --bind "$1" /etc/hosts && exec {nginx} -t -q -p "$2" -c "$3" -e stderr'
    return subprocess.run(
        [unshare, "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh",
         str(hosts), str(tmp_path), str(main)],
        capture_output=True, text=True, timeout=30, check=False)


def test_the_replicated_load_balancer_passes_nginx_t(tmp_path: Path) -> None:
    conf = ROOT / "nginx" / "replicated.conf"
    mounted = {v for s in _compose()["services"].values() for v in s.get("volumes", [])
               if isinstance(v, str) and v.startswith(str(conf))}
    assert mounted == {f"{conf}:/etc/nginx/conf.d/default.conf:ro"}
    proc = _nginx_test(tmp_path, conf)
    assert proc.returncode == 0, proc.stderr


def test_nginx_t_refuses_a_broken_load_balancer(tmp_path: Path) -> None:
    """The check can fail: a bad value and an unknown upstream name are each refused."""
    source = (ROOT / "nginx" / "replicated.conf").read_text()
    for broken, error in ((source.replace("proxy_read_timeout 2s", "proxy_read_timeout 2x"),
                           "invalid value"),
                          (source.replace("exporter-b:9877", "exporter-c:9877"),
                           "host not found in upstream")):
        conf = tmp_path / "broken.conf"
        conf.write_text(broken)
        proc = _nginx_test(tmp_path, conf)
        assert proc.returncode != 0 and error in proc.stderr, proc.stderr
