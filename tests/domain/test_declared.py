"""Declared exports: the configuration file, its reload, and the series and thresholds it adds."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from exporter.domain.declared import ConfigError, ConfigHolder, load_config, parse_config
from tests.helpers import ROOT, Exporter, ExporterProcess, event, labels, series

COMPLETE = """
defaults:
  grace: 30m
  min_runtime: 1m
exports:
  - name: Events to the data lake
    account: prod
    partner: Amazon S3
    type: Events
    frequency: Every 4 hours
    grace: 1h
    max_runtime: 2h
  - partner: GCS
    export_type: profiles
    frequency: Daily
    min_runtime: 90
  - account: staging
    partner: Microsoft Azure
    type: Profiles
    frequency: One Time
    max_runtime: 3h
"""

StartExporter = Callable[..., Awaitable[Exporter]]


def write(tmp_path: Path, text: str, name: str = "exports.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- the file


def test_complete_example_is_normalized_like_webhooks() -> None:
    config = parse_config(COMPLETE)
    keys = list(config.exports)
    assert keys == [
        ("prod", "amazon_s3", "events", "4h"),
        ("default", "google_cloud_storage", "profiles", "24h"),
        ("staging", "azure_blob_storage", "profiles", "one_time"),
    ]
    first, second, third = config.exports.values()
    assert (first.name, first.grace, first.max_runtime, first.min_runtime) == (
        "Events to the data lake", 3600.0, 7200.0, 60.0)
    assert (second.name, second.grace, second.max_runtime, second.min_runtime) == (
        "", 1800.0, None, 90.0)
    assert first.interval == 4 * 3600 and third.interval is None


def test_an_empty_file_is_refused_and_exports_list_declares_nothing() -> None:
    """An empty file is most likely one caught mid-write: refused, so a reload keeps the last
    good configuration (issue 23, item 10); ``exports: []`` declares none."""
    for text in ("", "# nothing yet\n"):
        with pytest.raises(ConfigError, match="the file is empty"):
            parse_config(text)
    assert parse_config("exports: []\n").exports == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("exports: [", "not valid YAML"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("export:\n  - partner: S3\n", "export: unknown key"),
        ("exports:\n  - partner: S3\n    type: Events\n", "exports[0].frequency: required"),
        ("exports:\n  - partner: S3\n    type: Events\n    frequency: Daily\n    grase: 1h\n",
         "exports[0].grase: unknown key"),
        ("exports:\n  - partner: S3\n    type: Events\n    frequency: fortnightly\n",
         "exports[0].frequency: 'fortnightly' is not a frequency"),
        ("exports:\n  - partner: S3\n    type: Events\n    frequency: Daily\n    grace: soon\n",
         "exports[0].grace: invalid duration 'soon'"),
        ("exports:\n  - partner: S3\n    type: Events\n    frequency: Daily\n    grace: -5\n",
         "must be positive"),
        ("exports:\n  - partner: S3\n    type: Events\n    frequency: Daily\n"
         "    min_runtime: 2h\n    max_runtime: 1h\n", "min_runtime must be shorter"),
        ("defaults:\n  min_runtime: 3h\nexports:\n  - partner: S3\n    type: Events\n"
         "    frequency: Daily\n    max_runtime: 1h\n", "after applying defaults"),
        ("exports:\n  - partner: S3\n    type: Events\n    frequency: Daily\n"
         "    account: 'a b'\n", "exports[0].account"),
        ("exports:\n  - {partner: AWS S3, type: Events, frequency: Daily}\n"
         "  - {partner: Amazon S3, type: events, frequency: Every 24 hours}\n",
         "exports[1] declares the same export as exports[0]"),
    ],
)
def test_invalid_files_say_where_and_why(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, "exports.yml")
    assert message in str(err.value)
    assert str(err.value).startswith("exports.yml: ")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        load_config(tmp_path / "missing.yml")


def test_reload_keeps_the_old_configuration_on_error(tmp_path: Path) -> None:
    path = write(tmp_path, COMPLETE)
    clock = iter([100.0, 200.0, 300.0, 400.0])
    holder = ConfigHolder(path, clock=lambda: next(clock))
    holder.load_initial()
    assert len(holder.config.exports) == 3 and holder.last_success == 200.0
    path.write_text("exports: [")
    ok, message = holder.reload()
    assert not ok and "not valid YAML" in message
    assert len(holder.config.exports) == 3  # still in force
    assert not holder.last_reload_successful and holder.last_success == 200.0
    assert holder.reloads == {"success": 0, "failure": 1}
    path.write_text("exports:\n  - {partner: S3, type: Events, frequency: 8h}\n")
    assert holder.reload()[0]
    assert list(holder.config.exports) == [("default", "amazon_s3", "events", "8h")]
    assert holder.last_reload_successful and holder.last_success == 300.0
    assert holder.reloads == {"success": 1, "failure": 1}


# --------------------------------------------------------------------------- in the exporter


async def test_declared_series_exist_from_start_up(
    start_exporter: StartExporter, tmp_path: Path
) -> None:
    exp = await start_exporter("--config.file", str(write(tmp_path, COMPLETE)))
    m = await exp.metrics()
    prod = series(account="prod")
    daily = series(partner="google_cloud_storage", export_type="profiles", frequency="24h")
    once = series(account="staging", partner="azure_blob_storage", export_type="profiles",
                  frequency="one_time")
    assert m["clevertap_export_declared_info"] == {
        series(account="prod", name="Events to the data lake"): 1,
        series(partner="google_cloud_storage", export_type="profiles", frequency="24h",
               name=""): 1,
        series(account="staging", partner="azure_blob_storage", export_type="profiles",
               frequency="one_time", name=""): 1,
    }
    assert m["clevertap_export_in_flight"] == {prod: 0, daily: 0, once: 0}
    assert m["clevertap_export_expected_interval_seconds"] == {
        (*prod, ("source", "clevertap")): 14400, (*daily, ("source", "clevertap")): 86400}
    assert m["clevertap_export_grace_seconds"] == {prod: 3600, daily: 1800, once: 1800}
    assert m["clevertap_export_max_runtime_seconds"] == {prod: 7200, once: 10800}
    assert m["clevertap_export_min_runtime_seconds"] == {prod: 60, daily: 90, once: 60}
    declared_at = m["clevertap_export_declared_timestamp_seconds"]
    assert set(declared_at) == {prod, daily, once}
    assert all(abs(v - time.time()) < 60 for v in declared_at.values())
    # Never reported: no completion yet.
    assert "clevertap_export_last_completed_timestamp_seconds" not in m
    assert m["clevertap_export_config_last_reload_successful"][()] == 1

    # A webhook for the declared export lands on the declared series.
    body = event(7, "Completed", partner="AWS S3", frequency="every 4 hrs")
    assert await exp.post(body, "prod") == (200, {"status": "accepted"})
    m = await exp.metrics()
    assert prod in m["clevertap_export_last_completed_timestamp_seconds"]


async def test_declared_label_values_are_outside_the_cap(
    start_exporter: StartExporter, tmp_path: Path
) -> None:
    config = write(tmp_path, "exports:\n  - {partner: Azure, type: Events, frequency: 12h}\n")
    exp = await start_exporter("--config.file", str(config), "--max-label-values", "1")
    assert (await exp.post(event(1, "Completed", partner="S3")))[0] == 200  # fills the cap
    assert (await exp.post(event(2, "Completed", partner="GCS")))[0] == 200  # folds
    assert (await exp.post(event(3, "Completed", partner="Azure",
                                 frequency="Every 12 hours")))[0] == 200
    m = await exp.metrics()
    completed = m["clevertap_export_last_completed_timestamp_seconds"]
    assert series(partner="azure_blob_storage", frequency="12h") in completed
    assert series(partner="other") in completed
    assert m["clevertap_export_label_overflow_total"][labels(label="partner")] == 1


async def test_a_flood_of_reload_requests_coalesces(start_exporter: StartExporter,
                                                   tmp_path: Path) -> None:
    """16 clients posting ``/-/reload`` at once cost a reload at a time, not 16 queued reads and
    store writes ahead of ``/readyz`` (issue 23, item 11); each gets the result of a reload that
    started after it asked, so a file written before the request is what it reads."""
    path = write(tmp_path, COMPLETE)
    exp = await start_exporter("--config.file", str(path))
    lines = [f"  - {{partner: S3, type: Events, frequency: 8h, account: a{i}}}"
             for i in range(200)]
    path.write_text("exports:\n" + "\n".join(lines) + "\n")
    answers = await asyncio.gather(*(exp.client.post("/-/reload") for _ in range(16)))
    assert [a.status for a in answers] == [200] * 16
    messages = {(await a.json())["message"] for a in answers}
    assert messages == {"configuration reloaded: 200 declared export(s)"}
    m = await exp.metrics()
    reloads = m["clevertap_export_config_reloads_total"][labels(result="success")]
    assert 1 <= reloads <= 4, f"{reloads} reloads for 16 requests"
    assert (await exp.client.get("/readyz")).status == 200


async def test_reload_endpoint(start_exporter: StartExporter, tmp_path: Path) -> None:
    path = write(tmp_path, COMPLETE)
    exp = await start_exporter("--config.file", str(path))
    path.write_text("exports:\n  - {partner: S3, type: Events, frequency: 8h, grace: oops}\n")
    resp = await exp.client.post("/-/reload")
    assert resp.status == 500
    doc = await resp.json()
    assert "exports[0].grace: invalid duration 'oops'" in doc["error"]
    m = await exp.metrics()
    assert len(m["clevertap_export_declared_info"]) == 3  # the old configuration
    assert m["clevertap_export_config_last_reload_successful"][()] == 0
    assert m["clevertap_export_config_reloads_total"][labels(result="failure")] == 1
    before = m["clevertap_export_config_last_reload_success_timestamp_seconds"][()]

    path.write_text("exports:\n  - {partner: S3, type: Events, frequency: 8h, grace: 2h}\n")
    resp = await exp.client.post("/-/reload")
    assert resp.status == 200
    assert (await resp.json())["message"] == "configuration reloaded: 1 declared export(s)"
    m = await exp.metrics()
    assert m["clevertap_export_declared_info"] == {series(frequency="8h", name=""): 1}
    # Exports no longer declared and never seen are gone; the new one is present.
    assert m["clevertap_export_in_flight"] == {series(frequency="8h"): 0}
    assert m["clevertap_export_grace_seconds"] == {series(frequency="8h"): 7200}
    assert m["clevertap_export_config_last_reload_successful"][()] == 1
    assert m["clevertap_export_config_last_reload_success_timestamp_seconds"][()] >= before
    assert m["clevertap_export_config_reloads_total"][labels(result="success")] == 1


async def test_reload_without_a_file_is_harmless(exporter: Exporter) -> None:
    resp = await exporter.client.post("/-/reload")
    assert resp.status == 200
    assert "nothing to reload" in (await resp.json())["message"]


def test_invalid_file_at_start_up_refuses_to_start(tmp_path: Path) -> None:
    path = write(tmp_path, "exports:\n  - {partner: S3, type: Events, frequency: sometimes}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "exporter", "--port", "0", "--state-path",
         str(tmp_path / "s.db"), "--config.file", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 1
    assert "exports[0].frequency: 'sometimes' is not a frequency" in proc.stderr


def test_sighup_reloads_and_declared_time_survives_restart(
    exporter_process: Callable[..., ExporterProcess], tmp_path: Path
) -> None:
    path = write(tmp_path, "exports:\n  - {partner: S3, type: Events, frequency: 4h}\n")
    exp = exporter_process("--config.file", str(path))
    exp.start()
    first = exp.metrics()["clevertap_export_declared_timestamp_seconds"]
    assert list(first) == [series()]

    path.write_text("exports:\n  - {partner: S3, type: Events, frequency: 4h}\n"
                    "  - {partner: GCS, type: Events, frequency: 8h, max_runtime: 1h}\n")
    assert exp.proc is not None
    exp.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        m = exp.metrics()
        if len(m.get("clevertap_export_declared_info", {})) == 2:
            break
        time.sleep(0.05)
    gcs = series(partner="google_cloud_storage", frequency="8h")
    assert m["clevertap_export_max_runtime_seconds"] == {gcs: 3600}

    path.write_text("not: [valid")
    exp.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        m = exp.metrics()
        if m["clevertap_export_config_last_reload_successful"][()] == 0:
            break
        time.sleep(0.05)
    assert m["clevertap_export_config_last_reload_successful"][()] == 0
    assert len(m["clevertap_export_declared_info"]) == 2
    assert exp.proc.poll() is None  # still serving

    # After a restart the first-declared time is the same: the overdue clock of a
    # never-reporting export does not restart with the process.
    path.write_text("exports:\n  - {partner: S3, type: Events, frequency: 4h}\n")
    exp.stop()
    exp.start()
    again = exp.metrics()["clevertap_export_declared_timestamp_seconds"]
    assert again[series()] == first[series()]


def test_a_reload_of_a_truncated_file_keeps_the_last_good_configuration(tmp_path: Path) -> None:
    path = tmp_path / "exports.yml"
    path.write_text("exports:\n  - partner: Amazon S3\n    type: Events\n    frequency: 4h\n")
    holder = ConfigHolder(path)
    assert len(holder.load_initial().exports) == 1
    path.write_text("")  # a writer caught between truncating and writing
    ok, message = holder.reload()
    assert not ok and "the file is empty" in message
    assert len(holder.config.exports) == 1 and not holder.last_reload_successful
    assert holder.reloads == {"success": 0, "failure": 1}
