"""The Grafana dashboard for CleverTap exports, as code."""

from __future__ import annotations

from typing import Any

from bundle.config import STATE_COUNTERS
from bundle.rules import EXPORT_LABELS, across, sel
from exporter.domain.thresholds import THRESHOLDS

UID = "clevertap-exports"
DS = {"type": "prometheus", "uid": "${datasource}"}
_PICKED = ('account=~"$account"', 'partner=~"$partner"', 'export_type=~"$export_type"',
           'frequency=~"$frequency"')
BY = ", ".join(EXPORT_LABELS)
LEGEND = "{{account}} {{partner}} {{export_type}} {{frequency}}"


def _m(metric: str, *matchers: str) -> str:
    """``metric`` of the selected exporter, for the exports picked in the variables."""
    return sel(metric, *_PICKED, *matchers)


def _max(metric: str) -> str:
    """A gauge of the picked exports, one series per export however many replicas expose it."""
    return across("max", _m(metric))


def _interval() -> str:
    """The picked exports' expected interval, whatever its source (declared, CleverTap's or
    learned: one at a time per export)."""
    return across("max", _m("clevertap_export_expected_interval_seconds"), "source")


def _counted(fn: str, metric: str, window: str, *matchers: str) -> str:
    """``fn`` (increase, rate) of a state counter per replica, then across replicas."""
    return across(STATE_COUNTERS, f"{fn}({_m(metric, *matchers)}[{window}])")


def _target(ref: str, expr: str, legend: str = "", *, instant: bool = False,
            fmt: str = "time_series") -> dict[str, Any]:
    target: dict[str, Any] = {
        "datasource": DS,
        "refId": ref,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "instant": instant,
        "format": fmt,
    }
    return target


def _thresholds(*steps: tuple[float | None, str]) -> dict[str, Any]:
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for value, color in steps],
    }


def _timeseries(title: str, description: str, targets: list[dict[str, Any]], unit: str,
                *, bars: bool = False, interval: str | None = None,
                thresholds: dict[str, Any] | None = None,
                threshold_style: str = "off") -> dict[str, Any]:
    panel: dict[str, Any] = {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "color": {"mode": "palette-classic"},
                "custom": {
                    "drawStyle": "bars" if bars else "line",
                    "fillOpacity": 60 if bars else 10,
                    "lineWidth": 1,
                    "showPoints": "never" if not bars else "auto",
                    "spanNulls": False,
                    "stacking": {"mode": "normal" if bars else "none", "group": "A"},
                    "thresholdsStyle": {"mode": threshold_style},
                },
                "thresholds": thresholds or _thresholds((None, "green")),
            },
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "table", "placement": "bottom", "showLegend": True,
                       "calcs": ["lastNotNull", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }
    if interval:
        panel["interval"] = interval
    return panel


def _stat(title: str, description: str, targets: list[dict[str, Any]], unit: str,
          thresholds: dict[str, Any], mappings: list[dict[str, Any]] | None = None
          ) -> dict[str, Any]:
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "color": {"mode": "thresholds"},
                "thresholds": thresholds,
                "mappings": mappings or [],
            },
            "overrides": [],
        },
        "options": {
            "colorMode": "background",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "value_and_name",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        },
    }


def _row(title: str) -> dict[str, Any]:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def _override(name: str, *props: tuple[str, Any]) -> dict[str, Any]:
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": key, "value": value} for key, value in props],
    }


