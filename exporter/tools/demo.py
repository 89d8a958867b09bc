"""``demo``: simulate a compressed day of exports so the status page and alerts show data."""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from importlib import resources
from typing import Any, Final, TextIO

import yaml

from exporter.cli.flags import duration, timezone
from exporter.domain import normalize
from exporter.tools.client import (
    PROG,
    RAW,
    ClientError,
    Subparsers,
    WebhookClient,
    add_connection_flags,
    clevertap_time,
    connect,
)
from exporter.tools.replay import Progress, post_all
from exporter.tools.send import pretty

EPILOG: Final = f"""\
examples:
  {PROG} demo                                 # post a simulated day, then exit
  {PROG} demo --follow                        # ... and keep the exports running in real time
  {PROG} demo --print-config > demo.yml       # the matching --config.file
  {PROG} demo --output day.jsonl              # write the events instead of posting them

The last 24 hours of several exports (Amazon S3, Google Cloud Storage, Azure; events and
profiles; every 4, 8, 12, 24 hours and one-time; accounts 'prod' and 'staging') are posted in
time order within seconds, with real event times: on the status page one export is running,
one is late, one is stuck, one finished suspiciously fast, the others are ok; with
--print-config's file, a declared export that never reported shows as never seen. Event times
are written in --timezone (env EXPORTER_TIMEZONE), which must match the exporter's.
"""


@dataclass(frozen=True)
class DemoExport:
    account: str
    partner: str
    type: str
    frequency: str
    interval: float | None
    export_id: int
    duration: tuple[float, float]  # minutes, min and max
    scenario: str  # healthy, running, late, stuck, too_fast, one_time
    name: str


def _load() -> tuple[tuple[DemoExport, ...], str]:
    """The simulated exports and the matching --config.file, from the one packaged file."""
    doc = yaml.safe_load(resources.files(__package__).joinpath("demo.yml").read_text("utf-8"))
    simulated, declared = [], []
    for e in doc["exports"]:
        sim = e.pop("simulate", None)
        if e.pop("declare", True):
            declared.append(e)
        if sim is not None:
            simulated.append(DemoExport(
                e["account"], e["partner"], e["type"], e["frequency"],
                normalize.interval_seconds(normalize.frequency(e["frequency"])), sim["id"],
                (sim["minutes"][0], sim["minutes"][1]), sim["scenario"], e["name"]))
    config = yaml.safe_dump({"defaults": doc["defaults"], "exports": declared}, sort_keys=False)
    header = ("# Declared exports matching `clevertap-export-exporter demo`.\n"
              "# Use it with: clevertap-export-exporter --config.file demo.yml\n")
    return tuple(simulated), header + config


DEMO_EXPORTS, DEMO_CONFIG = _load()

DemoEvent = tuple[float, str, dict[str, Any]]  # event time, account, body


def _body(e: DemoExport, export_id: int, status: str, ts: float, zone: tzinfo) -> dict[str, Any]:
    return {"Export Request Id": export_id, "Partner": e.partner, "Type": e.type,
            "Status": status, "Frequency": e.frequency,
            "Date and Time": clevertap_time(ts, zone)}


#: When the last run of a recurring export started, by scenario (healthy: within its interval).
_LAST_START: Final[dict[str, Callable[[float, float, random.Random], float]]] = {
    "running": lambda now, interval, rng: now - 12 * 60,  # started 12 minutes ago
    "late": lambda now, interval, rng: now - interval * 1.5 - 3 * 3600,  # past 1.5 + grace
    "stuck": lambda now, interval, rng: now - interval - 3600,  # in flight over its interval
    # Recent, so the account's delay is small.
    "too_fast": lambda now, interval, rng: now - rng.uniform(10, 20) * 60,
}


@dataclass
class _Timeline:
    """The events being simulated up to ``end``."""

    end: float
    zone: tzinfo
    rng: random.Random
    events: list[DemoEvent]

    def run(self, e: DemoExport, start: float, minutes: float | None) -> None:
        """One run starting at ``start``, completing ``minutes`` later (None: unfinished)."""
        if start <= self.end:
            self.events.append((start, e.account,
                                _body(e, e.export_id, "Initiated", start, self.zone)))
        if minutes is not None and start + minutes * 60 <= self.end:
            finish = start + minutes * 60
            self.events.append((finish, e.account,
                                _body(e, e.export_id, "Completed", finish, self.zone)))

    def minutes(self, e: DemoExport) -> float:
        return self.rng.uniform(*e.duration)


def demo_events(now: float, zone: tzinfo, rng: random.Random, history: float = 86400.0,
                future: float = 0.0) -> list[DemoEvent]:
    """The simulated exports' events from ``now - history`` to ``now + future``, in time
    order; only events at or before ``now`` when ``future`` is 0."""
    timeline = _Timeline(now + future, zone, rng, [])
    for e in DEMO_EXPORTS:
        if e.interval is None:
            start = now - rng.uniform(2, 6) * 3600
            timeline.run(e, start, timeline.minutes(e))
            continue
        pick = _LAST_START.get(e.scenario)
        last = pick(now, e.interval, rng) if pick else now - rng.uniform(0.3, 0.8) * e.interval
        _past_runs(timeline, e, e.interval, last, now - history)
        if future > 0 and e.scenario in ("healthy", "running", "too_fast"):
            _future_runs(timeline, e, e.interval, last)
    timeline.events.sort(key=lambda item: item[0])
    return timeline.events


def _past_runs(timeline: _Timeline, e: DemoExport, interval: float, last: float,
               since: float) -> None:
    starts = []
    t = last
    while t >= since:
        starts.append(t)
        t -= interval
    starts.reverse()
    for i, start in enumerate(starts):
        is_last = i == len(starts) - 1
        if is_last and e.scenario in ("running", "stuck"):
            timeline.run(e, start, None)
        elif is_last and e.scenario == "too_fast":
            timeline.run(e, start, 0.1)  # "completed" in 6 seconds
        else:
            timeline.run(e, start, timeline.minutes(e))


