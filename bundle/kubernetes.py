"""Prometheus Operator objects for the kustomize component ``prometheus-operator``.

They hold the same rule groups and dashboard as the plain files, and the ServiceMonitor gives
its targets the job name that the rules select (``job`` in ``SELECTOR``), whatever the Service is
called after a ``namePrefix`` or in another namespace.
"""

from __future__ import annotations

import re
from typing import Any

from bundle.config import SELECTOR
from bundle.rules import alerts_file, rules_file

COMPONENT = "deploy/kubernetes/components/prometheus-operator"
NAME = "clevertap-export-exporter"
#: The label of the base's Service (and pods) that the ServiceMonitor selects.
APP_LABELS = {"app.kubernetes.io/name": NAME}
#: Label the kube-prometheus-stack Grafana sidecar looks for (its ``sidecar.dashboards.label``).
DASHBOARD_LABEL = {"grafana_dashboard": "1"}
DASHBOARD_FILE = "clevertap-exports.json"


def job_name() -> str:
    """The value of the ``job`` matcher in ``SELECTOR`` (equality matchers only)."""
    match = re.search(r'(?:^|,)\s*job="([^"\\]+)"', SELECTOR)
    if match is None:
        raise ValueError(f"SELECTOR must match job=\"NAME\" for the ServiceMonitor, "
                         f"got {SELECTOR!r}")
    return match.group(1)


def service_monitor() -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": NAME, "labels": dict(APP_LABELS)},
        "spec": {
            "selector": {"matchLabels": dict(APP_LABELS)},
            "endpoints": [{
                "port": "metrics",
                "path": "/metrics",
                "interval": "30s",
                "scrapeTimeout": "10s",
                # The operator sets job to the Service's name first; this runs after it.
                "relabelings": [
                    {"action": "replace", "targetLabel": "job", "replacement": job_name()},
                ],
            }],
        },
    }


def prometheus_rule() -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": NAME, "labels": dict(APP_LABELS)},
        "spec": {"groups": rules_file()["groups"] + alerts_file()["groups"]},
    }


def dashboard_config_map(dashboard_json: str) -> dict[str, Any]:
    """``dashboard_json`` is the plain dashboard file's text, so both stay byte-identical."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{NAME}-dashboard", "labels": {**APP_LABELS, **DASHBOARD_LABEL}},
        "data": {DASHBOARD_FILE: dashboard_json},
    }
