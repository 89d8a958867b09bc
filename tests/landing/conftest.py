"""The three stores as real servers on 127.0.0.1: moto's S3 server, the GCS emulator from PyPI
and Azurite from npm (installed from tests/landing/azurite's lock file on first use), each with
the helpers a test needs to fill it and to point a destination at it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import aiohttp
import pytest
from aiobotocore.session import get_session

from exporter.domain.destination import Destination, parse_destination
from exporter.landing.lister import Lister, open_lister
from tests.bundle.conftest import run_tool
from tests.helpers import ROOT, free_port, require_binary

AZURITE: Final = ROOT / "tests" / "landing" / "azurite"
#: Azurite's well-known development account (public, in Azure's documentation).
AZ_ACCOUNT: Final = "devstoreaccount1"
AZ_KEY: Final = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
                 "K1SZFPTOtr/KBHBeksoGMGw==")
#: The S3 IAM policy docs/landing.md gives: list the bucket, nothing else.
LIST_POLICY: Final = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::*"}]}


def _wait_listening(port: int, proc: subprocess.Popen[bytes], name: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{name} exited {proc.returncode}:\n{log.read_text(errors='replace')}",
                        pytrace=False)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail(f"{name} did not listen on 127.0.0.1:{port} within 60 s", pytrace=False)


@dataclass
class Server:
    """A store's server process; ``url`` its endpoint."""

    proc: subprocess.Popen[bytes]
    port: int
    url: str

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def start_server(name: str, argv: list[str], port: int, url: str, work: Path) -> Server:
    """``argv`` run in ``work``, its output in ``work/server.log`` (a pipe nobody reads would
    fill up and stall a server that logs every request)."""
    log = work / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=work)
    _wait_listening(port, proc, name, log)
    return Server(proc, port, url)


class Store(Protocol):
    """What the shared scenarios need of each store."""

    kind: str

    async def make_bucket(self, bucket: str) -> None: ...

    async def put(self, bucket: str, name: str, data: bytes) -> None: ...

    def destination(self, bucket: str, path: str = "", **fields: Any) -> Destination: ...

    def env(self) -> dict[str, str]: ...

    def lister(self, destination: Destination, env: dict[str, str] | None = None) -> Lister: ...


@dataclass
class S3Store:
    server: Server
    keys: dict[str, tuple[str, str]]
    kind: str = "s3"

    def env(self, user: str = "lister") -> dict[str, str]:
        key_id, secret = self.keys[user]
        return {"EXPORTER_S3_ACCESS_KEY_ID": key_id, "EXPORTER_S3_SECRET_ACCESS_KEY": secret}

    def destination(self, bucket: str, path: str = "", **fields: Any) -> Destination:
        return parse_destination(f"s3://{bucket}/{path}", endpoint=self.server.url,
                                 region="us-east-1", **fields)

    def lister(self, destination: Destination, env: dict[str, str] | None = None) -> Lister:
        return open_lister(destination, self.env() if env is None else env)

    async def _call(self, method: str, **kwargs: Any) -> None:
        key_id, secret = self.keys["writer"]
        async with get_session().create_client(
                "s3", region_name="us-east-1", endpoint_url=self.server.url,
                aws_access_key_id=key_id, aws_secret_access_key=secret) as client:
            await getattr(client, method)(**kwargs)

    async def make_bucket(self, bucket: str) -> None:
        await self._call("create_bucket", Bucket=bucket)

    async def put(self, bucket: str, name: str, data: bytes) -> None:
        await self._call("put_object", Bucket=bucket, Key=name, Body=data)


@dataclass
class GcsStore:
    server: Server
    kind: str = "gcs"

    def env(self) -> dict[str, str]:
        return {}

    def destination(self, bucket: str, path: str = "", **fields: Any) -> Destination:
        return parse_destination(f"gs://{bucket}/{path}", endpoint=self.server.url, **fields)

    def lister(self, destination: Destination, env: dict[str, str] | None = None) -> Lister:
        return open_lister(destination, {})

    async def make_bucket(self, bucket: str) -> None:
        # gcloud-aio-storage has no call for it: the JSON API's buckets.insert.
        async with aiohttp.ClientSession() as session, session.post(
                f"{self.server.url}/storage/v1/b", params={"project": "test"},
                json={"name": bucket}) as answer:
            assert answer.status == 200, await answer.text()

    async def put(self, bucket: str, name: str, data: bytes) -> None:
        from gcloud.aio.storage import Storage

        async with Storage(api_root=self.server.url) as storage:
            # The emulator needs a content type on uploads.
            await storage.upload(bucket, name, data, content_type="application/gzip")


