"""``make deps``: the Debian packages come from one list, and a non-root user is told the line."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
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


def _debian_archives() -> set[str]:
    """The package files of ``apt-cache policy`` whose release is Debian's own."""
    lines = subprocess.run(["apt-cache", "policy"], capture_output=True, text=True,
                           check=True).stdout.splitlines()
    return {line.split(None, 1)[1] for line, release in itertools.pairwise(lines)
            if "o=Debian" in release and line.strip().split(None, 1)[0].isdigit()}


def test_every_listed_package_comes_from_debians_own_archive() -> None:
    """A plain Debian machine (only Debian's sources) must pass ``make test``: no entry may
    rely on a package another repository added to a machine image (issue 21, item 1)."""
    if shutil.which("apt-cache") is None:
        pytest.fail("apt-cache is missing: this check needs a Debian machine", pytrace=False)
    archives = _debian_archives()
    assert archives, "apt-cache policy lists no Debian archive: run apt-get update first"
    foreign = []
    for name in deps.packages():
        table = subprocess.run(["apt-cache", "policy", name], capture_output=True, text=True,
                               check=True).stdout
        sources = {line.strip().split(None, 1)[1] for line in table.splitlines()
                   if re.match(r"\s+\d+ \S+ \S+ \S+ Packages$", line)}
        if not sources & archives:
            foreign.append(name)
    assert not foreign, f"not in Debian's archive: {foreign}"
