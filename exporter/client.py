"""Subcommands for people setting the exporter up: ``send``, ``replay``, ``demo``, ``check-config``.

They talk to a running exporter over HTTP with the same credentials the server is configured
with (the same flags and ``EXPORTER_*`` variables, ``*_FILE`` included), so a shell that runs
the server can also feed it.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import random
import re
import sys
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, Final, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from exporter.config import parse_duration
from exporter.declared import ConfigError, load_config
from exporter.payload import ACCOUNT_PATTERN

PROG: Final = "clevertap-export-exporter"
DEFAULT_URL: Final = "http://127.0.0.1:9877"
ACCEPTED_OUTCOMES: Final = ("accepted", "duplicate", "test")


class ClientError(Exception):
    """The exporter could not be reached or answered something unusable."""


# --------------------------------------------------------------------------- HTTP client


@dataclass
class Answer:
    status: int
    body: str

    @property
    def outcome(self) -> str:
        """``accepted``, ``duplicate``, ``test``, or ``rejected`` (4xx) / ``failed`` (5xx)."""
        if 200 <= self.status < 300:
            try:
                doc = json.loads(self.body)
            except ValueError:
                return "accepted"
            value = doc.get("status") if isinstance(doc, dict) else None
            return value if value in ACCEPTED_OUTCOMES else "accepted"
        return "rejected" if 400 <= self.status < 500 else "failed"


class WebhookClient:
    """Posts bodies to ``/webhook[/{account}]`` over one kept-alive connection."""

    def __init__(self, url: str, headers: Mapping[str, str], timeout: float = 10.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ClientError(f"--url must be an http:// or https:// URL, got {url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port
        self.base = parts.path.rstrip("/")
        self.headers = {"Content-Type": "application/json", **headers}
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            kind = (http.client.HTTPSConnection if self.scheme == "https"
                    else http.client.HTTPConnection)
            self._conn = kind(self.host, self.port, timeout=self.timeout)
        return self._conn

    def post(self, body: bytes, account: str | None = None) -> Answer:
        path = f"{self.base}/webhook" + (f"/{urllib.parse.quote(account)}" if account else "")
        for attempt in (1, 2):  # a kept-alive connection may have been closed by the server
            conn = self._connection()
            try:
                conn.request("POST", path, body=body, headers=self.headers)
                resp = conn.getresponse()
                return Answer(resp.status, resp.read().decode("utf-8", "replace"))
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if attempt == 2:
                    raise ClientError(f"cannot post to {self.scheme}://{self.host}"
                                      f"{':' + str(self.port) if self.port else ''}{path}: "
                                      f"{exc}") from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _secret(env: Mapping[str, str], name: str) -> str | None:
    var = f"EXPORTER_{name}"
    if env.get(var):
        return env[var]
    file_var = f"{var}_FILE"
    if env.get(file_var):
        try:
            return Path(env[file_var]).read_text().strip()
        except OSError as exc:
            raise ClientError(f"cannot read {file_var}: {exc}") from exc
    return None


def _add_connection_flags(p: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    g = p.add_argument_group("connection (same flags and variables as the server)")
    g.add_argument("--url", default=env.get("EXPORTER_URL", DEFAULT_URL),
                   help="base URL of the running exporter (env EXPORTER_URL; default: "
                   "%(default)s)")
    g.add_argument("--account", default=None,
                   help="post to /webhook/ACCOUNT instead of /webhook (account 'default')")
    g.add_argument("--auth-token", default=None,
                   help="send 'Authorization: Bearer TOKEN' (env EXPORTER_AUTH_TOKEN or "
                   "EXPORTER_AUTH_TOKEN_FILE)")
    g.add_argument("--auth-header", default=env.get("EXPORTER_AUTH_HEADER"),
                   help="send the token in this header instead (env EXPORTER_AUTH_HEADER)")
    g.add_argument("--basic-auth-user", default=env.get("EXPORTER_BASIC_AUTH_USER"),
                   help="HTTP Basic user (env EXPORTER_BASIC_AUTH_USER)")
    g.add_argument("--basic-auth-password", default=None,
                   help="HTTP Basic password (env EXPORTER_BASIC_AUTH_PASSWORD or "
                   "EXPORTER_BASIC_AUTH_PASSWORD_FILE)")
    g.add_argument("--timeout", type=parse_duration, default="10s",
                   help="seconds to wait for each answer (default: %(default)s)")


def _client(args: argparse.Namespace, env: Mapping[str, str]) -> WebhookClient:
    token = args.auth_token or _secret(env, "AUTH_TOKEN")
    password = args.basic_auth_password or _secret(env, "BASIC_AUTH_PASSWORD")
    headers: dict[str, str] = {}
    if token:
        if args.auth_header:
            headers[args.auth_header] = token
        else:
            headers["Authorization"] = f"Bearer {token}"
    elif args.basic_auth_user and password is not None:
        pair = f"{args.basic_auth_user}:{password}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    return WebhookClient(args.url, headers, args.timeout)


def _zone(text: str) -> ZoneInfo:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"unknown IANA time zone {text!r}") from exc


def clevertap_time(ts: float, zone: tzinfo) -> str:
    """CleverTap's documented ``DD/MM/YYYY h:mm:ss AM/PM``, in the account's zone."""
    dt = datetime.fromtimestamp(ts, zone)
    hour = dt.hour % 12 or 12
    return f"{dt:%d/%m/%Y} {hour}:{dt:%M:%S} {'AM' if dt.hour < 12 else 'PM'}"


# --------------------------------------------------------------------------- send

SEND_EPILOG: Final = f"""\
examples:
  {PROG} send completed.json
  echo '{{"Export Request Id": 1, "Partner": "Amazon S3", "Status": "Initiated"}}' \\
      | {PROG} send --account prod
  {PROG} send --now --url http://exporter:9877 --auth-token s3cret initiated.json

