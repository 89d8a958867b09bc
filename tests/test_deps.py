"""``make deps``: the Debian packages come from one list, and a non-root user is told the line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import deps


def test_every_command_the_tests_require_is_in_the_list() -> None:
    listed = deps.packages()
    assert listed["prometheus"] == ["promtool", "prometheus"]
    assert deps.package_of("amtool") == "prometheus-alertmanager"
    assert "postgresql" in listed and deps.package_of("chromedriver") == "chromium-driver"


def test_a_missing_package_stops_a_non_root_user_with_the_install_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    listing = tmp_path / "debian-packages.txt"
    listing.write_text("# a package no Debian has\nno-such-deb-here: nosuchcmd\n")
    monkeypatch.setattr(deps, "LIST", listing)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert deps.main() == 1
    err = capsys.readouterr().err
    assert ("apt-get update && apt-get install -y --no-install-recommends "
            "no-such-deb-here") in err


def test_nothing_to_do_when_everything_is_installed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listing = tmp_path / "debian-packages.txt"
    listing.write_text("dpkg: dpkg-query\n")  # installed on every Debian machine
    monkeypatch.setattr(deps, "LIST", listing)
    assert deps.main() == 0
