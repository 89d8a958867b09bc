"""Recording and alerting rules, built from `exporter.domain.thresholds` and `bundle.config`.

Every expression selects the exporter's series with ``config.SELECTOR``. Per-export conditions
are computed on series aggregated across replicas (``config.REPLICA_LABELS``), so N scraped
replicas raise one alert per export; docs/bundle.md gives the reasoning.
"""

from __future__ import annotations

import re
from typing import Any

from bundle.config import (
    FRESHEST_BY,
    REPLICA_LABELS,
    RUNBOOK_URL,
    SELECTOR,
    SEVERITIES,
    STATE_COUNTERS,
)
from exporter.domain.thresholds import THRESHOLDS

EXPORT_LABELS = ("account", "partner", "export_type", "frequency")
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_MATCHER = r'\s*\w+\s*=\s*"[^"]*"\s*'
if not re.fullmatch(rf"{_MATCHER}(,{_MATCHER})*", SELECTOR):
    raise ValueError(f"SELECTOR must be equality matchers (for absent()), got {SELECTOR!r}")
if FRESHEST_BY not in ("sequence", "event_time"):
    raise ValueError(f"FRESHEST_BY must be 'sequence' or 'event_time', got {FRESHEST_BY!r}")
if STATE_COUNTERS not in ("max", "sum"):
    raise ValueError(f"STATE_COUNTERS must be 'max' or 'sum', got {STATE_COUNTERS!r}")
#: The labels one replica's series share: the selector's and the replica labels.
_TARGET = ", ".join((*re.findall(r"(\w+)\s*=", SELECTOR), *REPLICA_LABELS))


def sel(metric: str, *matchers: str) -> str:
    """``metric`` restricted to the exporter's series, plus any further ``matchers``."""
    return f"{metric}{{{', '.join((SELECTOR, *matchers))}}}"


def across(op: str, expr: str, *also: str) -> str:
    """``expr`` aggregated with ``op`` across replicas (and across the labels ``also``)."""
    return f"{op} without ({', '.join((*REPLICA_LABELS, *also))}) ({expr})"


def ignoring_replicas() -> str:
    """The vector matching that pairs one replica's series with its all-replica aggregate."""
    return f"ignoring ({', '.join(REPLICA_LABELS)}) group_left ()"


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


# Recorded per export (the selector's labels and the export's own), across replicas.
LAST_COMPLETED = "clevertap_export:last_completed_timestamp_seconds:max"
LAST_FAILED = "clevertap_export:last_failed_timestamp_seconds:max"
INTERVAL = "clevertap_export:expected_interval_seconds:max"
LEARNED = "clevertap_export:expected_interval_seconds:learned"
USUAL_MEDIAN = "clevertap_export:usual_duration_median_seconds:max"
USUAL_HIGH = "clevertap_export:usual_duration_high_seconds:max"
SLOW = "clevertap_export:usual_slow_threshold_seconds"
FAST = "clevertap_export:usual_fast_threshold_seconds"
# Per replica, only for the replicas whose view of an export is the freshest (see below).
FRESHEST = "clevertap_export:replica_freshness:freshest"
# Landing checks, per export across replicas: from the replicas that applied the last check.
LANDING_CHECKED = "clevertap_export:landing_last_check_timestamp_seconds:max"
LANDING_FRESHEST = "clevertap_export:replica_landing_last_check_timestamp_seconds:freshest"
LANDING_OUTCOME = "clevertap_export:landing_last_outcome:freshest"
LANDING_FAILED = "clevertap_export:landing_failed_checks:freshest"
LANDING_USUAL = "clevertap_export:landing_usual_bytes:max"


def _record(name: str, expr: str) -> dict[str, Any]:
    return {"record": name, "expr": expr if expr.endswith("\n") else expr + "\n"}


