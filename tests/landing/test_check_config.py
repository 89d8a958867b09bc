"""``check-config`` shows the destinations, names the field of a malformed one, and with
``--list`` lists each destination once against the real stores."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from exporter.tools import main
from tests.landing.conftest import AZ_ACCOUNT, AZ_KEY, AzureStore, GcsStore, S3Store
from tests.landing.test_stores import RID, event_file, filled

pytestmark = pytest.mark.process

ENTRY = """  - name: {name}
    partner: Amazon S3
    type: Events
    frequency: {frequency}
    destination:
{destination}
"""


def config(tmp_path: Path, *destinations: str) -> Path:
    path = tmp_path / "exports.yml"
    path.write_text("exports:\n" + "".join(
        ENTRY.format(name=f"export {i}", frequency=f"{i + 1}h", destination="\n".join(
            f"      {line}" for line in d.strip().splitlines()))
        for i, d in enumerate(destinations)))
    return path


def run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    out = io.StringIO()
    return main(["check-config", *argv], env=env or {}, out=out), out.getvalue()


def test_a_malformed_destination_is_named(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = config(tmp_path, "url: s3://ok-bucket", "url: gs://lake\nfolder: '{{Run}}/'")
    code, _ = run(str(path))
    assert code == 1
    assert capsys.readouterr().err.strip() == (
        f"error: {path}: exports[1].destination.folder: unknown placeholder {{{{Run}}}}: "
        "known are {{Account-id}}, {{Export-id}}, {{Timestamp}}, {{Instance-id}}, {{Date}}")


def test_list_proves_each_destination_can_be_listed(
        tmp_path: Path, s3_store: S3Store, gcs_store: GcsStore, azure_store: AzureStore) -> None:
    async def fill() -> tuple[str, str, str]:
        s3 = await filled(s3_store, {event_file(RID, 0): b"x"})
        gcs = await filled(gcs_store, {})
        azure = await filled(azure_store, {event_file(RID, 0): b"x"})
        return s3, gcs, azure

    s3, gcs, azure = asyncio.run(fill())
    path = config(
        tmp_path,
        f"url: s3://{s3}/ct\nendpoint: {s3_store.server.url}\nregion: us-east-1",
        f"url: s3://{s3}/ct\nendpoint: {s3_store.server.url}\nregion: us-east-1",  # twice
        f"url: gs://{gcs}/ct\nendpoint: {gcs_store.server.url}\nfolder: '{{{{Date}}}}/'",
        f"url: az://{azure}/ct\naccount: {AZ_ACCOUNT}\nendpoint: {azure_store.server.url}")
    env = {**s3_store.env(), "EXPORTER_AZURE_STORAGE_KEY": AZ_KEY}
    code, out = run("--list", str(path), env=env)
    assert code == 0, out
    listing = out.split("listing ", 1)[1].splitlines()
    assert listing == ["3 destination(s):",
                       f"  s3://{s3}/ct/: OK, can list (objects under it)",
                       f"  gs://{gcs}/ct/: OK, can list (empty so far)",
                       f"  az://{azure}/ct/: OK, can list (objects under it)"]
    assert f"destination: gs://{gcs}/ct/ (endpoint {gcs_store.server.url}, folder " \
           "{{Date}}/)" in out

    # A credential without the permission, and a bucket that is not there: exit 1, each named.
    path = config(tmp_path, f"url: s3://{s3}\nendpoint: {s3_store.server.url}\n"
                  "region: us-east-1",
                  f"url: az://missing-container\naccount: {AZ_ACCOUNT}\n"
                  f"endpoint: {azure_store.server.url}")
    code, out = run("--list", str(path), env={**s3_store.env("nobody"),
                                              "EXPORTER_AZURE_STORAGE_KEY": AZ_KEY})
    assert code == 1
    lines = out.split("listing ", 1)[1].splitlines()
    assert lines[1].startswith(f"  s3://{s3}/: cannot_list_permission: AccessDenied")
    assert lines[2].startswith("  az://missing-container/: not_found: ContainerNotFound")