def _status_table() -> dict[str, Any]:
    tolerance = THRESHOLDS["overdue_tolerance"]
    return {
        "type": "table",
        "title": "Time since last completion",
        "description": (
            "Per export: time since its last completion, its expected interval and the number "
            "of intervals elapsed. Yellow: past the expected interval; red: past the interval "
            f"times the overdue tolerance ({tolerance}), where the overdue alert fires once "
            "the grace period is over too. One-time exports have no interval."
        ),
        "datasource": DS,
        "targets": [
            _target("A", f"time() - {_max('clevertap_export_last_completed_timestamp_seconds')}",
                    instant=True, fmt="table"),
            _target("B", _interval(),
                    instant=True, fmt="table"),
            _target("C", _elapsed_intervals(), instant=True, fmt="table"),
            _target("D", _max("clevertap_export_in_flight"),
                    instant=True, fmt="table"),
        ],
        "transformations": [
            {"id": "merge", "options": {}},
            {
                "id": "organize",
                "options": {
                    "excludeByName": {"Time": True},
                    "indexByName": {},
                    "renameByName": {
                        "account": "Account",
                        "partner": "Partner",
                        "export_type": "Type",
                        "frequency": "Frequency",
                        "Value #A": "Since last completion",
                        "Value #B": "Expected interval",
                        "Value #C": "Intervals elapsed",
                        "Value #D": "In flight",
                    },
                },
            },
        ],
        "fieldConfig": {
            "defaults": {
                "custom": {"align": "auto", "cellOptions": {"type": "auto"}},
                "thresholds": _thresholds((None, "green")),
            },
            "overrides": [
                _override("Since last completion", ("unit", "s"), ("decimals", 0)),
                _override("Expected interval", ("unit", "s")),
                _override(
                    "Intervals elapsed",
                    ("unit", "none"),
                    ("decimals", 2),
                    ("custom.cellOptions", {"type": "color-background"}),
                    ("thresholds", _thresholds((None, "green"), (1, "yellow"),
                                               (tolerance, "red"))),
                ),
            ],
        },
        "options": {"showHeader": True, "cellHeight": "sm",
                    "sortBy": [{"displayName": "Intervals elapsed", "desc": True}]},
    }


def _alerts_table() -> dict[str, Any]:
    return {
        "type": "table",
        "title": "Firing alerts",
        "description": "CleverTap export alerts currently firing in Prometheus.",
        "datasource": DS,
        "targets": [_target(
            "A", sel("ALERTS", 'alertname=~"ClevertapExport.*"', 'alertstate="firing"'),
            instant=True, fmt="table")],
        "transformations": [{
            "id": "organize",
            "options": {
                "excludeByName": {"Time": True, "Value": True, "__name__": True,
                                  "alertstate": True},
                "indexByName": {"alertname": 0, "severity": 1},
                "renameByName": {},
            },
        }],
        "fieldConfig": {"defaults": {"custom": {"align": "auto"}}, "overrides": []},
        "options": {"showHeader": True, "cellHeight": "sm"},
    }


def _heatmap() -> dict[str, Any]:
    return {
        "type": "heatmap",
        "title": "Duration heatmap",
        "description": "Export durations (Initiated to Completed) per hour, by histogram bucket.",
        "datasource": DS,
        "interval": "1h",
        "targets": [_target(
            "A",
            "sum by (le) ("
            + _counted("increase", "clevertap_export_duration_seconds_bucket", "$__interval")
            + ")",
            "{{le}}", fmt="heatmap")],
        "options": {
            "calculate": False,
            "yAxis": {"unit": "s", "axisPlacement": "left"},
            "color": {"mode": "scheme", "scheme": "Oranges", "exponent": 0.5, "steps": 64,
                      "fill": "dark-orange", "reverse": False},
            "cellGap": 1,
            "filterValues": {"le": 1e-9},
            "rowsFrame": {"layout": "auto"},
            "tooltip": {"show": True, "yHistogram": True},
            "legend": {"show": True},
        },
        "fieldConfig": {"defaults": {}, "overrides": []},
    }


