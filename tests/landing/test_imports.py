"""Each store's client library is imported only when a destination of its kind is listed: a
server with destinations declared, the checker included, loads none until then. Checked in a
fresh interpreter, since this one has imported all three."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import ROOT

CLIENTS = ["aiobotocore", "botocore", "gcloud.aio.storage", "azure.storage.blob",
           "azure.identity"]

_PROBE = """
import asyncio, json, sys
import exporter.cli.serve, exporter.web.app
from exporter.domain.declared import parse_config
from exporter.landing.check import Checker
from exporter.landing.lister import open_lister

WATCHED = json.loads(sys.argv[1])

def loaded():
    return sorted(m for m in WATCHED if m in sys.modules)

config = parse_config('''exports:
  - {partner: S3, type: Events, frequency: 4h, destination: s3://bucket-a}
  - {partner: GCS, type: Events, frequency: 4h, destination: gs://bucket-b}
  - {partner: Azure, type: Events, frequency: 4h, destination: {url: az://c12, account: acct}}
''')
s3, gcs, azure = (e.destination for e in config.exports.values())

async def main():
    checker = Checker(lambda result: asyncio.sleep(0))
    out = {"declared": loaded()}
    lister = open_lister(s3, {})
    out["s3"] = loaded()
    await lister.close()
    await checker.close()
    return out

print(json.dumps(asyncio.run(main())))
"""


def test_store_clients_load_only_when_a_destination_of_their_kind_is_listed() -> None:
    run = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(CLIENTS)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"declared": [], "s3": ["aiobotocore", "botocore"]}
