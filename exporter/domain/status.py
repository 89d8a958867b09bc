"""The state of each export, for people: shared by the status page and the JSON API.

The rules mirror the shipped alert rules, so the page and Alertmanager agree:

- **never seen**: declared in the configuration, no webhook yet (``overdue`` tells whether it
  has been declared for longer than its overdue threshold);
- **stuck**: in flight for longer than its ``max_runtime``, else its expected interval, else
  the rules' fixed bound for one-time exports;
- **late**: a recurring export whose last completion is older than
  ``interval * overdue_tolerance + grace`` (``exporter/domain/thresholds.py``);
- **failed**: the newest finish is a Failed status;
- **too fast**: the last run completed in less than its declared ``min_runtime``;
- **running**: in flight, within its bounds;
- **ok**: none of the above.

An account whose last webhook's event time is further from its receipt than the time-zone
alert allows (``delivery_delay_max_seconds``) gets a ``clock`` note on each of its rows, and
``clock_problems`` says why for the page's banner: a time zone's offset (a multiple of
``ZONE_STEP_SECONDS``) means ``--timezone`` differs from the account's, and every "late",
"stuck" or "in flight since" of the account is off by as much; a time in the future means the
same the other way round.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import tzinfo
from typing import Any, Final

from exporter.domain import normalize
from exporter.domain.declared import DeclaredConfig, DeclaredExport
from exporter.domain.keys import SeriesKey
from exporter.domain.model import Landed, Series
from exporter.domain.thresholds import THRESHOLDS
from exporter.domain.timefmt import ago, human_duration, iso_time
from exporter.domain.tracker import ExportTracker

NEVER_SEEN: Final = "never seen"
STUCK: Final = "stuck"
LATE: Final = "late"
FAILED: Final = "failed"
TOO_FAST: Final = "too fast"
RUNNING: Final = "running"
OK: Final = "ok"
#: Worst first: the order of the summary and of the table.
STATES: Final = (NEVER_SEEN, STUCK, LATE, FAILED, TOO_FAST, RUNNING, OK)
#: Every time zone's offset is a multiple of this; a delay within ZONE_SLACK_SECONDS of one
#: (CleverTap delivers within seconds) is read as a wrong --timezone.
ZONE_STEP_SECONDS: Final = 15 * 60
ZONE_SLACK_SECONDS: Final = 2 * 60


@dataclass(frozen=True, slots=True)
class ClockProblem:
    """An account whose event times disagree with their receipt: ``offset`` is the time zone
    offset the delay looks like (None: a late delivery, not a zone)."""

    account: str
    delay: float  # receipt minus event time; negative: the event time is in the future
    offset: float | None

    @property
    def note(self) -> str:
        """The per-row mark: ``times look 5h off``."""
        if self.offset is not None:
            return f"event times look {human_duration(self.offset)} off (time zone?)"
        if self.delay < 0:
            return f"event times are {human_duration(self.delay)} in the future"
        return f"last webhook delivered {human_duration(self.delay)} late"

    def describe(self, zone: str) -> str:
        """The banner's sentence, naming the exporter's ``--timezone``."""
        # A zone's offset as such: the delay adds the seconds the delivery took.
        shown = human_duration(self.delay if self.offset is None else self.offset)
        side = (f"{shown} in the future (before their receipt)" if self.delay < 0
                else f"{shown} behind their receipt")
        text = f"Account {self.account}: webhook event times are {side}"
        if self.offset is None:
            return (f"{text}: a delayed delivery, or a wrong --timezone ({zone}); its late and "
                    "stuck rows may be wrong.")
        return (f"{text}, the offset of a time zone: the exporter's --timezone ({zone}) "
                "probably differs from the CleverTap account's, so its \"late\", \"stuck\" and "
                "\"in flight since\" below are off by as much.")


def clock_problems(delays: dict[str, float]) -> list[ClockProblem]:
    """The accounts whose last delivery delay would fire the time-zone alert, by account."""
    limit = THRESHOLDS["delivery_delay_max_seconds"]
    out = []
    for account, delay in sorted(delays.items()):
        if abs(delay) <= limit:
            continue
        steps = round(delay / ZONE_STEP_SECONDS)
        offset = (abs(steps) * ZONE_STEP_SECONDS
                  if abs(delay - steps * ZONE_STEP_SECONDS) <= ZONE_SLACK_SECONDS else None)
        out.append(ClockProblem(account, delay, offset))
    return out


@dataclass(frozen=True, slots=True)
class ExportStatus:
    account: str
    partner: str
    export_type: str
    frequency: str
    name: str
    declared: bool
    state: str
    reason: str
    overdue: bool
    expected_interval: float | None
    #: Where the interval comes from: ``learned, every 6h (from 7 runs)``; empty without one.
    schedule: str
    last_initiated: float | None
    last_completed: float | None
    last_failed: float | None
    last_duration: float | None
    in_flight: int
    in_flight_since: float | None
    due_by: float | None
    grace: float
    max_runtime: float
    min_runtime: float | None
    #: Why the account's times look wrong (``ClockProblem.note``); empty when they do not.
    clock: str
    #: The last landing check of an export with a destination, and where it listed (the
    #: store URL of the prefix: text for people, never a link).
    landing: Landed | None = None
    landing_listed: str = ""

    def to_json(self, zone: tzinfo, now: float) -> dict[str, Any]:
        out = asdict(self)
        landing = out.pop("landing")
        out["landing"] = None if landing is None else {
            **Landed(*landing)._asdict(), "checked_time": iso_time(landing[2], zone)}
        for name in ("last_initiated", "last_completed", "last_failed", "in_flight_since",
                     "due_by"):
            value = out.pop(name)
            out[f"{name}_timestamp"] = value
            out[f"{name}_time"] = iso_time(value, zone)
        out["last_completed_ago_seconds"] = (
            None if self.last_completed is None else round(now - self.last_completed, 3)
        )
        return out


def compute(tracker: ExportTracker, config: DeclaredConfig, now: float) -> list[ExportStatus]:
    """The status of every known or declared export, worst state first."""
    running: dict[SeriesKey, tuple[int, float]] = {}
    for run in tracker.in_flight.values():
        if run.started is None:
            continue
        count, first = running.get(run.series, (0, run.started))
        running[run.series] = (count + 1, min(first, run.started))
    keys = list(config.exports) + [k for k in tracker.series if k not in config.exports]
    clock = {p.account: p.note for p in clock_problems(tracker.delivery_delay)}
    out = [
        _status(key, tracker.series.get(key), config.exports.get(key),
                tracker.declared_since.get(key), running.get(key), now, clock.get(key[0], ""))
        for key in keys
    ]
    rank = {state: i for i, state in enumerate(STATES)}
    out.sort(key=lambda s: (rank[s.state], s.account, s.partner, s.export_type, s.frequency))
    return out


def _limits(interval: float | None,
            declared: DeclaredExport | None) -> tuple[float, float, float | None]:
    """Grace, max and min runtime: the declared ones, else the alert rules' defaults (read at
    each call, so the page follows ``THRESHOLDS``)."""
    grace = THRESHOLDS["overdue_grace_seconds"]
    max_runtime = (interval * THRESHOLDS["stuck_interval_factor"] if interval is not None
                   else THRESHOLDS["stuck_one_time_seconds"])
    if declared is None:
        return grace, max_runtime, None
    return (declared.grace if declared.grace is not None else grace,
            declared.max_runtime if declared.max_runtime is not None else max_runtime,
            declared.min_runtime)


def _status(key: SeriesKey, series: Series | None, declared: DeclaredExport | None,
            declared_since: float | None, running: tuple[int, float] | None,
            now: float, clock: str) -> ExportStatus:
    account, partner, export_type, frequency = key
    s = series or Series()
    # The interval the alert rules use: declared, CleverTap's Frequency, or learned.
    interval = s.expected.seconds if s.expected else normalize.interval_seconds(frequency)
    grace, max_runtime, min_runtime = _limits(interval, declared)
    count, since = running if running else (0, None)
    reference = s.last_completed if s.last_completed is not None else declared_since
    due_by = None
    if interval is not None and reference is not None:
        due_by = reference + interval * THRESHOLDS["overdue_tolerance"] + grace
    overdue = due_by is not None and now > due_by
    clock = clock or _future(since, now)

    if series is None or series.never_seen:
        state = NEVER_SEEN
        reason = "declared, no webhook received yet"
        if overdue and declared_since is not None:
            reason += f"; overdue: declared {ago(now - declared_since)}"
    elif since is not None and now - since > max_runtime:
        state = STUCK
        reason = f"in flight for {human_duration(now - since)}, longer than " \
                 f"{human_duration(max_runtime)}"
    elif overdue and due_by is not None:
        state = LATE
        reason = (f"no completion for {human_duration(now - reference)}"
                  if reference is not None and s.last_completed is not None
                  else "never completed")
        reason += f"; due {ago(now - due_by)}"
    elif s.last_failed is not None and (s.last_completed is None
                                        or s.last_failed > s.last_completed):
        state = FAILED
        reason = "the newest status is a failure"
    elif (min_runtime is not None and s.last_duration is not None
          and s.last_duration < min_runtime):
        state = TOO_FAST
        reason = f"last run took {human_duration(s.last_duration)}, less than the " \
                 f"min_runtime {human_duration(min_runtime)}"
    elif count:
        state = RUNNING
        reason = f"{count} run(s) in flight"
    else:
        state = OK
        reason = "completed on schedule" if interval is not None else "completed"
        if s.last_completed is None:
            reason = "no completion yet"
    return ExportStatus(
        account=account, partner=partner, export_type=export_type, frequency=frequency,
        name=declared.name if declared else "", declared=declared is not None,
        state=state, reason=reason, overdue=overdue, expected_interval=interval,
        schedule=s.expected.describe() if s.expected else "",
        last_initiated=s.last_initiated, last_completed=s.last_completed,
        last_failed=s.last_failed, last_duration=s.last_duration, in_flight=count,
        in_flight_since=since, due_by=due_by, grace=grace, max_runtime=max_runtime,
        min_runtime=min_runtime, clock=clock, landing=s.landing,
        landing_listed=_listed(declared, s.landing),
    )


def _future(since: float | None, now: float) -> str:
    """The mark of a run in flight since a time still to come."""
    if since is None or since - now <= ZONE_SLACK_SECONDS:
        return ""
    return f"in flight since {ago(now - since)}: an event time in the future (time zone?)"


def _listed(declared: DeclaredExport | None, landing: Landed | None) -> str:
    """``s3://bucket/exports/771-``: the destination's store and the prefix the check listed."""
    if declared is None or declared.destination is None or landing is None:
        return ""
    d = declared.destination
    return d.url.removesuffix(d.prefix) + landing.prefix


def summary(statuses: list[ExportStatus]) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    for s in statuses:
        counts[s.state] += 1
    return counts