Prints the HTTP status and the exporter's answer; exits 0 for a 2xx answer, 1 otherwise.
"""


def cmd_send(args: argparse.Namespace, env: Mapping[str, str], out: TextIO) -> int:
    try:
        raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    if args.now:
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            print(f"error: --now needs a JSON object: {exc}", file=sys.stderr)
            return 1
        if isinstance(doc, dict):
            doc["Date and Time"] = clevertap_time(time.time(), args.timezone)
            raw = json.dumps(doc).encode()
    client = _client(args, env)
    try:
        answer = client.post(raw, args.account)
    finally:
        client.close()
    print(f"{answer.status} {_pretty(answer.body)}", file=out)
    return 0 if 200 <= answer.status < 300 else 1


def _pretty(body: str) -> str:
    """The answer on one line, in one JSON style whatever the server's spacing."""
    try:
        return json.dumps(json.loads(body), ensure_ascii=False)
    except ValueError:
        return body.strip()


# --------------------------------------------------------------------------- replay

REPLAY_EPILOG: Final = f"""\
examples:
  {PROG} replay events.jsonl
  {PROG} replay --rate 50 --account prod events.jsonl
  {PROG} demo --output day.jsonl && {PROG} replay --rate 0 day.jsonl

Each non-empty line not starting with '#' is posted as one webhook body, as is. A line may
also be an envelope {{"account": "prod", "payload": {{...}}}} to post to /webhook/prod.
Reports how many were accepted, duplicate (redeliveries), test (pings), rejected (4xx) and
failed (5xx or unreachable); exits 1 when any was rejected or failed.
"""


