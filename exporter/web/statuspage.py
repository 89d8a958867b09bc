"""The status page at ``/``: one self-contained HTML document (inline CSS, no scripts, no
external assets, so it works offline) that refreshes itself."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import tzinfo
from html import escape
from typing import Final

from exporter.domain.normalize import is_known, nearest_known
from exporter.domain.status import (
    STATES,
    ExportStatus,
    summary,
)
from exporter.domain.timefmt import ago, human_duration, local_time
from exporter.web.events import WebhookRecord

DEFAULT_REFRESH_SECONDS: Final = 15
#: Where the "docs" link points: the project's documentation.
DOCS_URL: Final = "https://pypi.org/project/clevertap-export-exporter/"

_CSS: Final = """
:root { --ok:#1a7f37; --run:#0969da; --late:#cf222e; --stuck:#8250df; --never:#6e7781;
        --warn:#bf8700; --bg:#f6f8fa; --fg:#1f2328; --line:#d0d7de; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
       color: var(--fg); background: #fff; }
header { padding: 14px 24px; background: var(--bg); border-bottom: 1px solid var(--line);
         display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 18px; margin: 0; }
header nav a { margin-right: 14px; }
main { padding: 8px 24px 32px; }
h2 { font-size: 16px; margin: 22px 0 8px; }
.meta { color: #57606a; }
.chips { display: flex; gap: 8px; flex-wrap: wrap; margin: 12px 0 4px; }
.chip { border: 1px solid var(--line); border-radius: 12px; padding: 2px 10px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line);
         vertical-align: top; }
th { background: var(--bg); font-weight: 600; white-space: nowrap; }
td.num { white-space: nowrap; }
small { color: #57606a; }
.state { display: inline-block; min-width: 74px; text-align: center; border-radius: 10px;
         padding: 1px 8px; color: #fff; font-weight: 600; white-space: nowrap; }
.s-ok { background: var(--ok); } .s-running { background: var(--run); }
.s-late, .s-failed { background: var(--late); } .s-stuck { background: var(--stuck); }
.s-never-seen { background: var(--never); } .s-too-fast { background: var(--warn); }
.o-accepted { color: var(--ok); } .o-duplicate, .o-test { color: var(--run); }
.o-invalid, .o-unauthorized, .o-too_large, .o-unavailable, .o-error { color: var(--late); }
.l-landed { color: var(--ok); } .l-smaller_than_usual { color: var(--warn); }
.l-empty, .l-cannot_list_permission, .l-not_found, .l-error { color: var(--late); }
code { font-size: 12px; }
.unknown { color: var(--warn); font-weight: 600; cursor: help; }
.empty { color: #57606a; padding: 12px 8px; }
"""


def render(*, statuses: Sequence[ExportStatus], events: Iterable[WebhookRecord], now: float,
           zone: tzinfo, version: str, refresh: int, config_note: str | None) -> str:
    """The whole page."""
    zone_name = str(zone)
    counts = summary(list(statuses))
    chips = "".join(
        f'<span class="chip"><span class="state {_cls(state)}">{escape(state)}</span> '
        f"{counts[state]}</span>"
        for state in STATES if counts[state]
    )
    refresh_tag = (f'<meta http-equiv="refresh" content="{refresh}">' if refresh > 0 else "")
    note = f'<p class="meta">{escape(config_note)}</p>' if config_note else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{refresh_tag}
<title>CleverTap exports: status</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>clevertap-export-exporter</h1>
<span class="meta">version {escape(version)}</span>
<nav><a href="/metrics">/metrics</a><a href="/api/v1/exports">/api/v1/exports</a>\
<a href="/api/v1/events">/api/v1/events</a><a href="{DOCS_URL}">docs</a></nav>
</header>
<main>
<p class="meta">Generated {escape(local_time(now, zone))} (time zone {escape(zone_name)})\
{f", refreshes every {refresh} s" if refresh > 0 else ""}.</p>
{note}
<h2>Exports</h2>
<div class="chips" id="summary">{chips}</div>
{_exports_table(statuses, now, zone)}
<h2>Last webhooks</h2>
{_events_table(events, now, zone)}
</main>
</body>
</html>
"""


def _cls(state: str) -> str:
    return "s-" + state.replace(" ", "-")


def _when(ts: float | None, now: float, zone: tzinfo) -> str:
    if ts is None:
        return "&mdash;"
    return f"{escape(local_time(ts, zone))}<br><small>{escape(ago(now - ts))}</small>"


def _dur(seconds: float | None) -> str:
    return "&mdash;" if seconds is None else escape(human_duration(seconds))


def _exports_table(statuses: Sequence[ExportStatus], now: float, zone: tzinfo) -> str:
    if not statuses:
        return ('<p class="empty" id="exports-empty">No exports yet: post a webhook or declare '
                "exports in the configuration file.</p>")
    rows = []
    for s in statuses:
        name = escape(s.name) if s.name else "&mdash;"
        rows.append(
            f'<tr data-state="{escape(s.state)}">'
            f'<td><span class="state {_cls(s.state)}">{escape(s.state)}</span></td>'
            f"<td>{name}</td><td>{escape(s.account)}</td><td>{_label('partner', s.partner)}</td>"
            f"<td>{_label('export_type', s.export_type)}</td>"
            f"<td>{_label('frequency', s.frequency)}</td>"
            f'<td class="num">{_when(s.last_completed, now, zone)}</td>'
            f'<td class="num">{_dur(s.expected_interval)}</td>'
            f'<td class="num">{_dur(s.last_duration)}</td>'
            f'<td class="num">{_when(s.in_flight_since, now, zone)}</td>'
            f"<td>{_landing(s, now)}</td>"
            f"<td>{escape(s.reason)}</td></tr>"
        )
    return ('<table id="exports"><thead><tr><th>State</th><th>Name</th><th>Account</th>'
            "<th>Partner</th><th>Type</th><th>Frequency</th><th>Last completion</th>"
            "<th>Expected interval</th><th>Last duration</th><th>In flight since</th>"
            "<th>Landed</th><th>Detail</th></tr></thead><tbody>" + "".join(rows)
            + "</tbody></table>")


def _landing(s: ExportStatus, now: float) -> str:
    """The last landing check: its outcome, what it found, when, and the prefix it listed,
    as escaped text (a name from a bucket is never made a link)."""
    landing = s.landing
    if landing is None:
        return "&mdash;"
    found = f"{landing.objects} object(s), {_size(landing.bytes)}"
    if landing.truncated:
        found = "at least " + found
    return (f'<span class="l-{escape(landing.outcome)}" data-landing="'
            f'{escape(landing.outcome)}"><b>{escape(landing.outcome)}</b></span> '
            f"{escape(found)}<br><small>checked {escape(ago(now - landing.checked))}; listed "
            f"<code>{escape(s.landing_listed)}</code></small>")


def _size(n: int) -> str:
    size, unit = float(n), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"


def _label(label: str, value: str) -> str:
    """A label value, marked when it is not one CleverTap is known to send."""
    if is_known(label, value):
        return escape(value)
    near = nearest_known(label, value)
    hint = f"; did you mean {near}?" if near else ""
    never = " An unknown frequency is never overdue." if label == "frequency" else ""
    title = f"not a {label} value CleverTap is known to send{hint}.{never}"
    return (f'{escape(value)} <span class="unknown" data-unknown="{label}" '
            f'title="{escape(title)}">(unknown{escape(hint)})</span>')


def _events_table(events: Iterable[WebhookRecord], now: float, zone: tzinfo) -> str:
    rows = []
    for e in events:
        detail = (escape(f"{e.partner} / {e.export_type} / {e.frequency}: {e.status}")
                  if e.status else escape(e.message or ""))
        rows.append(
            f'<tr data-outcome="{escape(e.outcome)}">'
            f'<td class="num">{_when(e.received, now, zone)}</td>'
            f'<td class="o-{escape(e.outcome)}"><b>{escape(e.outcome)}</b></td>'
            f"<td>{e.http_status}</td><td>{escape(e.account)}</td>"
            f"<td><code>{escape(e.export_id or '')}</code></td><td>{detail}</td>"
            f'<td class="num">{_when(e.event_time, now, zone)}</td></tr>'
        )
    if not rows:
        return '<p class="empty" id="events-empty">No webhook received since start-up.</p>'
    return ('<table id="events"><thead><tr><th>Received</th><th>Outcome</th><th>HTTP</th>'
            "<th>Account</th><th>Export id</th><th>Event</th><th>Event time</th></tr></thead>"
            "<tbody>" + "".join(rows) + "</tbody></table>")