def _layout(rows: list[tuple[dict[str, Any] | None, list[tuple[dict[str, Any], int, int]]]]
            ) -> list[dict[str, Any]]:
    """Place panels left to right, wrapping at 24 columns; assign ids in order."""
    panels: list[dict[str, Any]] = []
    y = 0
    for row, items in rows:
        if row is not None:
            row["gridPos"] = {"h": 1, "w": 24, "x": 0, "y": y}
            panels.append(row)
            y += 1
        x, line_h = 0, 0
        for panel, w, h in items:
            if x + w > 24:
                x, y = 0, y + line_h
                line_h = 0
            panel["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
            panels.append(panel)
            x += w
            line_h = max(line_h, h)
        y += line_h
    for number, panel in enumerate(panels, start=1):
        panel["id"] = number
    return panels


def _variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": query,
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "regex": "",
        "sort": 1,
        "hide": 0,
        "skipUrlSync": False,
    }


def _elapsed_intervals() -> str:
    """Expected intervals since the newest completion on any replica, per recurring export."""
    return (f"(time() - {_max('clevertap_export_last_completed_timestamp_seconds')})\n"
            f"/ {_interval()}")


def dashboard() -> dict[str, Any]:
    tolerance = THRESHOLDS["overdue_tolerance"]
    overview = [
        (_stat(
            "Exporter up", "Whether Prometheus scrapes the exporter.",
            [_target("A", sel("up"), "{{instance}}", instant=True)], "none",
            _thresholds((None, "red"), (1, "green")),
            [{"type": "value", "options": {"0": {"text": "DOWN", "index": 0},
                                           "1": {"text": "UP", "index": 1}}}]), 6, 4),
        (_stat(
            "Since last webhook", "Time since the exporter last accepted a webhook.",
            [_target("A", "time() - " + across(
                "max", sel("clevertap_export_webhook_last_received_timestamp_seconds")),
                "{{job}}", instant=True)], "s",
            _thresholds((None, "green"), (4 * 3600, "yellow"),
                        (24 * 3600 + THRESHOLDS["webhooks_missing_margin_seconds"], "red"))),
         6, 4),
        (_stat(
            "Exports in flight", "Exports initiated and not yet completed.",
            [_target("A", f"sum({_max('clevertap_export_in_flight')})", "in flight",
                     instant=True)], "none", _thresholds((None, "green"))), 6, 4),
        (_stat(
            "Abandoned in range", "In-flight exports dropped after the exporter's timeout.",
            [_target("A", "sum(" + _counted("increase", "clevertap_export_abandoned_total",
                                            "$__range") + ") or vector(0)",
                     "abandoned", instant=True)], "none",
            _thresholds((None, "green"), (1, "red"))), 6, 4),
        (_status_table(), 24, 9),
        (_timeseries(
            "Intervals since last completion",
            "Time since the last completion divided by the expected interval (recurring "
            f"exports). Above 1 the export is late; above {tolerance} (plus grace) it is "
            "overdue.",
            [_target("A", _elapsed_intervals(), LEGEND)],
            "none",
            thresholds=_thresholds((None, "green"), (1, "yellow"), (tolerance, "red")),
            threshold_style="line+area"), 24, 8),
        (_alerts_table(), 24, 6),
    ]
    activity = [
        (_timeseries("Exports in flight", "Running exports per export.",
                     [_target("A", _max("clevertap_export_in_flight"),
                              LEGEND)], "none"), 12, 8),
        (_timeseries("Age of oldest in-flight export",
                     "How long the oldest running export has been in flight.",
                     # The recorded age ignores a lagging replica's already finished run.
                     [_target("A", _m("clevertap_export:in_flight_age_seconds"), LEGEND)],
                     "s"), 12, 8),
        (_timeseries("Completions per hour",
                     "Completed and failed status events per hour.",
                     [_target(ref, f"sum by ({BY}) ("
                                   + _counted("increase", "clevertap_export_status_events_total",
                                              "$__interval", f'status="{status}"') + ")",
                              f"{status} {LEGEND}")
                      for ref, status in (("A", "completed"), ("B", "failed"))],
                     "none", bars=True, interval="1h"), 24, 8),
    ]
    durations = [
        (_timeseries("Duration percentiles (1 day window)",
                     "Export duration percentiles over the previous day.",
                     [_target(ref, f"histogram_quantile({q}, sum by (le, partner, export_type, "
                                   "frequency) (" + _counted(
                                       "rate", "clevertap_export_duration_seconds_bucket", "1d")
                                   + "))",
                              f"p{int(q * 100)} {{{{partner}}}} {{{{export_type}}}} "
                              "{{frequency}}")
                      for ref, q in (("A", 0.5), ("B", 0.9), ("C", 0.99))], "s"), 12, 8),
        (_heatmap(), 12, 8),
        (_timeseries("Last duration", "Duration of the most recent completed run.",
                     [_target("A", _m("clevertap_export:last_duration_seconds"), LEGEND)],
                     "s"), 24, 7),
    ]
    webhooks = [
        (_timeseries("Webhook requests by outcome",
                     "Webhook requests per outcome; unauthorized, invalid and too_large are "
                     "rejections.",
                     # One replica answers each request: summed across replicas.
                     [_target("A", "sum by (outcome) (increase("
                                   + sel("clevertap_export_webhook_requests_total")
                                   + "[$__rate_interval]))",
                              "{{outcome}}")], "none", bars=True), 12, 8),
        (_timeseries("Delivery delay",
                     "Receipt time minus event time of the last webhook per account. Hours "
                     "(positive or negative) mean the exporter's --timezone is wrong.",
                     [_target("A", across("max", sel(
                         "clevertap_export_last_delivery_delay_seconds", _PICKED[0])),
                         "{{account}}")], "s",
                     thresholds=_thresholds(
                         (None, "green"), (THRESHOLDS["delivery_delay_max_seconds"], "red")),
                     threshold_style="line"), 12, 8),
    ]
    landing = [
        (_timeseries("Landed bytes",
                     "Bytes the last checked run of each export with a destination landed, "
                     "and its usual size (the median of its last checked runs; absent while "
                     "the history is short). Far below the usual raises "
                     "ClevertapExportLandedLessThanUsual; none at all, "
                     "ClevertapExportLandedNothing.",
                     [_target("A", _max("clevertap_export_landing_last_bytes"),
                              f"landed {LEGEND}"),
                      _target("B", _max("clevertap_export_landing_usual_bytes"),
                              f"usual {LEGEND}")], "bytes"), 12, 8),
        (_timeseries("Landing checks by outcome",
                     "Landing checks per outcome: landed, smaller_than_usual, empty, and the "
                     "listings that failed (cannot_list_permission, not_found, error).",
                     [_target("A", "sum by (outcome) ("
                                   + _counted("increase", "clevertap_export_landing_checks_total",
                                              "$__interval") + ")", "{{outcome}}")],
                     "none", bars=True, interval="1h"), 12, 8),
    ]
    panels = _layout([
        (None, overview),
        (_row("Activity"), activity),
        (_row("Durations"), durations),
        (_row("Landing"), landing),
        (_row("Webhooks"), webhooks),
    ])
    return {
        "annotations": {"list": [{
            "builtIn": 1,
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True,
            "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard",
        }]},
        "description": "CleverTap data exports seen through clevertap-export-exporter.",
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "links": [],
        "panels": panels,
        "refresh": "1m",
        "schemaVersion": 39,
        "tags": ["clevertap", "exports"],
        "templating": {"list": [
            {
                "name": "datasource",
                "label": "Data source",
                "type": "datasource",
                "query": "prometheus",
                "current": {},
                "hide": 0,
                "includeAll": False,
                "multi": False,
                "options": [],
                "refresh": 1,
                "regex": "",
                "skipUrlSync": False,
            },
            # Each variable narrowed by the ones before it.
            *(_variable(name, label,
                        f"label_values({sel('clevertap_export_in_flight', *_PICKED[:n])}, {name})")
              for n, (name, label) in enumerate((("account", "Account"), ("partner", "Partner"),
                                                 ("export_type", "Type"),
                                                 ("frequency", "Frequency")))),
        ]},
        "time": {"from": "now-24h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": "CleverTap exports",
        "uid": UID,
        "version": 1,
        "weekStart": "",
    }