@dataclass
class Tally:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("accepted", "duplicate", "test", "rejected", "failed"), 0))
    problems: list[str] = field(default_factory=list)

    def add(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1

    def line(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.counts.items())


def _envelope(line: str) -> tuple[bytes, str | None]:
    """The body to post and the account of an envelope line (or None)."""
    try:
        doc = json.loads(line)
    except ValueError:
        return line.encode(), None
    if isinstance(doc, dict) and set(doc) == {"account", "payload"} \
            and isinstance(doc["account"], str):
        return json.dumps(doc["payload"]).encode(), doc["account"]
    return line.encode(), None


class Progress:
    """A one-line progress bar on a terminal; silent otherwise."""

    def __init__(self, total: int, stream: TextIO, enabled: bool) -> None:
        self.total = total
        self.stream = stream
        self.enabled = enabled
        self._last = 0.0

    def update(self, done: int, tally: Tally, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < 0.1):
            return
        self._last = now
        width = 30
        filled = int(width * done / self.total) if self.total else width
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r[{bar}] {done}/{self.total}  {tally.line()}")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def post_all(client: WebhookClient, items: Sequence[tuple[bytes, str | None, str]],
             rate: float, progress: Progress) -> Tally:
    """Post ``(body, account, where)`` items at most ``rate`` per second (0: no limit)."""
    tally = Tally()
    started = time.monotonic()
    for i, (body, account, where) in enumerate(items):
        if rate > 0:
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        try:
            answer = client.post(body, account)
        except ClientError as exc:
            tally.add("failed")
            tally.problems.append(f"{where}: {exc}")
        else:
            outcome = answer.outcome
            tally.add(outcome)
            if outcome in ("rejected", "failed"):
                tally.problems.append(f"{where}: HTTP {answer.status} {answer.body.strip()}")
        progress.update(i + 1, tally)
    progress.update(len(items), tally, force=True)
    progress.finish()
    return tally


