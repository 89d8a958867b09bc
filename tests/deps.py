"""Install, or name, the Debian packages the tests need (``tests/debian-packages.txt``).

``python3 tests/deps.py`` (``make deps``): as root, ``apt-get update`` once and install what is
missing; as anyone else, exit 1 with the exact ``apt-get install`` line. Standard library only,
so it runs before the virtual environment exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

LIST = Path(__file__).resolve().parent / "debian-packages.txt"


def packages() -> dict[str, list[str]]:
    """Each package and the commands it provides, in the file's order."""
    out: dict[str, list[str]] = {}
    for line in LIST.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, commands = line.partition(":")
            out[name.strip()] = commands.split()
    return out


def package_of(command: str) -> str:
    """The package that provides ``command`` (the command itself when it is not listed)."""
    return next((p for p, cmds in packages().items() if command in cmds), command)


def install_line(names: list[str]) -> str:
    return "apt-get update && apt-get install -y --no-install-recommends " + " ".join(names)


def installed(name: str) -> bool:
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Status}", name], capture_output=True,
                          text=True, check=False)
    return proc.returncode == 0 and proc.stdout.endswith("installed")


def missing() -> list[str]:
    if shutil.which("dpkg-query") is None:  # not Debian: look for the commands only
        return [p for p, cmds in packages().items() if any(shutil.which(c) is None for c in cmds)]
    return [p for p in packages() if not installed(p)]


def main() -> int:
    need = missing()
    if not need:
        return 0
    if os.geteuid() != 0:
        print(f"missing Debian packages: {' '.join(need)}\nrun as root:\n  {install_line(need)}",
              file=sys.stderr)
        return 1
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *need],
                   check=True, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