def _future_runs(timeline: _Timeline, e: DemoExport, interval: float, last: float) -> None:
    if e.scenario == "running":
        # The running export finishes in real time, then keeps its schedule.
        timeline.events.append(_finish_later(e, last, timeline.rng, timeline.zone))
    t = last + interval
    while t <= timeline.end:
        timeline.run(e, t, timeline.minutes(e))
        t += interval


def _finish_later(e: DemoExport, start: float, rng: random.Random,
                  zone: tzinfo) -> DemoEvent:
    finish = start + rng.uniform(*e.duration) * 60
    return (finish, e.account, _body(e, e.export_id, "Completed", finish, zone))


def run(args: argparse.Namespace, env: Mapping[str, str], out: TextIO) -> int:
    if args.print_config:
        out.write(DEMO_CONFIG)
        return 0
    rng = random.Random(args.seed)  # noqa: S311 (a simulation, not a secret)
    now = time.time()
    future = 7 * 86400.0 if args.follow else 0.0
    events = demo_events(now, args.timezone, rng, args.history, future)
    past = [e for e in events if e[0] <= now]
    later = [e for e in events if e[0] > now]
    if args.output:
        return _write(args.output, past, out)
    client = connect(args, env)
    # CleverTap's test ping first, as when a webhook is saved; an unreachable exporter or
    # wrong credentials stop the demo here with the reason.
    answer = client.post(_TEST_PING.encode(), "prod")
    if answer.outcome != "test":
        client.close()
        print(f"error: the exporter answered the test ping with {answer.status} "
              f"{pretty(answer.body)}", file=sys.stderr)
        return 1
    try:
        if not _post_past(client, args, past, out):
            return 1
        if args.follow:
            _follow(client, later, out)
    except KeyboardInterrupt:
        return 130
    finally:
        client.close()
    return 0


def _write(path: str, past: list[DemoEvent], out: TextIO) -> int:
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps({"account": "prod", "payload": json.loads(_TEST_PING)}) + "\n")
        for _, account, body in past:
            f.write(json.dumps({"account": account, "payload": body}) + "\n")
    print(f"wrote {len(past) + 1} events to {path}", file=out)
    return 0


def _post_past(client: WebhookClient, args: argparse.Namespace, past: list[DemoEvent],
               out: TextIO) -> bool:
    """Post the simulated past; False when any post failed."""
    items: list[tuple[bytes, str | None, str]] = []
    for t, account, body in past:
        items.append((json.dumps(body).encode(), account, f"event at {t:.0f}"))
    if past:  # CleverTap retries on timeouts: show one redelivery.
        items.append((json.dumps(past[-1][2]).encode(), past[-1][1], "redelivery"))
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    tally = post_all(client, items, args.rate, Progress(len(items), sys.stderr, show))
    for problem in tally.problems[:10]:
        print(problem, file=sys.stderr)
    tally.add("test")
    print(f"demo: posted a simulated day ({len(items) + 1} webhooks) to {args.url}: "
          f"{tally.line()}", file=out)
    if tally.counts["failed"]:
        return False
    print(f"open {args.url.rstrip('/')}/ to see running, late, stuck and ok exports", file=out)
    return True


def _follow(client: WebhookClient, later: list[DemoEvent], out: TextIO) -> None:
    print(f"following in real time ({len(later)} events over the next 7 days); "
          "Ctrl-C to stop", file=out)
    out.flush()
    for t, account, body in later:
        delay = t - time.time()
        if delay > 0:
            time.sleep(delay)
        try:
            answer = client.post(json.dumps(body).encode(), account)
            print(f"{body['Status']:<9} {account}/{body['Partner']}/{body['Type']}/"
                  f"{body['Frequency']}: {answer.status} {answer.outcome}", file=out)
        except ClientError as exc:
            print(f"error: {exc}", file=sys.stderr)
        out.flush()


_TEST_PING: Final = json.dumps({
    "is_test": True, "targetId": 1234, "key_values": {"key": "value"},
    "profiles": [{"Identity": "UserId", "Email": "user@example.com", "push_token": "Token"}],
})


def add_parser(sub: Subparsers, env: Mapping[str, str]) -> None:
    p = sub.add_parser("demo", help="simulate a compressed day of exports",
                       epilog=EPILOG, formatter_class=RAW,
                       description="Simulate a realistic day of recurring and one-time exports "
                       "for several partners so the status page, dashboards and alerts show "
                       "something within minutes.")
    p.add_argument("--history", type=duration, default="24h",
                   help="how much past to simulate (default: %(default)s)")
    p.add_argument("--rate", type=float, default=50.0,
                   help="webhooks per second while posting the past, 0 for no limit "
                   "(default: %(default)s)")
    p.add_argument("--follow", action="store_true",
                   help="after the past, keep the healthy exports running in real time")
    p.add_argument("--seed", type=int, default=None, help="random seed, for repeatable runs")
    p.add_argument("--timezone", type=timezone, default=env.get("EXPORTER_TIMEZONE", "UTC"),
                   help="zone of the 'Date and Time' values; must match the exporter's "
                   "(env EXPORTER_TIMEZONE; default: %(default)s)")
    p.add_argument("--output", metavar="FILE.jsonl",
                   help="write the events as JSON Lines (for 'replay') instead of posting")
    p.add_argument("--print-config", action="store_true",
                   help="print a --config.file declaring the demo's exports, and exit")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar (default: when standard error is a terminal)")
    add_connection_flags(p, env)
    p.set_defaults(run=run)