@dataclass
class AzureStore:
    server: Server
    kind: str = "azure"
    created: set[str] = field(default_factory=set)

    def env(self, key: str = AZ_KEY) -> dict[str, str]:
        return {"EXPORTER_AZURE_STORAGE_KEY": key}

    def destination(self, bucket: str, path: str = "", **fields: Any) -> Destination:
        return parse_destination(f"az://{bucket}/{path}", account=AZ_ACCOUNT,
                                 endpoint=self.server.url, **fields)

    def lister(self, destination: Destination, env: dict[str, str] | None = None) -> Lister:
        return open_lister(destination, self.env() if env is None else env)

    def _client(self) -> Any:
        from azure.core.credentials import AzureNamedKeyCredential
        from azure.storage.blob.aio import BlobServiceClient

        return BlobServiceClient(self.server.url,
                                 credential=AzureNamedKeyCredential(AZ_ACCOUNT, AZ_KEY))

    async def make_bucket(self, bucket: str) -> None:
        async with self._client() as client:
            await client.create_container(bucket)

    async def put(self, bucket: str, name: str, data: bytes) -> None:
        async with self._client() as client:
            await client.get_blob_client(bucket, name).upload_blob(data)


def _s3_setup(url: str) -> dict[str, tuple[str, str]]:
    """IAM users on moto before its authentication is switched on: a writer that fills the
    buckets, a lister with docs/landing.md's policy, and a user with no policy at all."""
    import boto3

    iam = boto3.client("iam", region_name="us-east-1", endpoint_url=url,
                       aws_access_key_id="setup", aws_secret_access_key="setup")
    keys = {}
    for user, policy in (("writer", {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}),
            ("lister", LIST_POLICY), ("nobody", None)):
        iam.create_user(UserName=user)
        if policy is not None:
            iam.put_user_policy(UserName=user, PolicyName=f"{user}-policy",
                                PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        keys[user] = (key["AccessKeyId"], key["SecretAccessKey"])
    request = urllib.request.Request(f"{url}/moto-api/reset-auth", data=b"0", method="POST",
                                     headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
    return keys


@pytest.fixture(scope="session")
def s3_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Store]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                   "-p", str(port)], port, url, tmp_path_factory.mktemp("moto"))
    try:
        yield S3Store(server, _s3_setup(url))
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gcs_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsStore]:
    port = free_port()
    server = start_server("gcp-storage-emulator",
                          [sys.executable, "-m", "gcp_storage_emulator", "start", "--host",
                           "127.0.0.1", "--port", str(port), "--in-memory", "--quiet"],
                          port, f"http://127.0.0.1:{port}", tmp_path_factory.mktemp("gcs"))
    try:
        yield GcsStore(server)
    finally:
        server.stop()


def azurite_binary() -> Path:
    """Azurite's blob server, installed by ``npm ci`` from the lock file when missing."""
    require_binary("node")
    lock = AZURITE / "package-lock.json"
    installed = AZURITE / "node_modules" / ".package-lock.json"
    if not installed.is_file() or installed.stat().st_mtime < lock.stat().st_mtime:
        run_tool("npm", "ci", "--no-audit", "--no-fund", cwd=AZURITE, timeout=600)
    return AZURITE / "node_modules" / ".bin" / "azurite-blob"


@pytest.fixture(scope="session")
def azure_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzureStore]:
    port = free_port()
    work = tmp_path_factory.mktemp("azurite")
    server = start_server("azurite", [
        str(azurite_binary()), "--inMemoryPersistence", "--blobHost", "127.0.0.1",
        "--blobPort", str(port), "--skipApiVersionCheck", "--disableTelemetry"],
        port, f"http://127.0.0.1:{port}/{AZ_ACCOUNT}", work)
    try:
        yield AzureStore(server)
    finally:
        server.stop()


@pytest.fixture(params=["s3", "gcs", "azure"])
def store(request: pytest.FixtureRequest) -> Store:
    fixture: Store = request.getfixturevalue(f"{request.param}_store")
    return fixture


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


@pytest.fixture
async def lister_of(store: Store) -> AsyncIterator[Any]:
    """``lister_of(destination, env=None)``: a lister on ``store``, closed after the test."""
    opened: list[Lister] = []

    def make(destination: Destination, env: dict[str, str] | None = None) -> Lister:
        lister = store.lister(destination, env)
        opened.append(lister)
        return lister

    yield make
    for lister in opened:
        await lister.close()
