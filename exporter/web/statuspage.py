"""The status page at ``/``: one self-contained HTML document (inline CSS, no scripts, no
external assets, so it works offline) that refreshes itself.

The exports table is built from ``EXPORT_COLUMNS``, one entry per column (a header and how to
render a cell), so a column is added in one place. It fits 1,280 pixels without scrolling
sideways (long label values and times wrap), and on a window of 760 pixels or less each row
becomes a card whose cells are labelled by their header (``data-label``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import tzinfo
from html import escape
from typing import Final

from exporter.domain.normalize import is_known, nearest_known
from exporter.domain.status import (
    STATES,
    ClockProblem,
    ExportStatus,
    summary,
)
from exporter.domain.timefmt import ago, human_duration, local_time
from exporter.web.events import WebhookRecord

DEFAULT_REFRESH_SECONDS: Final = 15
#: The header's links: each a route of this exporter, so each resolves wherever it runs.
LINKS: Final = (("/metrics", "/metrics"), ("/api/v1/exports", "/api/v1/exports"),
                ("/api/v1/events", "/api/v1/events"), ("/openapi.json", "API description"))

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
th, td { text-align: left; padding: 6px 6px; border-bottom: 1px solid var(--line);
         vertical-align: top; }
th { background: var(--bg); font-weight: 600; }
td.num { min-width: 6.5em; }
.banner { border: 1px solid var(--warn); background: #fff8c5; border-radius: 6px;
          padding: 8px 12px; margin: 12px 0; }
.clock { color: var(--warn); font-weight: 600; }
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
@media (max-width: 760px) {
  header, main { padding-left: 12px; padding-right: 12px; }
  table, tbody, tr, td { display: block; width: 100%; }
  thead { display: none; }
  tr { border: 1px solid var(--line); border-radius: 6px; margin: 0 0 10px; padding: 4px 0; }
  td { border: 0; padding: 3px 10px; }
  td[data-label]::before { content: attr(data-label) ": "; color: #57606a; }
}
"""


def render(*, statuses: Sequence[ExportStatus], events: Iterable[WebhookRecord], now: float,
           zone: tzinfo, version: str, refresh: int, config_note: str | None,
           clock: Sequence[ClockProblem] = ()) -> str:
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
    banners = "".join(f'<p class="banner" data-account="{escape(p.account)}">'
                      f"{escape(p.describe(zone_name))}</p>" for p in clock)
    nav = "".join(f'<a href="{href}">{escape(text)}</a>' for href, text in LINKS)
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
<nav>{nav}</nav>
</header>
<main>
<p class="meta">Generated {escape(local_time(now, zone))} (time zone {escape(zone_name)})\
{f", refreshes every {refresh} s" if refresh > 0 else ""}.</p>
{note}
<div id="clock">{banners}</div>
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


Cell = Callable[[ExportStatus, float, tzinfo], str]
#: The exports table, column by column: the header, the cells' class, and a cell's HTML.
EXPORT_COLUMNS: Final[tuple[tuple[str, str, Cell], ...]] = (
    ("State", "", lambda s, now, zone: f'<span class="state {_cls(s.state)}">'
                                       f"{escape(s.state)}</span>"),
    ("Name", "", lambda s, now, zone: escape(s.name) if s.name else "&mdash;"),
    ("Account", "", lambda s, now, zone: escape(s.account)),
    ("Partner", "", lambda s, now, zone: _label("partner", s.partner)),
    ("Type", "", lambda s, now, zone: _label("export_type", s.export_type)),
    ("Frequency", "", lambda s, now, zone: _label("frequency", s.frequency)),
    ("Last completion", "num", lambda s, now, zone: _when(s.last_completed, now, zone)),
    ("Expected interval", "num", lambda s, now, zone: _interval(s)),
    ("Last duration", "num", lambda s, now, zone: _dur(s.last_duration)),
    ("In flight since", "num", lambda s, now, zone: _when(s.in_flight_since, now, zone)),
    ("Landed", "", lambda s, now, zone: _landing(s, now)),
    ("Detail", "", lambda s, now, zone: _detail(s)),
)


def _exports_table(statuses: Sequence[ExportStatus], now: float, zone: tzinfo) -> str:
    if not statuses:
        return ('<p class="empty" id="exports-empty">No exports yet: post a webhook or declare '
                "exports in the configuration file.</p>")
    rows = []
    for s in statuses:
        cells = "".join(f'<td data-label="{header}" class="{css}">{cell(s, now, zone)}</td>'
                        for header, css, cell in EXPORT_COLUMNS)
        rows.append(f'<tr data-state="{escape(s.state)}">{cells}</tr>')
    head = "".join(f"<th>{header}</th>" for header, _, _ in EXPORT_COLUMNS)
    return (f'<table id="exports"><thead><tr>{head}</tr></thead><tbody>' + "".join(rows)
            + "</tbody></table>")


def _interval(s: ExportStatus) -> str:
    """The interval with where it comes from: ``learned, every 6h (from 7 runs)``."""
    return escape(s.schedule) if s.schedule else _dur(s.expected_interval)


def _detail(s: ExportStatus) -> str:
    clock = f'<br><span class="clock">{escape(s.clock)}</span>' if s.clock else ""
    return escape(s.reason) + clock


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
        return _breakable(value)
    near = nearest_known(label, value)
    hint = f"; did you mean {near}?" if near else ""
    never = " An unknown frequency is never overdue." if label == "frequency" else ""
    title = f"not a {label} value CleverTap is known to send{hint}.{never}"
    return (f'{_breakable(value)} <span class="unknown" data-unknown="{label}" '
            f'title="{escape(title)}">(unknown{escape(hint)})</span>')


def _breakable(value: str) -> str:
    """``google_cloud_storage`` may wrap after each underscore, and nowhere else."""
    return escape(value).replace("_", "_<wbr>")


def _events_table(events: Iterable[WebhookRecord], now: float, zone: tzinfo) -> str:
    rows = []
    for e in events:
        detail = (escape(f"{e.partner} / {e.export_type} / {e.frequency}: {e.status}")
                  if e.status else escape(e.message or ""))
        rows.append(
            f'<tr data-outcome="{escape(e.outcome)}">'
            f'<td data-label="Received" class="num">{_when(e.received, now, zone)}</td>'
            f'<td data-label="Outcome" class="o-{escape(e.outcome)}"><b>{escape(e.outcome)}</b>'
            f'</td><td data-label="HTTP">{e.http_status}</td>'
            f'<td data-label="Account">{escape(e.account)}</td>'
            f"<td data-label=\"Export id\"><code>{escape(e.export_id or '')}</code></td>"
            f'<td data-label="Event">{detail}</td>'
            f'<td data-label="Event time" class="num">{_when(e.event_time, now, zone)}</td></tr>'
        )
    if not rows:
        return '<p class="empty" id="events-empty">No webhook received since start-up.</p>'
    return ('<table id="events"><thead><tr><th>Received</th><th>Outcome</th><th>HTTP</th>'
            "<th>Account</th><th>Export id</th><th>Event</th><th>Event time</th></tr></thead>"
            "<tbody>" + "".join(rows) + "</tbody></table>")
