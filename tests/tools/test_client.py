"""The CLI subcommands send, replay, demo and check-config, against a real server."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from exporter.domain.declared import parse_config
from exporter.domain.normalize import frequency, partner
from exporter.tools import SUBCOMMANDS
from exporter.tools.client import clevertap_time
from exporter.tools.demo import DEMO_CONFIG, demo_events
from tests.helpers import ROOT, SAMPLES, ExporterProcess, event, labels, series

Run = subprocess.CompletedProcess[str]


def cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
        timeout: float = 60) -> Run:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTER_")}
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args], cwd=ROOT, input=stdin, text=True,
        capture_output=True, timeout=timeout, env={**clean, **(env or {})},
    )


@pytest.mark.parametrize("command", list(SUBCOMMANDS))
def test_every_subcommand_has_help_with_examples(command: str) -> None:
    run = cli(command, "--help")
    assert run.returncode == 0
    assert "examples:" in run.stdout and f"clevertap-export-exporter {command}" in run.stdout


def test_server_help_lists_the_subcommands() -> None:
    run = cli("--help")
    assert run.returncode == 0
    assert "--config.file" in run.stdout and "EXPORTER_CONFIG_FILE" in run.stdout
    for command in SUBCOMMANDS:
        assert f"  {command}" in run.stdout


def test_send_a_sample_file_and_stdin(
    exporter_process: Callable[..., ExporterProcess],
) -> None:
    exp = exporter_process()  # no subcommand: the server, with the existing flags
    exp.start()
    sample = SAMPLES / "completed-one-time-gcs.json"
    run = cli("send", "--url", exp.url, str(sample))
    assert run.returncode == 0 and run.stdout.strip() == '200 {"status": "accepted"}'
    run = cli("send", "--url", exp.url, str(sample))
    assert run.stdout.strip() == '200 {"status": "duplicate"}'

    run = cli("send", "--url", exp.url, "--account", "acme",
              stdin=(SAMPLES / "initiated-recurring-s3.json").read_text())
    assert run.returncode == 0 and "accepted" in run.stdout
    m = exp.metrics()
    assert m["clevertap_export_in_flight"][series(account="acme")] == 1

    # A refused body: the answer is printed and the exit status says it failed.
    run = cli("send", "--url", exp.url, "-", stdin='{"Partner": "S3"}')
    assert run.returncode == 1
    assert run.stdout.startswith("422 ") and "Export Request Id" in run.stdout


def test_send_now_rewrites_the_event_time(
    exporter_process: Callable[..., ExporterProcess],
) -> None:
    exp = exporter_process("--timezone", "Asia/Kolkata")
    exp.start()
    run = cli("send", "--url", exp.url, "--now", "--timezone", "Asia/Kolkata",
              str(SAMPLES / "completed-recurring-s3.json"))
    assert run.returncode == 0, run.stderr
    m = exp.metrics()
    (delay,) = m["clevertap_export_last_delivery_delay_seconds"].values()
    assert -1 <= delay < 5  # formatted in the same zone as the server reads it


def test_send_uses_the_servers_credentials(
    exporter_process: Callable[..., ExporterProcess], tmp_path: Path,
) -> None:
    exp = exporter_process("--auth-token", "s3cret", "--auth-header", "X-Webhook-Token")
    exp.start()
    sample = str(SAMPLES / "completed-one-time-gcs.json")
    run = cli("send", "--url", exp.url, sample)
    assert run.returncode == 1 and run.stdout.startswith("401 ")
    assert "accepted" in cli("send", "--url", exp.url, sample,
                             env={"EXPORTER_AUTH_TOKEN": "s3cret"}).stdout
    secret = tmp_path / "token"
    secret.write_text("s3cret\n")
    run = cli("send", sample, env={"EXPORTER_URL": exp.url,
                                   "EXPORTER_AUTH_TOKEN_FILE": str(secret),
                                   "EXPORTER_AUTH_HEADER": "X-Webhook-Token"})
    assert "duplicate" in run.stdout

    basic = exporter_process("--basic-auth-user", "ct", "--basic-auth-password", "pw",
                             state=tmp_path / "basic.db")
    basic.start()
    run = cli("send", "--url", basic.url, "--basic-auth-user", "ct",
              "--basic-auth-password", "pw", sample)
    assert run.returncode == 0 and "accepted" in run.stdout


def test_send_to_nothing_fails_clearly() -> None:
    run = cli("send", "--url", "http://127.0.0.1:9", "-", stdin="{}")
    assert run.returncode == 1 and "error: cannot post to http://127.0.0.1:9/webhook" in run.stderr


def test_replay_counts_and_rate_limit(
    exporter_process: Callable[..., ExporterProcess], tmp_path: Path,
) -> None:
    exp = exporter_process()
    exp.start()
    t0 = time.time() - 3600
    lines = [
        "# a comment, then an empty line",
        "",
        json.dumps(event(1, "Initiated", t0)),
        json.dumps(event(1, "Completed", t0 + 600)),
        json.dumps(event(1, "Completed", t0 + 600)),  # a redelivery
        json.dumps({"account": "acme", "payload": event(2, "Initiated", t0)}),  # an envelope
        '{"Partner": "S3"}',  # 422
        "not json",  # 400
        (SAMPLES / "clevertap-test-ping.json").read_text().replace("\n", ""),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    run = cli("replay", "--url", exp.url, "--rate", "20", str(path))
    elapsed = time.monotonic() - started
    assert run.returncode == 1  # something was rejected
    assert "replayed 7 payload(s)" in run.stdout
    assert "accepted 3, duplicate 1, test 1, rejected 2, failed 0" in run.stdout
    assert "line 7: HTTP 422" in run.stderr and "line 8: HTTP 400" in run.stderr
    assert "[" not in run.stderr.split("line 7")[0]  # no progress bar when not on a terminal
    assert elapsed >= 6 / 20  # 7 posts at 20 per second take at least 0.3 s
    m = exp.metrics()
    assert m["clevertap_export_in_flight"][series(account="acme")] == 1
    assert m["clevertap_export_status_events_total"][series(status="completed")] == 1

    ok = tmp_path / "ok.jsonl"
    ok.write_text(json.dumps(event(9, "Completed")) + "\n")
    run = cli("replay", "--url", exp.url, "--rate", "0", "--progress", str(ok))
    assert run.returncode == 0 and "accepted 1, duplicate 0" in run.stdout
    assert "[##############################] 1/1" in run.stderr


def test_demo_output_replays_and_matches_its_config(
    exporter_process: Callable[..., ExporterProcess], tmp_path: Path,
) -> None:
    config = tmp_path / "demo.yml"
    run = cli("demo", "--print-config")
    assert run.returncode == 0 and run.stdout == DEMO_CONFIG
    config.write_text(run.stdout)
    check = cli("check-config", str(config))
    assert check.returncode == 0 and "OK, 7 declared export(s)" in check.stdout

    day = tmp_path / "day.jsonl"
    run = cli("demo", "--output", str(day), "--seed", "3")
    assert run.returncode == 0 and f"to {day}" in run.stdout
    exp = exporter_process("--config.file", str(config))
    exp.start()
    run = cli("replay", "--url", exp.url, "--rate", "0", str(day))
    assert run.returncode == 0, run.stderr
    assert "rejected 0, failed 0" in run.stdout and "test 1" in run.stdout
    m = exp.metrics()
    in_flight = m["clevertap_export_in_flight"]
    assert in_flight[series(account="prod", partner="google_cloud_storage", frequency="8h")] == 1
    assert in_flight[series(account="staging", partner="google_cloud_storage",
                            export_type="profiles")] == 1
    # Every simulated export is declared, plus one that never reports.
    declared = {k for k in m["clevertap_export_declared_info"]}
    assert len(declared) == 7
    completed = m["clevertap_export_last_completed_timestamp_seconds"]
    never = series(account="prod", partner="azure_blob_storage", export_type="profiles",
                   frequency="24h")
    assert never not in completed and in_flight[never] == 0
    # The delivery delay of both accounts stays small: no time-zone alert from the demo.
    delays = m["clevertap_export_last_delivery_delay_seconds"]
    assert set(delays) == {labels(account="prod"), labels(account="staging")}


def test_demo_scenario() -> None:
    zone = ZoneInfo("UTC")
    now = time.time()
    events = demo_events(now, zone, random.Random(1))
    assert [t for t, _, _ in events] == sorted(t for t, _, _ in events)
    assert all(now - 86400 <= t <= now for t, _, _ in events)
    config = parse_config(DEMO_CONFIG)
    for _, account, body in events:
        key = (account, partner(body["Partner"]), body["Type"].lower(),
               frequency(body["Frequency"]))
        assert key in config.exports or key[3] == "one_time"
    # Follow mode schedules the healthy exports and the running one's completion.
    later = [e for e in demo_events(now, zone, random.Random(1), future=86400) if e[0] > now]
    assert any(b["Partner"] == "Google Cloud Storage" and b["Status"] == "Completed"
               and b["Frequency"] == "Every 8 hours" for _, _, b in later)
    assert not any(b["Partner"] == "Microsoft Azure" for _, _, b in later)  # stays late


def test_demo_posts_a_day(exporter_process: Callable[..., ExporterProcess]) -> None:
    exp = exporter_process()
    exp.start()
    run = cli("demo", "--url", exp.url, "--rate", "0")
    assert run.returncode == 0, run.stderr
    assert "test 1, rejected 0, failed 0" in run.stdout and "duplicate 1" in run.stdout
    assert f"open {exp.url}/" in run.stdout


def test_clevertap_time_format() -> None:
    ts = 1690303852.0  # 25/07/2023 4:50:52 PM UTC
    assert clevertap_time(ts, ZoneInfo("UTC")) == "25/07/2023 4:50:52 PM"
    assert clevertap_time(ts - 16 * 3600, ZoneInfo("UTC")) == "25/07/2023 12:50:52 AM"


def test_check_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("exports:\n  - {partner: S3, type: Events, frequency: 4h, max_runtme: 1h}\n")
    run = cli("check-config", str(bad))
    assert run.returncode == 1
    assert run.stderr.strip() == f"error: {bad}: exports[0].max_runtme: unknown key (check " \
                                 "the spelling)"
    run = cli("check-config", str(tmp_path / "missing.yml"))
    assert run.returncode == 1 and "cannot read configuration file" in run.stderr
    run = cli("check-config", str(ROOT / "docs" / "exports.example.yml"))
    assert run.returncode == 0, run.stderr


def test_demo_stops_early_without_an_exporter() -> None:
    run = cli("demo", "--url", "http://127.0.0.1:9", timeout=30)
    assert run.returncode == 1
    assert "error: cannot post to http://127.0.0.1:9/webhook/prod" in run.stderr
    assert "demo: posted" not in run.stdout
