"""``forget``: make a running exporter forget an account's series, or one series, for good."""

from __future__ import annotations

import argparse
import sys
import urllib.parse
from collections.abc import Mapping
from typing import Final, TextIO

from exporter.tools.client import PROG, RAW, Subparsers, add_connection_flags, connect
from exporter.tools.send import pretty
from exporter.web.routes import API_EXPORTS

EPILOG: Final = f"""\
examples:
  {PROG} forget --account default
  {PROG} forget --account prod --partner google_cloud_storage --export-type events \\
      --frequency one_time

The label values are those of /metrics and GET {API_EXPORTS}. The exporter must have
credentials configured (--auth-token, ...); this sends the same, from the same flags and
variables. Prints the HTTP status and the answer; exits 0 once forgotten, 1 otherwise.
"""

_SERIES: Final = ("partner", "export_type", "frequency")


def run(args: argparse.Namespace, env: Mapping[str, str], out: TextIO) -> int:
    given = [getattr(args, name) for name in _SERIES]
    if any(given) and not all(given):
        print("error: name one series with all of --partner, --export-type and --frequency, "
              "or none of them to forget the whole account", file=sys.stderr)
        return 1
    client = connect(args, env)
    account = args.account or client.account
    if not account:
        print("error: --account is required (use 'default' for /webhook without an account)",
              file=sys.stderr)
        return 1
    route = "/".join([API_EXPORTS, *(urllib.parse.quote(v, safe="") for v in
                                     [account, *(g for g in given if g)])])
    try:
        answer = client.request("DELETE", route)
    finally:
        client.close()
    print(f"{answer.status} {pretty(answer.body)}", file=out)
    return 0 if answer.status == 200 else 1


def add_parser(sub: Subparsers, env: Mapping[str, str]) -> None:
    p = sub.add_parser("forget", help="forget an account's series, or one series, for good",
                       epilog=EPILOG, formatter_class=RAW,
                       description="Forget every series of --account, or the one series "
                       "named by --partner, --export-type and --frequency: their state, runs "
                       "and metrics, in the store (a restart and every replica forget them "
                       "too). A declared export is removed from --config.file first.")
    p.add_argument("--partner", help="the series' partner label, e.g. google_cloud_storage")
    p.add_argument("--export-type", help="the series' export_type label, e.g. events")
    p.add_argument("--frequency", help="the series' frequency label, e.g. one_time")
    add_connection_flags(p, env)
    p.set_defaults(run=run)