def _freshest_rules() -> list[dict[str, Any]]:
    """Per export and replica, how fresh the replica's view is, kept for the freshest ones.

    A lagging replica still shows a run in flight, or the previous run's duration, after the
    others applied its completion; those gauges are taken from the freshest replicas, so a lag
    raises nothing. ``config.FRESHEST_BY`` says how freshness is told: by the replica's state
    sequence, or by the newest Initiated/Completed/Failed event time it applied to the export
    (which ties, or picks wrong, when a late webhook carries an older time). The oldest
    in-flight start takes part only so that a replica showing a run in flight is compared.
    """
    per_replica = "clevertap_export:replica_freshness"
    applied = "max without () (" + sel(
        "", '__name__=~"clevertap_export_(last_(initiated|completed|failed)'
        '|in_flight_oldest_start)_timestamp_seconds"') + ")"
    freshness = (applied if FRESHEST_BY == "event_time" else
                 f"{applied} * 0\n+ on ({_TARGET}) group_left ()\n"
                 f"{sel('clevertap_export_state_sequence')}")
    return [
        _record(per_replica, freshness),
        _record(FRESHEST, f"{per_replica}\n== {ignoring_replicas()}\n"
                          f"{across('max', per_replica)}"),
    ]


def recording_rules() -> list[dict[str, Any]]:
    t = THRESHOLDS
    # Timestamps only grow, so the newest across replicas is the freshest replica's view;
    # declared thresholds are equal on every replica but during a rollout: the larger wins.
    return [
        _record(LAST_COMPLETED,
                across("max", sel("clevertap_export_last_completed_timestamp_seconds"))),
        _record(LAST_FAILED, across("max", sel("clevertap_export_last_failed_timestamp_seconds"))),
        # Declared, CleverTap's or learned: one source at a time, so the label goes.
        _record(INTERVAL,
                across("max", sel("clevertap_export_expected_interval_seconds"), "source")),
        _record(LEARNED, across("max", sel("clevertap_export_expected_interval_seconds",
                                           'source="learned"'), "source")),
        *_freshest_rules(),
        _record(
            "clevertap_export:overdue_threshold_seconds",
            f"{INTERVAL} * {_t('overdue_tolerance')}\n"
            "+\n"
            "(\n"
            f"  {across('max', sel('clevertap_export_grace_seconds'))}\n"
            "  or\n"
            f"  {INTERVAL} * 0 + {_t('overdue_grace_seconds')}\n"
            ")",
        ),
        _record(
            "clevertap_export:max_runtime_seconds",
            f"{across('max', sel('clevertap_export_max_runtime_seconds'))}\n"
            "or\n"
            f"{INTERVAL} * {_t('stuck_interval_factor')}\n"
            "or\n"
            f"{across('max', sel('clevertap_export_in_flight'))} * 0 "
            f"+ {_t('stuck_one_time_seconds')}",
        ),
        # A declared export that never completed counts from when it was first declared.
        _record(
            "clevertap_export:time_since_last_completion_seconds",
            "time() - (\n"
            f"  {LAST_COMPLETED}\n"
            "  or\n"
            f"  {across('max', sel('clevertap_export_declared_timestamp_seconds'))}\n"
            ")",
        ),
        _record(
            "clevertap_export:in_flight_oldest_start_timestamp_seconds",
            across("min", f"\n  {sel('clevertap_export_in_flight_oldest_start_timestamp_seconds')}"
                          f"\n  and {FRESHEST}\n"),
        ),
        _record("clevertap_export:in_flight_age_seconds",
                "time() - clevertap_export:in_flight_oldest_start_timestamp_seconds"),
        _record(
            "clevertap_export:last_duration_seconds",
            across("max", f"\n  {sel('clevertap_export_last_duration_seconds')}"
                          f"\n  and {FRESHEST}\n"),
        ),
        # Per exporter: the newest receipt any replica knows; only when none knows one (all
        # restarted without it), the newest replica start, so a restart hides no silence.
        _record(
            "clevertap_export:webhook_last_received_timestamp_seconds",
            across("max", f"{sel('clevertap_export_webhook_last_received_timestamp_seconds')}"
                          " > 0")
            + "\nor\n"
            + across("max", f"\n  {sel('process_start_time_seconds')}\n  and on ({_TARGET}) "
                            f"{sel('clevertap_export_exporter_build_info')}\n"),
        ),
        _record(
            "clevertap_export:webhook_silence_threshold_seconds",
            across("max", sel("clevertap_export_expected_interval_seconds"), *EXPORT_LABELS,
                   "source")
            + f"\n+ {number(t['webhooks_missing_margin_seconds'])}",
        ),
        *_usual_rules(),
        *_landing_rules(),
    ]


