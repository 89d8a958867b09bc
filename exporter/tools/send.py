"""``send``: post one payload (a file or standard input) to a running exporter."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Final, TextIO

from exporter.cli.flags import timezone
from exporter.tools.client import (
    PROG,
    RAW,
    Subparsers,
    add_connection_flags,
    clevertap_time,
    connect,
)

EPILOG: Final = f"""\
examples:
  {PROG} send completed.json
  echo '{{"Export Request Id": 1, "Partner": "Amazon S3", "Status": "Initiated"}}' \\
      | {PROG} send --account prod
  {PROG} send --now --url http://exporter:9877 --auth-token s3cret initiated.json
  {PROG} send --url https://exporter.example.com/webhook/prod --cacert ca.pem completed.json

Prints the HTTP status and the exporter's answer; exits 0 for a 2xx answer, 1 otherwise.
"""


def run(args: argparse.Namespace, env: Mapping[str, str], out: TextIO) -> int:
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
    client = connect(args, env)
    try:
        answer = client.post(raw, args.account)
    finally:
        client.close()
    print(f"{answer.status} {pretty(answer.body)}", file=out)
    if answer.status == 404:
        print(f"error: POST {client.url(args.account)} is not an endpoint of the exporter: "
              "--url takes its base URL (http://host:9877) or its webhook URL "
              "(http://host:9877/webhook[/ACCOUNT])", file=sys.stderr)
    return 0 if 200 <= answer.status < 300 else 1


def pretty(body: str) -> str:
    """The answer on one line, in one JSON style whatever the server's spacing."""
    try:
        return json.dumps(json.loads(body), ensure_ascii=False)
    except ValueError:
        return body.strip()


def add_parser(sub: Subparsers, env: Mapping[str, str]) -> None:
    p = sub.add_parser("send", help="post one payload to a running exporter", epilog=EPILOG,
                       formatter_class=RAW,
                       description="Post one webhook body (a file, or "
                       "standard input with '-') and print the exporter's answer.")
    p.add_argument("file", nargs="?", default="-", help="JSON file to post; '-' (the default) "
                   "reads standard input")
    p.add_argument("--now", action="store_true", help="replace 'Date and Time' with the "
                   "current time in --timezone")
    p.add_argument("--timezone", type=timezone, default=env.get("EXPORTER_TIMEZONE", "UTC"),
                   help="zone of --now's time (env EXPORTER_TIMEZONE; default: %(default)s)")
    add_connection_flags(p, env)
    p.set_defaults(run=run)
