"""Subcommands for people setting the exporter up: ``send``, ``replay``, ``demo``, ``check-config``,
``forget``.

One module per subcommand, each with its ``add_parser`` and ``run``; ``client`` holds the HTTP
client and connection flags they share.

The command (``exporter.__main__``) uses ``main``; the modules are internal (the ``protected``
contract in pyproject.toml). The tools are plain HTTP clients: they import neither aiohttp nor
prometheus-client (the ``forbidden`` contract), so they start quickly.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from exporter.domain.keys import ACCOUNT_PATTERN, ACCOUNT_RE
from exporter.tools import check_config, demo, forget, replay, send
from exporter.tools.client import PROG, ClientError

__all__ = ["main"]

SUBCOMMANDS = {"send": send, "replay": replay, "demo": demo, "check-config": check_config,
               "forget": forget}


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Tools for setting up the exporter; run without a subcommand "
        "to serve (see '--help' without a subcommand).")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS.values():
        module.add_parser(sub, env)
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
    return ACCOUNT_RE.fullmatch(account) is not None
