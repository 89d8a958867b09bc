"""``replay``: post a JSON Lines file of payloads, rate-limited, and count the answers."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TextIO

from exporter.tools.client import (
    PROG,
    RAW,
    ClientError,
    Subparsers,
    WebhookClient,
    add_connection_flags,
    connect,
)

EPILOG: Final = f"""\
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


def run(args: argparse.Namespace, env: Mapping[str, str], out: TextIO) -> int:
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
    client = connect(args, env)
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


def add_parser(sub: Subparsers, env: Mapping[str, str]) -> None:
    p = sub.add_parser("replay", help="post a JSON Lines file of payloads",
                       epilog=EPILOG, formatter_class=RAW,
                       description="Post every payload of a JSON Lines file, rate-limited, and "
                       "report accepted, duplicate and rejected counts.")
    p.add_argument("file", help="JSON Lines file ('-' for standard input)")
    p.add_argument("--rate", type=float, default=10.0,
                   help="webhooks per second, 0 for no limit (default: %(default)s)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar (default: when standard error is a terminal)")
    add_connection_flags(p, env)
    p.set_defaults(run=run)
