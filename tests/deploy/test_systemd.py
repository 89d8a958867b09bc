"""The systemd unit verifies, is hardened, and its environment runs the exporter as the unit
would: an unprivileged user, its state directory, the unit's umask, no writable-executable
memory, and a reload by SIGHUP."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.bundle.conftest import Server, http, run_tool, wait_until
from tests.deploy.conftest import DYNAMIC_UID, ImageVenv, as_user, give
from tests.helpers import ROOT, free_port, parse_metrics, require_binary

UNIT = ROOT / "deploy" / "systemd" / "clevertap-export-exporter.service"
ENV_FILE = ROOT / "deploy" / "systemd" / "exporter.env"
#: systemd's PATH for services.
SERVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# MemoryDenyWriteExecute= is the prctl PR_SET_MDWE (65) with PR_MDWE_REFUSE_EXEC_GAIN (1),
# kept across execve: the exporter then runs as under the unit.
MDWE = ("import ctypes, os, sys\n"
        "os.umask(int(sys.argv[1], 8))\n"
        "if ctypes.CDLL(None, use_errno=True).prctl(65, 1, 0, 0, 0) != 0:\n"
        "    sys.exit('prctl(PR_SET_MDWE) failed: errno %d' % ctypes.get_errno())\n"
        "os.execv(sys.argv[2], sys.argv[2:])\n")


def service() -> dict[str, list[str]]:
    """The [Service] section: each directive with all its values, in order."""
    found: dict[str, list[str]] = {}
    section = ""
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def env_file() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_FILE.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#"))
    return {k: v for k, v in pairs}


def test_the_shipped_placeholder_token_is_refused(tmp_path: Path) -> None:
    """The env file as shipped does not start an exporter anyone can post to with its token."""
    here = {"EXPORTER_HOST": "127.0.0.1", "EXPORTER_PORT": str(free_port()),
            "EXPORTER_METRICS_PORT": str(free_port()),
            "EXPORTER_STATE_PATH": str(tmp_path / "state.db")}
    run = subprocess.run([sys.executable, "-m", "exporter"], cwd=ROOT, capture_output=True,
                         text=True, timeout=30,
                         env={"PATH": os.environ["PATH"], **env_file(), **here}, check=False)
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        "clevertap-export-exporter: error: --auth-token (EXPORTER_AUTH_TOKEN) is 'change-me', "
        "a placeholder from an example: set a secret of your own, e.g. from "
        "'openssl rand -hex 32'"]


def script(venv: ImageVenv) -> Path:
    """ExecStart's console script in the image's fresh venv, a stand-in for /opt's."""
    [exec_start] = service()["ExecStart"]
    return venv.bin / Path(exec_start).name


def stand_in_unit(tmp: Path, venv: ImageVenv) -> Path:
    """The unit with ExecStart pointing at a real install: verify wants the binary to exist,
    and nothing is installed in /opt here."""
    [exec_start] = service()["ExecStart"]
    text = UNIT.read_text()
    path = tmp / UNIT.name
    path.write_text(text.replace(f"ExecStart={exec_start}", f"ExecStart={script(venv)}"))
    assert path.read_text() != text
    return path


def test_unit_passes_systemd_analyze_verify(tmp_path: Path, image_venv: ImageVenv) -> None:
    binary = require_binary("systemd-analyze")
    out = run_tool("systemd-analyze", "verify", stand_in_unit(tmp_path, image_venv))
    assert out.stdout + out.stderr == ""
    # The unit as shipped fails only for the missing binary, so the stand-in hides nothing.
    original = subprocess.run([binary, "verify", str(UNIT)], capture_output=True, text=True,
                              check=False, timeout=60)
    problems = [p for p in (original.stdout + original.stderr).splitlines() if p]
    [exec_start] = service()["ExecStart"]
    assert problems == [f"{UNIT.name}: Command {exec_start} is not executable: "
                        "No such file or directory"]


def test_unit_is_hardened(tmp_path: Path, image_venv: ImageVenv) -> None:
    s = service()
    expected = {"DynamicUser": "yes", "StateDirectory": "clevertap-export-exporter",
                "ProtectSystem": "strict", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
                "ProtectHome": "yes", "MemoryDenyWriteExecute": "yes", "CapabilityBoundingSet": ""}
    assert {k: s[k][-1] for k in expected} == expected
    assert s["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["EnvironmentFile"] == ["/etc/clevertap-export-exporter/exporter.env"]
    out = run_tool("systemd-analyze", "security", "--offline=yes",
                   stand_in_unit(tmp_path, image_venv))
    match = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", out.stdout)
    assert match, out.stdout[-2000:]
    assert float(match.group(1)) <= 1.5, out.stdout


def test_unit_environment_runs_and_reloads_the_exporter(
        tmp_path: Path, shared_tmp: Path, image_venv: ImageVenv,
        servers: Callable[..., Server]) -> None:
    s = service()
    state_root = shared_tmp / "state"  # %S
    state_dir = state_root / s["StateDirectory"][0]
    state_dir.mkdir(parents=True, mode=0o700)
    config_dir = shared_tmp / "etc"
    config_dir.mkdir()
    shutil.copy(ROOT / "docs" / "exports.example.yml", config_dir / "exports.yml")
    give(state_dir, DYNAMIC_UID)
    env = {"PATH": SERVICE_PATH}
    for assignment in s["Environment"]:
        key, _, value = assignment.partition("=")
        env[key] = value.replace("%S", str(state_root))
    env.update(env_file())
    port, metrics_port = free_port(), free_port()
    env.update({"EXPORTER_HOST": "127.0.0.1", "EXPORTER_PORT": str(port),
                "EXPORTER_METRICS_PORT": str(metrics_port),
                # the line the env file has commented out, with the guide's file
                "EXPORTER_CONFIG_FILE": str(config_dir / "exports.yml"),
                # the placeholder replaced, as the guide's $EDITOR step does
                "EXPORTER_AUTH_TOKEN": secrets.token_hex(32)})
    assert set(env_file()) - {"EXPORTER_HOST", "EXPORTER_PORT", "EXPORTER_METRICS_PORT",
                              "EXPORTER_AUTH_TOKEN"}
    argv = [*as_user(DYNAMIC_UID), str(image_venv.bin / "python"), "-c", MDWE, s["UMask"][0],
            str(script(image_venv))]
    base = f"http://127.0.0.1:{metrics_port}"
    exporter = servers("systemd", argv, tmp_path / "exporter.log", f"{base}/readyz", env)
    exporter.wait_ready()

    token = {"Authorization": f"Bearer {env['EXPORTER_AUTH_TOKEN']}"}
    body = {"Export Request Id": 1, "Partner": "AWS S3", "Status": "Initiated"}
    assert http("POST", f"http://127.0.0.1:{port}/webhook", body, headers=token)[0] == 200
    state = state_dir / "state.db"
    assert state.stat().st_uid == state_dir.stat().st_uid  # DYNAMIC_UID when root
    assert state.stat().st_mode & 0o077 == 0, "UMask=0077 leaves the state private"

    reload = shlex.split(s["ExecReload"][0].replace("$MAINPID", str(exporter.proc.pid)))
    subprocess.run(reload, check=True, timeout=10)

    def reloads() -> float:
        samples = parse_metrics(http("GET", f"{base}/metrics")[1])
        return samples["clevertap_export_config_reloads_total"].get(
            (("result", "success"),), 0.0)

    wait_until("the SIGHUP reload", lambda: reloads() == 1.0, timeout=10)
    assert exporter.proc.poll() is None
