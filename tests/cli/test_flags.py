"""The flag table (``exporter/cli/flags.py``): each flag fills one ``Settings`` field, and flags,
environment variables, secret files and their validation."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from exporter.cli.flags import RECORDS, all_flags, build_parser, parse_settings
from exporter.domain.durations import parse_duration
from exporter.domain.payload import DEFAULT_WINDOW, TimeWindow
from exporter.web.settings import Settings
from tests.helpers import ROOT


def test_every_flag_fills_one_field_and_every_field_has_one_flag() -> None:
    # What makes a new flag cost its row and its field, nothing else: parse_settings builds
    # every record from the rows, so a row without a field, or a field without a row, fails.
    filled = [flag.fills for flag in all_flags()]
    assert len(filled) == len(set(filled)), "two flags fill one field"
    assert set(filled) == {f"{name}.{field.name}" for name, record in RECORDS.items()
                           for field in fields(record)}
    # Settings is its records, and the one switch no row defines (the hidden --bench-noop).
    assert {field.name for field in fields(Settings)} - RECORDS.keys() == {"bench_noop"}
    assert set(RECORDS) == {"listen", "auth", "state", "events", "limits", "logging",
                            "landing"}


def test_every_flag_reaches_its_field() -> None:
    # Each field holds what its own flag says: a value unlike its default arrives there.
    argv = ["--port", "9100", "--metrics-port", "9101", "--auth-token", "t", "--auth-header",
            "X-T", "--basic-auth-user", "u", "--basic-auth-password", "p", "--oauth-client-id",
            "c", "--oauth-client-secret", "s", "--oauth-token-ttl", "2m", "--oauth-signing-key",
            "k", "--oauth-username", "ou", "--oauth-password", "op", "--oauth-refresh-token-ttl",
            "3d", "--allow-cidr", "10.0.0.0/8", "--trusted-proxy", "10.0.0.1", "--state-path",
            "x.db", "--state-init", "--state-skip-corrupt", "--in-flight-timeout", "1h",
            "--retention", "2h", "--timezone", "Asia/Kolkata", "--event-time-max-ahead", "3h",
            "--event-time-min", "2020-01-01", "--config.file", "e.yml", "--max-label-values", "5",
            "--max-series", "6", "--max-remembered-deliveries", "7", "--max-runs", "8",
            "--max-body-bytes", "9", "--read-timeout", "4s", "--idle-timeout", "5s",
            "--max-concurrent-requests", "10", "--log-level", "debug", "--log-format", "json",
            "--access-log", "--host", "127.0.0.1", "--landing-settle", "2m",
            "--landing-retry-for", "1h", "--landing-concurrency", "2"]
    s = parse_settings(argv, env={})
    d = parse_settings([], env={})
    changed = {f"{name}.{field.name}" for name in RECORDS for field in fields(RECORDS[name])
               if getattr(getattr(s, name), field.name) != getattr(getattr(d, name), field.name)}
    # --web.config.file, --oauth-client-public-key and --state-url have their own tests (they
    # read a file, a database).
    assert changed == {flag.fills for flag in all_flags()} - {
        "listen.web_config", "auth.oauth_client_public_key", "state.url"}
    assert (s.limits.max_runs, s.auth.oauth_token_ttl, s.logging.level) == (8, 120, "DEBUG")
    assert (s.landing.settle, s.landing.retry_for, s.landing.concurrency) == (120, 3600, 2)


def test_bench_noop_works_but_is_left_out_of_help_and_docs() -> None:
    assert parse_settings(["--bench-noop"], env={}).bench_noop
    assert "--bench-noop" not in build_parser({}).format_help()
    assert "--bench-noop" not in (ROOT / "docs" / "configuration.md").read_text()


@pytest.mark.parametrize(("text", "seconds"), [
    ("48h", 172800.0), ("90m", 5400.0), ("30s", 30.0), ("1h30m", 5400.0), ("7d", 604800.0),
    ("1w", 604800.0), ("500ms", 0.5), ("3600", 3600.0), ("2.5", 2.5),
])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "10x", "h", "-5", "0", "5h garbage", "inf"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(Exception, match="duration"):
        parse_duration(text)


def test_defaults() -> None:
    s = parse_settings([], env={})
    assert (s.listen.host, s.listen.port, s.listen.metrics_port) == ("0.0.0.0", 9877, None)
    assert s.state.path == Path("data/state.db")
    assert str(s.events.timezone) == "UTC"
    assert s.limits.in_flight_timeout == 48 * 3600
    assert (s.limits.max_label_values, s.limits.max_body_bytes) == (32, 65536)
    assert s.webhook_open and not s.logging.access_log and not s.bench_noop


def test_environment_and_flag_precedence(tmp_path: Path) -> None:
    env = {"EXPORTER_PORT": "9100", "EXPORTER_TIMEZONE": "Asia/Kolkata",
           "EXPORTER_IN_FLIGHT_TIMEOUT": "90m", "EXPORTER_AUTH_TOKEN": "from-env",
           "EXPORTER_ACCESS_LOG": "true"}
    s = parse_settings([], env=env)
    assert (s.listen.port, str(s.events.timezone), s.limits.in_flight_timeout) == (
        9100, "Asia/Kolkata", 5400.0)
    assert s.auth.auth_token == "from-env" and s.logging.access_log
    assert parse_settings(["--port", "9200"], env=env).listen.port == 9200


def test_secret_files(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("file-secret\n")
    password = tmp_path / "password"
    password.write_text("pw")
    s = parse_settings(["--basic-auth-user", "ct"], env={
        "EXPORTER_AUTH_TOKEN_FILE": str(token),
        "EXPORTER_BASIC_AUTH_PASSWORD_FILE": str(password)})
    assert (s.auth.auth_token, s.auth.basic_auth_password) == ("file-secret", "pw")


@pytest.mark.parametrize(("argv", "message"), [
    (["--timezone", "Mars/Base"], "time zone"),
    (["--port", "70000"], "out of range"),
    (["--basic-auth-user", "x"], "go together"),
    (["--auth-header", "X-T"], "needs --auth-token"),
    (["--auth-token", "t", "--auth-header", "bad header"], "header name"),
    (["--max-label-values", "0"], "at least 1"),
    (["--log-format", "xml"], "text or json"),
    (["--metrics-port", "9877"], "must differ"),
    (["--in-flight-timeout", "forever"], "duration"),
])
def test_invalid_flags_exit_with_reason(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_settings(argv, env={})
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "env"), [
    (["--auth-token", "change-me"], {}),
    ([], {"EXPORTER_AUTH_TOKEN": "CHANGE_ME"}),
    (["--basic-auth-user", "ct", "--basic-auth-password", "<password>"], {}),
    (["--oauth-client-id", "ct", "--oauth-client-secret", "your-secret"], {}),
    (["--oauth-client-id", "ct", "--oauth-client-secret", "a1b2c3", "--oauth-signing-key",
      "replace me"], {}),
], ids=["token", "token-env", "basic", "oauth", "signing-key"])
def test_placeholder_secrets_are_refused_in_one_line(
    argv: list[str], env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_settings(argv, env=env)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert "a placeholder from an example: set a secret of your own" in err


def test_a_placeholder_from_a_secret_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = tmp_path / "token"
    token.write_text("changeme\n")
    with pytest.raises(SystemExit):
        parse_settings([], env={"EXPORTER_AUTH_TOKEN_FILE": str(token)})
    assert "--auth-token (EXPORTER_AUTH_TOKEN) is 'changeme'" in capsys.readouterr().err


def test_missing_secret_file_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_settings([], env={"EXPORTER_AUTH_TOKEN_FILE": "/nonexistent/token"})
    assert "EXPORTER_AUTH_TOKEN_FILE" in capsys.readouterr().err


def test_event_time_flags_default_to_the_domains_window() -> None:
    # The flags' defaults ("1d", "2015-01-01") are text; they must mean the domain's window.
    assert parse_settings(["--state-path", "x.db"], env={}).events.window == DEFAULT_WINDOW
    custom = parse_settings(["--event-time-max-ahead", "2h", "--event-time-min", "2020-01-01"],
                            env={}).events.window
    assert custom == TimeWindow(7200.0, 1577836800.0)


@pytest.mark.parametrize(("argv", "error"), [
    (["--state-url", "postgresql://u:hunter2@127.0.0.1:99999/db"],
     "error: --state-url has an invalid port: Port out of range 0-65535"),
    (["--state-url", "postgresql://u:hunter2@127.0.0.1:abc/db"],
     "error: --state-url has an invalid port: Port could not be cast to integer value as 'abc'"),
    (["send", "--url", "http://127.0.0.1:99999"],
     "error: --url has an invalid port: Port out of range 0-65535"),
    (["replay", "--url", "http://127.0.0.1:abc", "-"],
     "error: --url has an invalid port: Port could not be cast to integer value as 'abc'"),
], ids=["state-url-range", "state-url-text", "url-range", "url-text"])
def test_a_bad_port_is_one_line_not_a_traceback(argv: list[str], error: str) -> None:
    """As the program is run: a bad port in ``--state-url`` or ``--url`` is one line naming the
    flag, without the password (issue 23, item 14), not a 46-line traceback."""
    proc = subprocess.run([sys.executable, "-m", "exporter", *argv], cwd=ROOT, input="",
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode in (1, 2), proc.stderr
    assert "Traceback" not in proc.stderr and "hunter2" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].endswith(error), proc.stderr