def cmd_replay(args: argparse.Namespace, env: Mapping[str, str], out: TextIO) -> int:
    try:
        text = (sys.stdin.read() if args.file == "-"
                else Path(args.file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    items: list[tuple[bytes, str | None, str]] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        body, account = _envelope(line)
        items.append((body, account or args.account, f"line {n}"))
    client = _client(args, env)
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    started = time.monotonic()
    try:
        tally = post_all(client, items, args.rate, Progress(len(items), sys.stderr, show))
    finally:
        client.close()
    for problem in tally.problems[:20]:
        print(problem, file=sys.stderr)
    if len(tally.problems) > 20:
        print(f"... and {len(tally.problems) - 20} more", file=sys.stderr)
    print(f"replayed {len(items)} payload(s) in {time.monotonic() - started:.1f} s: "
          f"{tally.line()}", file=out)
    return 1 if tally.counts["rejected"] or tally.counts["failed"] else 0


# --------------------------------------------------------------------------- demo

DEMO_EPILOG: Final = f"""\
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


DEMO_EXPORTS: Final = (
    DemoExport("prod", "Amazon S3", "Events", "Every 4 hours", 4 * 3600, 1701416400,
               (18, 35), "healthy", "Events to the data lake"),
    DemoExport("prod", "Amazon S3", "Profiles", "Every 24 hours", 24 * 3600, 1701416500,
               (45, 70), "healthy", "Nightly profiles"),
    DemoExport("prod", "Google Cloud Storage", "Events", "Every 8 hours", 8 * 3600, 1701416600,
               (40, 55), "running", "Events to BigQuery staging"),
    DemoExport("prod", "Microsoft Azure", "Events", "Every 12 hours", 12 * 3600, 1701416700,
               (25, 40), "late", "Events to the Azure warehouse"),
    DemoExport("staging", "Google Cloud Storage", "Profiles", "Every 4 hours", 4 * 3600,
               1701416800, (10, 20), "stuck", "Staging profiles"),
    DemoExport("staging", "Amazon S3", "Events", "Every 12 hours", 12 * 3600, 1701416900,
               (15, 25), "too_fast", "Staging events"),
    DemoExport("prod", "Google Cloud Storage", "Events", "One Time", None, 1690283492,
               (30, 45), "one_time", "Backfill July"),
    DemoExport("staging", "Microsoft Azure", "Profiles", "One Time", None, 1690283600,
               (5, 10), "one_time", "Profile snapshot"),
)

DEMO_CONFIG: Final = """\
# Declared exports matching `clevertap-export-exporter demo`.
# Use it with: clevertap-export-exporter --config.file demo.yml
defaults:
  grace: 30m
exports:
  - name: Events to the data lake
    account: prod
    partner: Amazon S3
    type: Events
    frequency: Every 4 hours
    max_runtime: 2h
    min_runtime: 2m
  - name: Nightly profiles
    account: prod
    partner: Amazon S3
    type: Profiles
    frequency: Every 24 hours
    grace: 2h
  - name: Events to BigQuery staging
    account: prod
    partner: Google Cloud Storage
    type: Events
    frequency: Every 8 hours
  - name: Events to the Azure warehouse
    account: prod
    partner: Microsoft Azure
    type: Events
    frequency: Every 12 hours
  - name: Staging profiles
    account: staging
    partner: Google Cloud Storage
    type: Profiles
    frequency: Every 4 hours
    max_runtime: 1h
  - name: Staging events
    account: staging
    partner: Amazon S3
    type: Events
    frequency: Every 12 hours
    min_runtime: 5m
  - name: Azure profiles (not set up yet)
    account: prod
    partner: Microsoft Azure
    type: Profiles
    frequency: Daily
"""

DemoEvent = tuple[float, str, dict[str, Any]]  # event time, account, body


def _body(e: DemoExport, export_id: int, status: str, ts: float, zone: tzinfo) -> dict[str, Any]:
    return {"Export Request Id": export_id, "Partner": e.partner, "Type": e.type,
            "Status": status, "Frequency": e.frequency,
            "Date and Time": clevertap_time(ts, zone)}


def demo_events(now: float, zone: tzinfo, rng: random.Random, history: float = 86400.0,
                future: float = 0.0) -> list[DemoEvent]:
    """The simulated exports' events from ``now - history`` to ``now + future``, in time
    order; only events at or before ``now`` when ``future`` is 0."""
    out: list[DemoEvent] = []
    end = now + future

    def run(e: DemoExport, export_id: int, start: float, minutes: float | None) -> None:
        if start <= end:
            out.append((start, e.account, _body(e, export_id, "Initiated", start, zone)))
        if minutes is not None and start + minutes * 60 <= end:
            finish = start + minutes * 60
            out.append((finish, e.account, _body(e, export_id, "Completed", finish, zone)))

    def minutes(e: DemoExport) -> float:
        return rng.uniform(*e.duration)

    for e in DEMO_EXPORTS:
        if e.interval is None:
            start = now - rng.uniform(2, 6) * 3600
            run(e, e.export_id, start, minutes(e))
            continue
        interval = e.interval
        if e.scenario == "running":
            last = now - 12 * 60  # started 12 minutes ago, still running
        elif e.scenario == "late":
            last = now - interval * 1.5 - 3 * 3600  # past 1.5 intervals + grace
        elif e.scenario == "stuck":
            last = now - interval - 3600  # in flight longer than its interval
        elif e.scenario == "too_fast":
            last = now - rng.uniform(10, 20) * 60  # recent, so the account's delay is small
        else:
            last = now - rng.uniform(0.3, 0.8) * interval
        starts = []
        t = last
        while t >= now - history:
            starts.append(t)
            t -= interval
        starts.reverse()
        for i, start in enumerate(starts):
            is_last = i == len(starts) - 1
            if is_last and e.scenario in ("running", "stuck"):
                run(e, e.export_id, start, None)
            elif is_last and e.scenario == "too_fast":
                run(e, e.export_id, start, 0.1)  # "completed" in 6 seconds
            else:
                run(e, e.export_id, start, minutes(e))
        if future > 0 and e.scenario in ("healthy", "running", "too_fast"):
            if e.scenario == "running":
                # The running export finishes in real time, then keeps its schedule.
                out.append(_finish_later(e, last, rng, zone))
            t = last + interval
            while t <= end:
                run(e, e.export_id, t, minutes(e))
                t += interval
    out.sort(key=lambda item: item[0])
    return out


def _finish_later(e: DemoExport, start: float, rng: random.Random,
                  zone: tzinfo) -> DemoEvent:
    finish = start + rng.uniform(*e.duration) * 60
    return (finish, e.account, _body(e, e.export_id, "Completed", finish, zone))


def cmd_demo(args: argparse.Namespace, env: Mapping[str, str], out: TextIO) -> int:
    if args.print_config:
        out.write(DEMO_CONFIG)
        return 0
    rng = random.Random(args.seed)  # noqa: S311 (a simulation, not a secret)
    now = time.time()
    future = 7 * 86400.0 if args.follow else 0.0
    events = demo_events(now, args.timezone, rng, args.history, future)
    past = [e for e in events if e[0] <= now]
    later = [e for e in events if e[0] > now]
    ping = json.loads(_TEST_PING)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(json.dumps({"account": "prod", "payload": ping}) + "\n")
            for _, account, body in past:
                f.write(json.dumps({"account": account, "payload": body}) + "\n")
        print(f"wrote {len(past) + 1} events to {args.output}", file=out)
        return 0
    client = _client(args, env)
    # CleverTap's test ping first, as when a webhook is saved; an unreachable exporter or
    # wrong credentials stop the demo here with the reason.
    answer = client.post(_TEST_PING.encode(), "prod")
    if answer.outcome != "test":
        client.close()
        print(f"error: the exporter answered the test ping with {answer.status} "
              f"{_pretty(answer.body)}", file=sys.stderr)
        return 1
    items: list[tuple[bytes, str | None, str]] = []
    for t, account, body in past:
        items.append((json.dumps(body).encode(), account, f"event at {t:.0f}"))
    if past:  # CleverTap retries on timeouts: show one redelivery.
        items.append((json.dumps(past[-1][2]).encode(), past[-1][1], "redelivery"))
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    try:
        tally = post_all(client, items, args.rate, Progress(len(items), sys.stderr, show))
        for problem in tally.problems[:10]:
            print(problem, file=sys.stderr)
        tally.add("test")
        print(f"demo: posted a simulated day ({len(items) + 1} webhooks) to {args.url}: "
              f"{tally.line()}", file=out)
        if tally.counts["failed"]:
            return 1
        print(f"open {args.url.rstrip('/')}/ to see running, late, stuck and ok exports",
              file=out)
        if not args.follow:
            return 0
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
    except KeyboardInterrupt:
        return 130
    finally:
        client.close()
    return 0


_TEST_PING: Final = json.dumps({
    "is_test": True, "targetId": 1234, "key_values": {"key": "value"},
    "profiles": [{"Identity": "UserId", "Email": "user@example.com", "push_token": "Token"}],
})


# --------------------------------------------------------------------------- check-config

CHECK_EPILOG: Final = f"""\
examples:
  {PROG} check-config exports.yml
  {PROG} check-config exports.yml && kill -HUP $(pidof {PROG})

Validates the file as the exporter would load it (YAML, known keys, durations, frequencies,
no export declared twice) and prints the declared exports with their effective thresholds;
exits 1 with the reason when the file is invalid.
"""


def cmd_check_config(args: argparse.Namespace, env: Mapping[str, str], out: TextIO) -> int:
    try:
        config = load_config(args.file)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.file}: OK, {len(config.exports)} declared export(s)", file=out)
    for e in config.exports.values():
        def fmt(v: float | None) -> str:
            return "-" if v is None else f"{v:g}s"
        print(f"  {e.account}/{e.partner}/{e.export_type}/{e.frequency}"
              f"{' (' + e.name + ')' if e.name else ''}: grace={fmt(e.grace)} "
              f"max_runtime={fmt(e.max_runtime)} min_runtime={fmt(e.min_runtime)}", file=out)
    return 0


# --------------------------------------------------------------------------- entry point


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Tools for setting up the exporter; run without a subcommand "
        "to serve (see '--help' without a subcommand).")
    sub = parser.add_subparsers(dest="command", required=True)
    fmt = argparse.RawDescriptionHelpFormatter
    zone_default = env.get("EXPORTER_TIMEZONE", "UTC")

    p = sub.add_parser("send", help="post one payload to a running exporter", epilog=SEND_EPILOG,
                       formatter_class=fmt, description="Post one webhook body (a file, or "
                       "standard input with '-') and print the exporter's answer.")
    p.add_argument("file", nargs="?", default="-", help="JSON file to post; '-' (the default) "
                   "reads standard input")
    p.add_argument("--now", action="store_true", help="replace 'Date and Time' with the "
                   "current time in --timezone")
    p.add_argument("--timezone", type=_zone, default=zone_default,
                   help="zone of --now's time (env EXPORTER_TIMEZONE; default: %(default)s)")
    _add_connection_flags(p, env)
    p.set_defaults(run=cmd_send)

    p = sub.add_parser("replay", help="post a JSON Lines file of payloads",
                       epilog=REPLAY_EPILOG, formatter_class=fmt,
                       description="Post every payload of a JSON Lines file, rate-limited, and "
                       "report accepted, duplicate and rejected counts.")
    p.add_argument("file", help="JSON Lines file ('-' for standard input)")
    p.add_argument("--rate", type=float, default=10.0,
                   help="webhooks per second, 0 for no limit (default: %(default)s)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar (default: when standard error is a terminal)")
    _add_connection_flags(p, env)
    p.set_defaults(run=cmd_replay)

    p = sub.add_parser("demo", help="simulate a compressed day of exports",
                       epilog=DEMO_EPILOG, formatter_class=fmt,
                       description="Simulate a realistic day of recurring and one-time exports "
                       "for several partners so the status page, dashboards and alerts show "
                       "something within minutes.")
    p.add_argument("--history", type=parse_duration, default="24h",
                   help="how much past to simulate (default: %(default)s)")
    p.add_argument("--rate", type=float, default=50.0,
                   help="webhooks per second while posting the past, 0 for no limit "
                   "(default: %(default)s)")
    p.add_argument("--follow", action="store_true",
                   help="after the past, keep the healthy exports running in real time")
    p.add_argument("--seed", type=int, default=None, help="random seed, for repeatable runs")
    p.add_argument("--timezone", type=_zone, default=zone_default,
                   help="zone of the 'Date and Time' values; must match the exporter's "
                   "(env EXPORTER_TIMEZONE; default: %(default)s)")
    p.add_argument("--output", metavar="FILE.jsonl",
                   help="write the events as JSON Lines (for 'replay') instead of posting")
    p.add_argument("--print-config", action="store_true",
                   help="print a --config.file declaring the demo's exports, and exit")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar (default: when standard error is a terminal)")
    _add_connection_flags(p, env)
    p.set_defaults(run=cmd_demo)

    p = sub.add_parser("check-config", help="validate a --config.file", epilog=CHECK_EPILOG,
                       formatter_class=fmt, description="Validate a configuration file of "
                       "declared exports; exit non-zero with the reason when it is invalid.")
    p.add_argument("file", help="the YAML file")
    p.set_defaults(run=cmd_check_config)
    return parser


def main(argv: Sequence[str], env: Mapping[str, str] | None = None,
         out: TextIO | None = None) -> int:
    env = dict(os.environ if env is None else env)
    parser = build_parser(env)
    args = parser.parse_args(argv)
    if getattr(args, "account", None) and not _valid_account(args.account):
        parser.error(f"--account must match {ACCOUNT_PATTERN}")
    try:
        code: int = args.run(args, env, out or sys.stdout)
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`... | head`): stop quietly, as command-line tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return code


def _valid_account(account: str) -> bool:
    return re.fullmatch(ACCOUNT_PATTERN, account) is not None