def _landing_rules() -> list[dict[str, Any]]:
    """The last landing check of each export, as the replicas that applied it show it: a
    replica a moment behind still shows the check before, which must not raise or end an
    alert. Exposed values only, the usual size included: no long range query."""
    checked = sel("clevertap_export_landing_last_check_timestamp_seconds")
    return [
        _record(LANDING_CHECKED, across("max", checked)),
        _record(LANDING_FRESHEST, f"{checked}\n== {ignoring_replicas()}\n{LANDING_CHECKED}"),
        _record(LANDING_OUTCOME, across("max", (
            f"{sel('clevertap_export_landing_last_outcome')} == 1\n"
            f"and ignoring (outcome)\n{LANDING_FRESHEST}"))),
        _record(LANDING_FAILED, across("max", (
            f"{sel('clevertap_export_landing_failed_checks')}\nand\n{LANDING_FRESHEST}"))),
        _record(LANDING_USUAL, across("max", sel("clevertap_export_landing_usual_bytes"))),
    ]


def _usual_rules() -> list[dict[str, Any]]:
    """The usual duration the exporter learned, and the bounds the alerts compare runs with:
    exposed values, so no rule needs a long range query. Absent while the history is short."""
    return [
        _record(USUAL_MEDIAN,
                across("max", sel("clevertap_export_usual_duration_median_seconds"))),
        _record(USUAL_HIGH, across("max", sel("clevertap_export_usual_duration_high_seconds"))),
        _record(
            SLOW,
            f"{USUAL_HIGH}\n"
            "* (\n"
            f"  {across('max', sel('clevertap_export_usual_slow_factor'))}\n"
            "  or\n"
            f"  {USUAL_HIGH} * 0 + {_t('usual_slow_factor')}\n"
            ")",
        ),
        _record(
            FAST,
            f"{USUAL_MEDIAN}\n"
            "* (\n"
            f"  {across('max', sel('clevertap_export_usual_fast_fraction'))}\n"
            "  or\n"
            f"  {USUAL_MEDIAN} * 0 + {_t('usual_fast_fraction')}\n"
            ")",
        ),
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


def _counted(op: str, metric: str, window: float, *matchers: str) -> str:
    """Increase of a counter over ``window``, per replica (resets) and then across replicas."""
    increase = f"\n  increase({sel(metric, *matchers)}[{duration(window)}])\n"
    return f"round({across(op, increase)})"


_OVERDUE = ("clevertap_export:time_since_last_completion_seconds\n"
            "> clevertap_export:overdue_threshold_seconds\n")


def _export_alerts() -> list[dict[str, Any]]:
    """One alert per export: every input is aggregated across replicas."""
    t = THRESHOLDS
    return [
        _alert(
            "ClevertapExportOverdue",
            f"{_OVERDUE}unless\n{LEARNED}\n",
            "A recurring CleverTap export has not completed within its expected interval.",
            f"{_WHICH} has not completed for {{{{ $value | humanizeDuration }}}} (since its "
            "last completion or, if it never completed, since it was declared), longer than "
            f"its expected interval times {number(t['overdue_tolerance'])} plus its grace period "
            f"(default {human(t['overdue_grace_seconds'])}).",
        ),
        _alert(
            "ClevertapExportOverdueOnLearnedSchedule",
            f"{_OVERDUE}and\n{LEARNED}\n",
            "A CleverTap export has not completed within the interval learned from its runs.",
            f"{_WHICH} has not completed for {{{{ $value | humanizeDuration }}}}, longer than "
            "the interval the exporter learned from its past runs times "
            f"{number(t['overdue_tolerance'])} plus its grace period (default "
            f"{human(t['overdue_grace_seconds'])}). Its Frequency gives no schedule; declare "
            "its interval in --config.file to page on it instead.",
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
            f"  {LAST_FAILED}\n"
            f"  > {LAST_COMPLETED}\n"
            "  or\n"
            f"  {LAST_FAILED}\n"
            f"  unless {LAST_COMPLETED}\n"
            ")\n"
            "and\n"
            f"time() - {LAST_FAILED}\n"
            f"< {_t('failed_alert_window_seconds')}\n",
            "A CleverTap export reported a failure.",
            f"{_WHICH} reported a failed status at {{{{ $value | humanizeTimestamp }}}} and has "
            "not completed since.",
        ),
        _alert(
            "ClevertapExportAbandoned",
            _counted(STATE_COUNTERS, "clevertap_export_abandoned_total",
                     t["abandoned_window_seconds"]) + " > 0\n",
            "CleverTap exports were abandoned without a completion.",
            f"{_WHICH} had {{{{ $value | humanize }}}} in-flight run(s) dropped in the last "
            f"{human(t['abandoned_window_seconds'])} because no completion arrived within "
            "the exporter's --in-flight-timeout.",
        ),
        _alert(
            "ClevertapExportTimeZoneMismatch",
            f"{across('max', sel('clevertap_export_last_delivery_delay_seconds'))}\n"
            f"> {_t('delivery_delay_max_seconds')}\n"
            "or\n"
            f"{across('min', sel('clevertap_export_last_delivery_delay_seconds'))}\n"
            f"< -{_t('delivery_delay_max_seconds')}\n",
            "Webhook event times disagree with the receipt time: the time zone looks wrong.",
            "The last webhook of account {{ $labels.account }} arrived "
            "{{ $value | humanizeDuration }} after its event time (beyond "
            f"+-{human(t['delivery_delay_max_seconds'])}; negative means before it): the "
            "exporter's --timezone probably differs from the CleverTap account's time zone.",
        ),
        _alert(
            "ClevertapExportTooFast",
            "(\n"
            "  clevertap_export:last_duration_seconds\n"
            f"  < {across('min', sel('clevertap_export_min_runtime_seconds'))}\n"
            ")\n"
            "and\n"
            "(\n"
            f"  time() - {LAST_COMPLETED}\n"
            f"  < {_t('too_fast_window_seconds')}\n"
            ")\n",
            "A CleverTap export completed suspiciously fast.",
            f"{_WHICH} completed its last run in {{{{ $value | humanizeDuration }}}}, less than "
            "its declared min_runtime; it probably exported nothing.",
        ),
        *_usual_alerts(),
        *_landing_alerts(),
    ]


def _last_landing(outcome: str) -> str:
    """The export whose last check ended with ``outcome``, while that check is recent."""
    return (f'max without (outcome) (\n  {LANDING_OUTCOME}{{outcome="{outcome}"}}\n)\n'
            f"and\n(\n  time() - {LANDING_CHECKED}\n"
            f"  < {_t('landing_alert_window_seconds')}\n)\n")


def _landing_alerts() -> list[dict[str, Any]]:
    """What the landing checks found (docs/landing.md). Only an export whose own history
    shows it lands files pages when it landed nothing; docs/runbook.md says why."""
    t = THRESHOLDS
    return [
        _alert(
            "ClevertapExportLandedNothing",
            f"(\n{_last_landing('empty')})\nand\n{LANDING_USUAL} > 0\n",
            "A CleverTap export completed and its destination holds none of its files.",
            f"{_WHICH} reported Completed, but the listing of its destination found none of "
            "the run's objects, after retries, although its last checked runs usually land "
            "files.",
        ),
        _alert(
            "ClevertapExportLandedNothingNew",
            f"(\n{_last_landing('empty')})\nunless\n{LANDING_USUAL} > 0\n",
            "A CleverTap export without a landing history completed and landed nothing.",
            f"{_WHICH} reported Completed, but the listing of its destination found none of "
            "the run's objects, after retries. It has no usual size yet (fewer than "
            f"{number(t['usual_min_runs'])} checked runs, or most landed nothing): check the "
            "destination's prefix and folder template before trusting this export.",
        ),
        _alert(
            "ClevertapExportLandedLessThanUsual",
            _last_landing("smaller_than_usual"),
            "A CleverTap export landed far fewer bytes than usual.",
            f"{_WHICH} landed less than {number(t['landing_small_fraction'])} of the median "
            "bytes of its last checked runs (default; learn: landing_small_fraction in "
            "--config.file): a filter, a prefix or a lifecycle rule may have changed.",
        ),
        _alert(
            "ClevertapExportLandingChecksFailing",
            f"{LANDING_FAILED}\n>= {_t('landing_failing_checks')}\n",
            "The exporter cannot list a CleverTap export's destination.",
            f"{_WHICH}: its last {{{{ $value }}}} landing checks could not list its "
            "destination (permission, not_found or error, after retries); whether its files "
            "land is unknown until a listing works.",
        ),
    ]


def _recent(expr: str) -> str:
    """``expr`` while the last completion is within the usual-duration alerts' window."""
    return (f"(\n  {expr}\n)\nand\n(\n  time() - {LAST_COMPLETED}\n"
            f"  < {_t('usual_alert_window_seconds')}\n)\n")


def _usual_alerts() -> list[dict[str, Any]]:
    """Runs against the export's own usual duration; quiet until its history is long enough."""
    t = THRESHOLDS
    usual = (f"its usual high quantile times {number(t['usual_slow_factor'])} (default; "
             "learn: usual_slow_factor in --config.file)")
    return [
        _alert(
            "ClevertapExportRunLongerThanUsual",
            f"clevertap_export:in_flight_age_seconds\n> {SLOW}\n",
            "A CleverTap export run has been in flight far longer than usual.",
            f"{_WHICH} started {{{{ $value | humanizeDuration }}}} ago and has not completed; "
            f"that is longer than {usual}, learned from its last runs.",
        ),
        _alert(
            "ClevertapExportLastRunLongerThanUsual",
            _recent(f"clevertap_export:last_duration_seconds\n  > {SLOW}"),
            "A CleverTap export's last run took far longer than usual.",
            f"{_WHICH} completed its last run in {{{{ $value | humanizeDuration }}}}, longer "
            f"than {usual}.",
        ),
        _alert(
            "ClevertapExportLastRunShorterThanUsual",
            _recent(f"clevertap_export:last_duration_seconds\n  < {FAST}"),
            "A CleverTap export's last run was far shorter than usual.",
            f"{_WHICH} completed its last run in {{{{ $value | humanizeDuration }}}}, less than "
            f"{number(t['usual_fast_fraction'])} of its usual median (default; learn: "
            "usual_fast_fraction in --config.file): it may have exported little or nothing.",
        ),
    ]


def _exporter_alerts() -> list[dict[str, Any]]:
    """One alert per exporter (the selector's labels), whichever replica saw the problem."""
    t = THRESHOLDS
    return [
        _alert(
            "ClevertapExportWebhooksMissing",
            "time() - clevertap_export:webhook_last_received_timestamp_seconds\n"
            "> clevertap_export:webhook_silence_threshold_seconds\n",
            "The exporter has received no CleverTap webhook for too long.",
            "No replica of job {{ $labels.job }} has accepted a webhook for "
            "{{ $value | humanizeDuration }}, longer than the longest known export schedule plus "
            f"{human(t['webhooks_missing_margin_seconds'])}, although recurring exports are known.",
        ),
        _alert(
            "ClevertapExportWebhooksRejected",
            # A request is answered by one replica: the request counter is summed.
            _counted("sum", "clevertap_export_webhook_requests_total",
                     t["rejected_window_seconds"],
                     'outcome=~"unauthorized|invalid|too_large|unavailable"')
            + f" > {_t('rejected_max_count')}\n",
            "The exporter is rejecting webhooks.",
            "Job {{ $labels.job }} rejected {{ $value | humanize }} webhook(s) as "
            f"{{{{ $labels.outcome }}}} in the last {human(t['rejected_window_seconds'])}.",
        ),
        _alert(
            "ClevertapExportLabelOverflow",
            _counted(STATE_COUNTERS, "clevertap_export_label_overflow_total",
                     t["overflow_window_seconds"]) + " > 0\n",
            "Label values are being folded into \"other\".",
            "Job {{ $labels.job }} folded {{ $value | humanize }} value(s) of label "
            "{{ $labels.label }} into \"other\" in the last "
            f"{human(t['overflow_window_seconds'])}: the --max-label-values cap is reached.",
        ),
        _alert(
            "ClevertapExportEventTimeUnparsed",
            _counted(STATE_COUNTERS, "clevertap_export_event_time_unparsed_total",
                     t["unparsed_window_seconds"]) + " > 0\n",
            "Webhooks arrive without a usable \"Date and Time\".",
            "Job {{ $labels.job }} used the receipt time for {{ $value | humanize }} "
            "webhook(s) whose event time was {{ $labels.reason }} in the last "
            f"{human(t['unparsed_window_seconds'])}.",
        ),
        _alert(
            "ClevertapExporterAbsent",
            f"absent({sel('up')})\n",
            "The CleverTap export exporter is not scraped at all.",
            f"Prometheus has had no scrape target matching {{{SELECTOR}}} for "
            f"{human(t['exporter_absent_for_seconds'])}.",
            for_seconds=t["exporter_absent_for_seconds"],
        ),
    ]


def _replica_alerts() -> list[dict[str, Any]]:
    """About one replica itself: per instance. Per-export alerts do not depend on it (the other
    replicas still expose every export), and several replicas down group into one notification."""
    t = THRESHOLDS
    return [
        _alert(
            "ClevertapExporterDown",
            f"{sel('up')} == 0\n",
            "The CleverTap export exporter is down.",
            "Prometheus has failed to scrape {{ $labels.instance }} of job {{ $labels.job }} "
            f"for {human(t['exporter_down_for_seconds'])}; if no other replica is up, export "
            "alerts cannot be trusted.",
            for_seconds=t["exporter_down_for_seconds"],
        ),
        _alert(
            "ClevertapExportReplicaBehind",
            f"{sel('clevertap_export_state_behind_seconds')} > {_t('replica_behind_seconds')}\n",
            "A replica of the exporter is behind the shared state.",
            "Exporter {{ $labels.instance }} has not held every committed state change for "
            "{{ $value | humanizeDuration }}: it cannot reach the state database, or cannot "
            "apply what the other replicas wrote. It refuses webhooks meanwhile (the others "
            "answer them); see clevertap_export_state_behind_changes.",
        ),
        _alert(
            "ClevertapExportConfigReloadFailed",
            f"{sel('clevertap_export_config_last_reload_successful')} == 0\n",
            "The exporter could not reload its configuration file.",
            "Exporter {{ $labels.instance }} failed to reload its --config.file; it still runs "
            "with the previous configuration, so recent changes to declared exports and "
            "thresholds are not in force.",
            for_seconds=t["config_reload_failed_for_seconds"],
        ),
    ]


def alerting_rules() -> list[dict[str, Any]]:
    rules = {r["alert"]: r for r in (*_export_alerts(), *_exporter_alerts(), *_replica_alerts())}
    return [rules[name] for name in SEVERITIES]  # in the order of config.SEVERITIES


def rules_file() -> dict[str, Any]:
    return {"groups": [{"name": "clevertap-export.rules", "rules": recording_rules()}]}


def alerts_file() -> dict[str, Any]:
    return {"groups": [{"name": "clevertap-export.alerts", "rules": alerting_rules()}]}
