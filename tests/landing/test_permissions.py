"""Refused listings are cannot_list_permission, and docs/landing.md's least privilege suffices.

moto (with its IAM authentication switched on) checks keys, signatures and policies; Azurite
checks the account key and a SAS token's permissions. The GCS emulator checks nothing (it
takes no token): test_gcs.py answers as GCS does for a refused token instead.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.storage.blob import ContainerSasPermissions, generate_container_sas

from exporter.domain.landing import Outcome
from exporter.landing.check import check_landing
from exporter.landing.lister import Lister
from tests.landing.conftest import AZ_ACCOUNT, AZ_KEY, AzureStore, S3Store
from tests.landing.test_stores import EVENTS, QUICK, RID, event_file, filled

pytestmark = pytest.mark.process


async def outcome_with(lister: Lister, store: S3Store | AzureStore, bucket: str) -> tuple[
        Outcome, int, str]:
    """The check of ``bucket``'s ct/ folder with ``lister``, closed after."""
    dest = store.destination(bucket, "ct")
    try:
        result = await check_landing(dest, EVENTS, lister, QUICK)
    finally:
        await lister.close()
    return result.outcome, result.objects, result.detail


async def test_s3_list_only_policy_lists_and_the_others_are_refused(
        s3_store: S3Store, caplog: pytest.LogCaptureFixture) -> None:
    bucket = await filled(s3_store, {event_file(RID, 0): b"data"})
    dest = s3_store.destination(bucket, "ct")
    # docs/landing.md's policy: s3:ListBucket and nothing else.
    assert await outcome_with(s3_store.lister(dest), s3_store, bucket) == \
        (Outcome.LANDED, 1, "")
    nobody = s3_store.env("nobody")
    outcome, _, detail = await outcome_with(s3_store.lister(dest, nobody), s3_store, bucket)
    assert outcome is Outcome.CANNOT_LIST_PERMISSION and detail.startswith("AccessDenied")
    unknown = {**nobody, "EXPORTER_S3_ACCESS_KEY_ID": "AKIAUNKNOWN000000000"}
    outcome, _, detail = await outcome_with(s3_store.lister(dest, unknown), s3_store, bucket)
    assert outcome is Outcome.CANNOT_LIST_PERMISSION and detail.startswith("InvalidAccessKeyId")
    wrong = {**s3_store.env(), "EXPORTER_S3_SECRET_ACCESS_KEY": "not-the-secret"}
    outcome, _, detail = await outcome_with(s3_store.lister(dest, wrong), s3_store, bucket)
    assert outcome is Outcome.CANNOT_LIST_PERMISSION
    assert detail.startswith("SignatureDoesNotMatch") and "not-the-secret" not in detail
    for secret in (s3_store.keys["nobody"][1], "not-the-secret"):
        assert secret not in caplog.text


async def test_s3_secret_from_a_file(s3_store: S3Store, tmp_path: Path) -> None:
    bucket = await filled(s3_store, {event_file(RID, 0): b"data"})
    key_id, secret = s3_store.keys["lister"]
    (tmp_path / "secret").write_text(secret + "\n")
    env = {"EXPORTER_S3_ACCESS_KEY_ID": key_id,
           "EXPORTER_S3_SECRET_ACCESS_KEY_FILE": str(tmp_path / "secret")}
    lister = s3_store.lister(s3_store.destination(bucket), env)
    assert (await outcome_with(lister, s3_store, bucket))[:2] == (Outcome.LANDED, 1)


def _sas(container: str, permission: ContainerSasPermissions) -> str:
    return generate_container_sas(AZ_ACCOUNT, container, account_key=AZ_KEY,
                                  permission=permission,
                                  expiry=datetime.now(UTC) + timedelta(hours=1))


async def test_azure_keys_and_sas_tokens(azure_store: AzureStore, tmp_path: Path) -> None:
    bucket = await filled(azure_store, {event_file(RID, 0): b"data"})
    dest = azure_store.destination(bucket, "ct")
    wrong = azure_store.env("d3Jvbmcga2V5" * 8)
    outcome, _, detail = await outcome_with(azure_store.lister(dest, wrong), azure_store, bucket)
    assert outcome is Outcome.CANNOT_LIST_PERMISSION and detail.startswith("AuthorizationFailure: ")
    read_only = {"EXPORTER_AZURE_STORAGE_SAS_TOKEN": _sas(bucket, ContainerSasPermissions(
        read=True))}
    outcome, _, detail = await outcome_with(azure_store.lister(dest, read_only), azure_store,
                                            bucket)
    assert outcome is Outcome.CANNOT_LIST_PERMISSION
    assert detail.startswith("AuthorizationPermissionMismatch: ")
    # docs/landing.md's least privilege: a SAS with the List permission only (sp=l).
    sas = _sas(bucket, ContainerSasPermissions(list=True))
    assert "sp=l&" in sas
    (tmp_path / "sas").write_text(f"?{sas}\n")
    list_only = {"EXPORTER_AZURE_STORAGE_SAS_TOKEN_FILE": str(tmp_path / "sas")}
    assert await outcome_with(azure_store.lister(dest, list_only), azure_store, bucket) == \
        (Outcome.LANDED, 1, "")
    connection = (f"DefaultEndpointsProtocol=http;AccountName={AZ_ACCOUNT};AccountKey={AZ_KEY};"
                  f"BlobEndpoint={azure_store.server.url};")
    by_string = {"EXPORTER_AZURE_STORAGE_CONNECTION_STRING": connection}
    assert (await outcome_with(azure_store.lister(dest, by_string), azure_store, bucket))[:2] \
        == (Outcome.LANDED, 1)


async def test_a_missing_azure_account_is_not_found_or_refused(azure_store: AzureStore) -> None:
    # Azurite serves one account: another one's requests are refused, as Azure would not
    # resolve its host. Either way the check says why, quickly.
    other = replace(azure_store.destination("c12"), account="nosuchaccount",
                    endpoint=azure_store.server.url.replace(AZ_ACCOUNT, "nosuchaccount"))
    began = time.monotonic()
    outcome, _, detail = await outcome_with(azure_store.lister(other), azure_store, "c12")
    assert outcome in (Outcome.CANNOT_LIST_PERMISSION, Outcome.NOT_FOUND), detail
    assert time.monotonic() - began < 10
