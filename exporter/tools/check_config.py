"""``check-config``: validate a ``--config.file`` and print the declared exports."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping
from typing import Final, TextIO

from exporter.domain.declared import ConfigError, load_config
from exporter.domain.destination import Destination, Names
from exporter.tools.client import PROG, RAW, Subparsers

EPILOG: Final = f"""\
examples:
  {PROG} check-config exports.yml
  {PROG} check-config exports.yml && curl -X POST http://localhost:9877/-/reload

  {PROG} check-config --list exports.yml

Validates the file as the exporter would load it (YAML, known keys, durations, frequencies,
destinations, no export declared twice) and prints the declared exports with their effective
thresholds; exits 1 with the reason when the file is invalid. With --list, also lists each
destination once (one object) with the store credentials in the environment, to prove they
can list it (docs/landing.md); exits 1 when one cannot be listed.
"""


def run(args: argparse.Namespace, env: Mapping[str, str], out: TextIO) -> int:
    try:
        config = load_config(args.file)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{args.file}: OK, {len(config.exports)} declared export(s)"
          f"{f', {len(config.warnings)} warning(s)' if config.warnings else ''}", file=out)
    for e in config.exports.values():
        def fmt(v: float | None) -> str:
            return "-" if v is None else f"{v:g}s"
        print(f"  {e.account}/{e.partner}/{e.export_type}/{e.frequency}"
              f"{' (' + e.name + ')' if e.name else ''}: grace={fmt(e.grace)} "
              f"max_runtime={fmt(e.max_runtime)} min_runtime={fmt(e.min_runtime)}", file=out)
        if e.destination is not None:
            print(f"    destination: {describe(e.destination)}", file=out)
    if args.list:
        destinations = list(dict.fromkeys(e.destination for e in config.exports.values()
                                          if e.destination is not None))
        return asyncio.run(_list_all(destinations, env, args.timeout, out))
    return 0


async def _list_all(destinations: list[Destination], env: Mapping[str, str], timeout: float,
                    out: TextIO) -> int:
    """List each destination's prefix, one object, with a lister per store client."""
    from exporter.landing.credentials import SecretError
    from exporter.landing.lister import Bound, Lister, ListingError, open_lister, tally

    print(f"listing {len(destinations)} destination(s):", file=out)
    listers: dict[object, Lister] = {}
    failed = 0
    try:
        for d in destinations:
            try:
                if d.client_key not in listers:
                    listers[d.client_key] = open_lister(d, env)
                found = await tally(listers[d.client_key], d.bucket, d.prefix,
                                    Bound(pages=1, seconds=timeout, page_size=1),
                                    lambda _: True)
                seen = "objects under it" if found.objects else "empty so far"
                print(f"  {d.url}: OK, can list ({seen})", file=out)
            except (ListingError, SecretError) as exc:
                failed += 1
                outcome = getattr(exc, "outcome", "error")
                print(f"  {d.url}: {outcome}: {exc}", file=out)
    finally:
        for lister in listers.values():
            await lister.close()
    return 1 if failed else 0


def describe(d: Destination) -> str:
    """``az://c/p (account acme, folder {{Date}}/, custom names)``: the destination's fields."""
    extra = [f"{name} {value}" for name, value in
             (("account", d.account), ("endpoint", d.endpoint), ("region", d.region),
              ("folder", d.folder or None), ("CleverTap account", d.clevertap_account_id))
             if value]
    if d.names is Names.CUSTOM:
        extra.append("custom names")
    return d.url + (f" ({', '.join(extra)})" if extra else "")


def add_parser(sub: Subparsers, env: Mapping[str, str]) -> None:
    p = sub.add_parser("check-config", help="validate a --config.file", epilog=EPILOG,
                       formatter_class=RAW,
                       description="Validate a configuration file of "
                       "declared exports; exit non-zero with the reason when it is invalid.")
    p.add_argument("file", help="the YAML file")
    p.add_argument("--list", action="store_true",
                   help="list each destination once to prove the credentials can")
    p.add_argument("--timeout", type=float, default=20.0, metavar="SECONDS",
                   help="how long one destination's listing may take (default: %(default)s)")
    p.set_defaults(run=run)
