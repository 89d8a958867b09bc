"""Recording and alerting rules, built from `exporter.domain.thresholds` and `bundle.config`."""

from __future__ import annotations

from typing import Any

from bundle.config import JOB_SELECTOR, RUNBOOK_URL, SEVERITIES
from exporter.domain.thresholds import THRESHOLDS

EXPORT_LABELS = "account, partner, export_type, frequency"
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def duration(seconds: float) -> str:
    """Seconds as a Prometheus duration in the largest unit that divides it (5400 -> 90m)."""
    whole = int(seconds)
    if whole != seconds or whole <= 0:
        raise ValueError(f"durations must be positive whole seconds, got {seconds!r}")
    for unit, size in _UNITS:
        if whole % size == 0:
            return f"{whole // size}{unit}"
    raise AssertionError("unreachable")


def number(value: float) -> str:
    """A threshold as a PromQL number literal (1800 rather than 1800.0)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def human(seconds: float) -> str:
    """Seconds for people: 23400 -> '6h30m'."""
    rest = int(seconds)
    parts = []
    for unit, size in _UNITS:
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or "0s"


def _t(name: str) -> str:
    return number(THRESHOLDS[name])


def recording_rules() -> list[dict[str, Any]]:
    t = THRESHOLDS
    return [
        {
            "record": "clevertap_export:overdue_threshold_seconds",
            "expr": (
                "clevertap_export_expected_interval_seconds * "
                f"{_t('overdue_tolerance')}\n"
                "+\n"
                "(\n"
                "  clevertap_export_grace_seconds\n"
                "  or\n"
                "  clevertap_export_expected_interval_seconds * 0 + "
                f"{_t('overdue_grace_seconds')}\n"
                ")\n"
            ),
        },
        {
            "record": "clevertap_export:max_runtime_seconds",
            "expr": (
                "clevertap_export_max_runtime_seconds\n"
                "or\n"
                f"clevertap_export_expected_interval_seconds * {_t('stuck_interval_factor')}\n"
                "or\n"
                f"clevertap_export_in_flight * 0 + {_t('stuck_one_time_seconds')}\n"
            ),
        },
        {
            "record": "clevertap_export:time_since_last_completion_seconds",
            # A declared export that never completed counts from when it was first declared.
            "expr": (
                "time() - (\n"
                "  clevertap_export_last_completed_timestamp_seconds\n"
                "  or\n"
                "  clevertap_export_declared_timestamp_seconds\n"
                ")\n"
            ),
        },
        {
            "record": "clevertap_export:in_flight_age_seconds",
            "expr": "time() - clevertap_export_in_flight_oldest_start_timestamp_seconds\n",
        },
        {
            "record": "clevertap_export:webhook_last_received_timestamp_seconds",
            "expr": (
                "clevertap_export_webhook_last_received_timestamp_seconds > 0\n"
                "or\n"
                "(process_start_time_seconds and on (job, instance) "
                "clevertap_export_exporter_build_info)\n"
            ),
        },
        {
            "record": "clevertap_export:webhook_silence_threshold_seconds",
            "expr": (
                "max by (job, instance) (clevertap_export_expected_interval_seconds)\n"
                f"+ {number(t['webhooks_missing_margin_seconds'])}\n"
            ),
        },
    ]


def _alert(
    name: str,
    expr: str,
    summary: str,
    description: str,
    for_seconds: float = 0,
) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if for_seconds:
        rule["for"] = duration(for_seconds)
    rule["labels"] = {"severity": SEVERITIES[name]}
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        "runbook_url": f"{RUNBOOK_URL}#{name.lower()}",
    }
    return rule


_WHICH = (
    "The {{ $labels.frequency }} {{ $labels.export_type }} export to {{ $labels.partner }} "
    "of account {{ $labels.account }}"
)


def alerting_rules() -> list[dict[str, Any]]:
    t = THRESHOLDS
    return [
        _alert(
            "ClevertapExportOverdue",
            "clevertap_export:time_since_last_completion_seconds\n"
            "> clevertap_export:overdue_threshold_seconds\n",
            "A recurring CleverTap export has not completed within its expected interval.",
            f"{_WHICH} has not completed for {{{{ $value | humanizeDuration }}}} (since its "
            "last completion or, if it never completed, since it was declared), longer than "
            f"its expected interval times {number(t['overdue_tolerance'])} plus its grace period "
            f"(default {human(t['overdue_grace_seconds'])}).",
        ),
        _alert(
            "ClevertapExportStuck",
            "clevertap_export:in_flight_age_seconds\n> clevertap_export:max_runtime_seconds\n",
            "A CleverTap export has been in flight for too long.",
            f"{_WHICH} started {{{{ $value | humanizeDuration }}}} ago and has not completed; "
            "that is longer than its expected interval (recurring exports) or "
            f"{human(t['stuck_one_time_seconds'])} (one-time exports).",
        ),
        _alert(
            "ClevertapExportFailed",
            "(\n"
            "  clevertap_export_last_failed_timestamp_seconds\n"
            "  > clevertap_export_last_completed_timestamp_seconds\n"
            "  or\n"
            "  clevertap_export_last_failed_timestamp_seconds\n"
            "  unless clevertap_export_last_completed_timestamp_seconds\n"
            ")\n"
            "and\n"
            "time() - clevertap_export_last_failed_timestamp_seconds\n"
            f"< {_t('failed_alert_window_seconds')}\n",
            "A CleverTap export reported a failure.",
            f"{_WHICH} reported a failed status at {{{{ $value | humanizeTimestamp }}}} and has "
            "not completed since.",
        ),
        _alert(
            "ClevertapExportAbandoned",
            "round(increase(clevertap_export_abandoned_total"
            f"[{duration(t['abandoned_window_seconds'])}])) > 0\n",
            "CleverTap exports were abandoned without a completion.",
            f"{_WHICH} had {{{{ $value | humanize }}}} in-flight run(s) dropped in the last "
            f"{human(t['abandoned_window_seconds'])} because no completion arrived within "
            "the exporter's --in-flight-timeout.",
        ),
        _alert(
            "ClevertapExportWebhooksMissing",
            "time() - clevertap_export:webhook_last_received_timestamp_seconds\n"
            "> clevertap_export:webhook_silence_threshold_seconds\n",
            "The exporter has received no CleverTap webhook for too long.",
            "Exporter {{ $labels.instance }} has accepted no webhook for "
            "{{ $value | humanizeDuration }}, longer than the longest known export schedule plus "
            f"{human(t['webhooks_missing_margin_seconds'])}, although recurring exports are known.",
        ),
        _alert(
            "ClevertapExportWebhooksRejected",
            "round(sum by (job, instance, outcome) (\n"
            "  increase(clevertap_export_webhook_requests_total"
            '{outcome=~"unauthorized|invalid|too_large|unavailable"}'
            f"[{duration(t['rejected_window_seconds'])}])\n"
            f")) > {_t('rejected_max_count')}\n",
            "The exporter is rejecting webhooks.",
            "Exporter {{ $labels.instance }} rejected {{ $value | humanize }} webhook(s) as "
            f"{{{{ $labels.outcome }}}} in the last {human(t['rejected_window_seconds'])}.",
        ),
        _alert(
            "ClevertapExportLabelOverflow",
            "round(sum by (job, instance, label) (\n"
            "  increase(clevertap_export_label_overflow_total"
            f"[{duration(t['overflow_window_seconds'])}])\n"
            ")) > 0\n",
            "Label values are being folded into \"other\".",
            "Exporter {{ $labels.instance }} folded {{ $value | humanize }} value(s) of label "
            "{{ $labels.label }} into \"other\" in the last "
            f"{human(t['overflow_window_seconds'])}: the --max-label-values cap is reached.",
        ),
        _alert(
            "ClevertapExportTimeZoneMismatch",
            f"clevertap_export_last_delivery_delay_seconds > {_t('delivery_delay_max_seconds')}\n"
            "or\n"
            f"clevertap_export_last_delivery_delay_seconds < -{_t('delivery_delay_max_seconds')}\n",
            "Webhook event times disagree with the receipt time: the time zone looks wrong.",
            "The last webhook of account {{ $labels.account }} arrived "
            "{{ $value | humanizeDuration }} after its event time (beyond "
            f"+-{human(t['delivery_delay_max_seconds'])}; negative means before it): the "
            "exporter's --timezone probably differs from the CleverTap account's time zone.",
        ),
        _alert(
            "ClevertapExportEventTimeUnparsed",
            "round(sum by (job, instance, reason) (\n"
            "  increase(clevertap_export_event_time_unparsed_total"
            f"[{duration(t['unparsed_window_seconds'])}])\n"
            ")) > 0\n",
            "Webhooks arrive without a usable \"Date and Time\".",
            "Exporter {{ $labels.instance }} used the receipt time for {{ $value | humanize }} "
            "webhook(s) whose event time was {{ $labels.reason }} in the last "
            f"{human(t['unparsed_window_seconds'])}.",
        ),
        _alert(
            "ClevertapExporterDown",
            f"up{{{JOB_SELECTOR}}} == 0\n",
            "The CleverTap export exporter is down.",
            "Prometheus has failed to scrape {{ $labels.instance }} of job {{ $labels.job }} "
            f"for {human(t['exporter_down_for_seconds'])}; export alerts cannot be trusted.",
            for_seconds=t["exporter_down_for_seconds"],
        ),
        _alert(
            "ClevertapExporterAbsent",
            f"absent(up{{{JOB_SELECTOR}}})\n",
            "The CleverTap export exporter is not scraped at all.",
            f"Prometheus has had no scrape target matching {{{JOB_SELECTOR}}} for "
            f"{human(t['exporter_absent_for_seconds'])}.",
            for_seconds=t["exporter_absent_for_seconds"],
        ),
        _alert(
            "ClevertapExportTooFast",
            "(\n"
            "  clevertap_export_last_duration_seconds\n"
            "  < clevertap_export_min_runtime_seconds\n"
            ")\n"
            "and\n"
            "(\n"
            "  time() - clevertap_export_last_completed_timestamp_seconds\n"
            f"  < {_t('too_fast_window_seconds')}\n"
            ")\n",
            "A CleverTap export completed suspiciously fast.",
            f"{_WHICH} completed its last run in {{{{ $value | humanizeDuration }}}}, less than "
            "its declared min_runtime; it probably exported nothing.",
        ),
        _alert(
            "ClevertapExportConfigReloadFailed",
            "clevertap_export_config_last_reload_successful == 0\n",
            "The exporter could not reload its configuration file.",
            "Exporter {{ $labels.instance }} failed to reload its --config.file; it still runs "
            "with the previous configuration, so recent changes to declared exports and "
            "thresholds are not in force.",
            for_seconds=t["config_reload_failed_for_seconds"],
        ),
    ]


def rules_file() -> dict[str, Any]:
    return {"groups": [{"name": "clevertap-export.rules", "rules": recording_rules()}]}


def alerts_file() -> dict[str, Any]:
    return {"groups": [{"name": "clevertap-export.alerts", "rules": alerting_rules()}]}
