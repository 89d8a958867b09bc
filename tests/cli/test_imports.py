"""A server configured for none of them imports none of pydantic, PyYAML, bcrypt, ctypes, PyJWT,
cryptography, the OpenAPI document or the status page (a lighter process); each comes in with the
configuration or the first request that needs it. Checked in a fresh interpreter, since this
one has imported everything the other tests use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT
from tests.pki import Pki, hashed, write_config

DEPENDENCIES = ["bcrypt", "cryptography", "ctypes", "jwt", "pydantic", "yaml"]
PAGES = ["exporter.web.openapi", "exporter.web.statuspage"]
PASSWORD = "secret"

# Builds the server's application from the flags given, serves it and reports which of the
# watched modules are loaded once it has started (the state store open), then after a status
# page and an OpenAPI request.
_PROBE = """
import asyncio, json, sys
from aiohttp import BasicAuth
from aiohttp.test_utils import TestClient, TestServer
import exporter.cli.serve
from exporter.cli.flags import parse_settings
from exporter.web.app import create_app

WATCHED = json.loads(sys.argv[1])

def loaded():
    return sorted(m for m in WATCHED if m in sys.modules)

async def main():
    app = create_app(parse_settings(sys.argv[3:], env={}))
    async with TestClient(TestServer(app)) as client:
        started = loaded()
        auth = BasicAuth("prometheus", sys.argv[2])
        served = [(await client.get(path, auth=auth)).status for path in ("/", "/openapi.json")]
        return {"statuses": served, "started": started, "served": loaded()}

print(json.dumps(asyncio.run(main())))
"""


def probe(tmp_path: Path, *flags: str) -> dict[str, list[object]]:
    run = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(DEPENDENCIES + PAGES), PASSWORD,
         "--state-path", str(tmp_path / "state.db"), *flags],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    result: dict[str, list[object]] = json.loads(run.stdout)
    assert result["statuses"] == [200, 200]
    return result


def test_the_default_server_imports_only_what_it_uses(tmp_path: Path) -> None:
    result = probe(tmp_path)
    assert result["started"] == []
    assert result["served"] == PAGES


def test_a_config_file_and_a_web_config_bring_their_dependencies(tmp_path: Path,
                                                                 pki: Pki) -> None:
    exports = tmp_path / "exports.yml"
    exports.write_text("exports:\n  - partner: Amazon S3\n    type: Events\n    frequency: 4h\n")
    # Two curves need the OpenSSL call that ctypes makes; the users need bcrypt at the first
    # request that logs in.
    web_config = write_config(tmp_path, f"""
tls_server_config:
  cert_file: {pki.server_cert}
  key_file: {pki.server_key}
  curve_preferences: [X25519, CurveP256]
basic_auth_users:
  prometheus: {hashed(PASSWORD)}
""")
    result = probe(tmp_path, "--config.file", str(exports), "--web.config.file", str(web_config))
    assert result["started"] == ["ctypes", "pydantic", "yaml"]
    # PyJWT and cryptography come with OAuth, which is not configured here.
    assert result["served"] == sorted([*set(DEPENDENCIES) - {"cryptography", "jwt"}, *PAGES])
