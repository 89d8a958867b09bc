"""Forgetting an account or a series by hand: the authenticated API route and the ``forget``
subcommand; the state file keeps it across a restart (PostgreSQL replicas: tests/store)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from exporter.tools.demo import DEMO_CONFIG
from tests.helpers import Exporter, ExporterProcess, event, series
from tests.tools.test_client import cli

Start = Callable[..., Awaitable[Exporter]]
TOKEN = {"Authorization": "Bearer s3cret"}
GCS = {"partner": "Google Cloud Storage", "frequency": "One Time"}


def accounts(m: dict[str, dict[tuple[tuple[str, str], ...], float]]) -> set[str]:
    """The accounts any sample names."""
    return {v for samples in m.values() for labels in samples for k, v in labels if k == "account"}


async def feed(exp: Exporter) -> None:
    """Two series of account ``demo`` (one in flight), one of ``prod``."""
    t0 = time.time() - 3600
    for body, account in ((event(1, "Initiated", t0, **GCS), "demo"),
                          (event(1, "Completed", t0 + 60, **GCS), "demo"),
                          (event(2, "Initiated", t0 + 120), "demo"),
                          (event(3, "Initiated", t0), "prod")):
        assert (await exp.post(body, account, TOKEN))[0] == 200


async def forget_amid_events(exp: Exporter, account: str) -> None:
    """An event of ``account``, then two more and a forget of it queued in one loop turn, so
    that they share a commit."""
    t0 = time.time() - 600
    assert (await exp.post(event(1, "Initiated", t0), account))[0] == 200
    await asyncio.gather(exp.post(event(2, "Initiated", t0 + 1), account),
                         exp.tracker.forget(account),
                         exp.post(event(3, "Initiated", t0 + 2), account))


async def test_forget_an_account_for_good(start_exporter: Start, tmp_path: Path) -> None:
    exp = await start_exporter("--auth-token", "s3cret")
    await feed(exp)
    assert accounts(await exp.metrics()) == {"demo", "prod"}
    resp = await exp.client.delete("/api/v1/exports/demo", headers=TOKEN)
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    assert doc["status"] == "forgotten"
    assert sorted(s["partner"] for s in doc["series"]) == ["amazon_s3", "google_cloud_storage"]
    m = await exp.metrics()
    assert accounts(m) == {"prod"}  # its series, runs and delivery delay
    assert m["clevertap_export_in_flight"][series(account="prod")] == 1
    listed = await (await exp.client.get("/api/v1/exports")).json()
    assert [e["account"] for e in listed["exports"]] == ["prod"]
    await exp.client.close()

    again = await start_exporter("--auth-token", "s3cret", state=exp.state)
    assert accounts(await again.metrics()) == {"prod"}
    assert len(again.tracker.runs) == 1 and len(again.tracker.deliveries) == 1
    # Forgotten is forgotten: the account's old events count anew.
    assert (await again.post(event(2, "Initiated", time.time() - 60), "demo", TOKEN)) == (
        200, {"status": "accepted"})


async def test_a_forget_batched_with_events_survives_a_restart(start_exporter: Start) -> None:
    """Events and a forget of their series in one group commit: the file ends as the model."""
    exp = await start_exporter()
    await forget_amid_events(exp, "demo")
    before = await exp.metrics()
    await exp.client.close()
    again = await start_exporter(state=exp.state)
    after = await again.metrics()
    family = "clevertap_export_in_flight"
    assert after[family] == before[family] and after.get("clevertap_export_last_delivery_"
                                                          "delay_seconds") == before.get(
        "clevertap_export_last_delivery_delay_seconds")


async def test_forget_one_series(start_exporter: Start) -> None:
    exp = await start_exporter("--auth-token", "s3cret")
    await feed(exp)
    resp = await exp.client.delete(
        "/api/v1/exports/demo/google_cloud_storage/events/one_time", headers=TOKEN)
    assert resp.status == 200, await resp.text()
    m = await exp.metrics()
    assert series(account="demo", partner="google_cloud_storage",
                  frequency="one_time") not in m["clevertap_export_in_flight"]
    assert m["clevertap_export_in_flight"][series(account="demo")] == 1
    assert (("account", "demo"),) in m["clevertap_export_last_delivery_delay_seconds"]


async def test_forget_refuses_what_it_must(start_exporter: Start, tmp_path: Path) -> None:
    open_ = await start_exporter(state=tmp_path / "open.db")
    resp = await open_.client.delete("/api/v1/exports/default")
    assert resp.status == 403 and "--auth-token" in (await resp.json())["error"]
    await open_.client.close()

    config = tmp_path / "demo.yml"
    config.write_text(DEMO_CONFIG)
    exp = await start_exporter("--auth-token", "s3cret", "--config.file", str(config))
    await feed(exp)
    resp = await exp.client.delete("/api/v1/exports/demo")
    assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    resp = await exp.client.delete("/api/v1/exports/nobody", headers=TOKEN)
    assert resp.status == 404 and "GET /api/v1/exports lists them" in (await resp.json())["error"]
    resp = await exp.client.delete("/api/v1/exports/demo/amazon_s3/profiles/4h", headers=TOKEN)
    assert resp.status == 404
    # A declared export would come back from the configuration: named, and nothing forgotten.
    declared = next(iter(exp.tracker.declared))
    resp = await exp.client.delete(f"/api/v1/exports/{declared[0]}", headers=TOKEN)
    assert resp.status == 409 and "--config.file" in (await resp.json())["error"]
    assert declared in exp.tracker.series


def test_forget_subcommand(exporter_process: Callable[..., ExporterProcess]) -> None:
    exp = exporter_process("--auth-token", "s3cret")
    exp.start()
    t0 = time.time() - 600
    for account in ("demo", "prod"):
        cli("send", "--url", exp.url, "--account", account, "--auth-token", "s3cret", "-",
            stdin=f'{{"Export Request Id": 1, "Partner": "Amazon S3", "Status": "Initiated", '
                  f'"Date and Time": {t0}}}')
    assert accounts(exp.metrics()) == {"demo", "prod"}
    run = cli("forget", "--url", exp.url, "--account", "demo")
    assert run.returncode == 1 and run.stdout.startswith("401 ")
    run = cli("forget", "--url", f"{exp.url}/webhook/demo", "--partner", "amazon_s3",
              env={"EXPORTER_AUTH_TOKEN": "s3cret"})
    assert run.returncode == 1 and "all of --partner, --export-type and --frequency" in run.stderr
    run = cli("forget", "--url", f"{exp.url}/webhook/demo", env={"EXPORTER_AUTH_TOKEN": "s3cret"})
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith('200 {"status": "forgotten"')
    assert accounts(exp.metrics()) == {"prod"}
