"""The commands the docs show exist as shown: every ``make`` target is a target whose recipe
runs, every ``.venv/bin/`` program is installed, every ``python -m`` module runs, and every
subcommand and flag shown after ``clevertap-export-exporter`` or ``python -m`` is one it takes."""

from __future__ import annotations

import argparse
import functools
import re
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.cli.flags import build_parser as serve_parser
from exporter.tools import build_parser as tools_parser
from tests.helpers import ROOT

PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "bench").glob("*.md")])
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
SPAN = re.compile(r"`([^`\n]+)`")
MAKE = re.compile(r"(?<![\w/-])make ([a-z][\w-]*)(?: ARGS=\"([^\"]*)\")?")
VENV = re.compile(r"(?<![\w/.])\.venv/bin/(\S+)")
PROG = "clevertap-export-exporter"
#: A command: the program (as it is typed) and the words after it on the same line.
COMMAND = re.compile(r"(?<![\w/.=-])((?:\.venv/bin/)?(?:clevertap-export-exporter|python3? -m "
                     r"[\w.]+))(?=\s|$)([^\n|;&#`]*)")
COMMENT = re.compile(r"(?:^|\s)#.*")
FLAG = re.compile(r"(?<!\S)(--[a-z][\w.-]*)")


def code(page: Path) -> list[str]:
    """The page's code: the lines of fenced blocks and the inline spans of the prose."""
    text = page.read_text(encoding="utf-8")
    blocks = FENCE.findall(text)
    prose = FENCE.sub("", text)
    # Comments are prose: ``# Declared exports for clevertap-export-exporter (...)``.
    lines = [COMMENT.sub("", line) for block in blocks for line in block.splitlines()]
    # A shell line continued with a backslash is one command.
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines)).splitlines()
    return joined + SPAN.findall(prose)


def shown(pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    return sorted({(page.relative_to(ROOT).as_posix(), m.group(0).rstrip())
                   for page in PAGES for snippet in code(page)
                   for m in pattern.finditer(snippet)})


def _ids(cases: list[tuple[str, str]]) -> list[str]:
    return [f"{page}: {snippet}" for page, snippet in cases]


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"(?m)^([a-z][\w-]*):", text))


@functools.cache
def help_text(module: str) -> str:
    """``python -m module --help``, which must succeed."""
    done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"python -m {module} --help: {done.stderr.strip()}"
    return done.stdout


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(a.choices for a in parser._actions  # argparse's only view of its subcommands
                if isinstance(a, argparse._SubParsersAction))


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings}


@pytest.mark.parametrize(("page", "snippet"), shown(MAKE), ids=_ids(shown(MAKE)))
def test_make_targets_exist_and_their_recipes_run(page: str, snippet: str) -> None:
    m = MAKE.fullmatch(snippet)
    assert m is not None
    target, args = m.groups()
    assert target in make_targets(), f"{page} shows `{snippet}`: no such target in the Makefile"
    dry = subprocess.run(["make", "-n", "-s", target], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=False)
    assert dry.returncode == 0, dry.stderr
    for line in dry.stdout.splitlines():
        program = line.split()[0]
        if program.startswith(".venv/bin/"):
            assert (Path(sys.executable).parent / program.removeprefix(".venv/bin/")).exists(), (
                f"make {target} runs {program}, which is not installed")
    for module in re.findall(r"python3? -m ([\w.]+)", dry.stdout):
        if module not in ("venv", "pip"):
            help_text(module)  # what `python -m docs` (no such module) once failed
    for script in re.findall(r"(?m)^\S*python3? (\S+\.py)\b", dry.stdout):
        assert (ROOT / script).is_file(), f"make {target} runs missing {script}"
    if args is not None:  # ARGS go to the exporter (`make run`)
        unknown = [f for f in FLAG.findall(args) if f not in _options(serve_parser({}))]
        assert not unknown, f"{page} shows `{snippet}`: the exporter takes no {unknown}"


@pytest.mark.parametrize(("page", "snippet"), shown(VENV), ids=_ids(shown(VENV)))
def test_venv_programs_are_installed(page: str, snippet: str) -> None:
    program = snippet.removeprefix(".venv/bin/")
    assert "/" not in program, f"{page} shows `{snippet}`: not a program in .venv/bin"
    assert (Path(sys.executable).parent / program).exists(), f"{page}: {program} is not installed"


@pytest.mark.parametrize(("page", "snippet"), shown(COMMAND), ids=_ids(shown(COMMAND)))
def test_commands_take_the_subcommands_and_flags_shown(page: str, snippet: str) -> None:
    m = COMMAND.fullmatch(snippet)
    assert m is not None
    program, rest = m.group(1).removeprefix(".venv/bin/"), m.group(2)
    words = rest.split()
    if program.endswith(("-m exporter", PROG)):
        subcommands = _subparsers(tools_parser({}))
        if words and words[0] in subcommands:
            options = _options(subcommands[words[0]])
        else:
            assert not words or words[0].startswith("-"), (
                f"{page} shows `{snippet}`: {words[0]!r} is not a subcommand "
                f"({', '.join(subcommands)})")
            options = _options(serve_parser({}))
        unknown = [f for f in FLAG.findall(rest) if f.split("=")[0] not in options]
    else:
        text = help_text(program.split()[-1])
        unknown = [f for f in FLAG.findall(rest) if f.split("=")[0] not in text]
    assert not unknown, f"{page} shows `{snippet}`: {program} takes no {unknown}"


#: What the shipped text may not tell anyone to run: a signal by program name (``pidof``,
#: ``pkill``, ``killall``) reaches every exporter on the host, or none when the name differs.
BY_NAME = re.compile(r"\b(?:pidof|pkill|killall)\b")
SHIPPED = sorted({*PAGES, *(ROOT / "docs").glob("*.yml"),
                  *(p for p in (ROOT / "deploy").rglob("*") if p.is_file()),
                  *(ROOT / "exporter").rglob("*.py")})


def test_no_shipped_text_signals_the_exporter_by_name() -> None:
    found = [f"{path.relative_to(ROOT)}:{n}" for path in SHIPPED
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if BY_NAME.search(line)]
    assert not found, (f"{', '.join(found)} signal(s) by program name: use POST /-/reload "
                       "or `systemctl reload clevertap-export-exporter`")


SHELL_FENCE = re.compile(r"^```(?:sh|bash)\n(.*?)^```", re.S | re.M)
USE = re.compile(r"\$\{?([A-Za-z_]\w*)")
ASSIGN = re.compile(r"(?:^|[\s;&(])(?:export\s+)?([A-Za-z_]\w*)=")
#: What a reader's shell has already.
SHELL_OWN = frozenset({"PATH", "HOME", "USER", "PWD", "EDITOR"})


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_shell_variables_are_set_before_use(page: Path) -> None:
    """A shell block copied in page order uses no variable it never set (`$SECRET`)."""
    assigned = set(SHELL_OWN)
    unset = []
    for block in SHELL_FENCE.findall(page.read_text(encoding="utf-8")):
        code = "\n".join(COMMENT.sub("", line) for line in block.splitlines())
        assigned |= set(ASSIGN.findall(code))
        unset += [name for name in USE.findall(code) if name not in assigned]
    assert not unset, f"{page.relative_to(ROOT)} uses ${', $'.join(sorted(set(unset)))} unset"


def test_a_generated_secret_is_shown_to_paste_into_clevertap() -> None:
    """Every secret the docs make with ``openssl rand`` is one the reader can read back: kept
    in a variable the page echoes, or read back from the Kubernetes Secret it went into."""
    hidden = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for line in text.splitlines():
            if "openssl rand" not in line or "`openssl rand" in line:
                continue  # prose naming the command is not a command
            var = re.match(r"\s*([A-Za-z_]\w*)=\"\$\(openssl rand", line)
            shown = (f'echo "${var[1]}"' in text if var
                     else "--from-literal" in line and "get secret" in text)
            if not shown:
                hidden.append(f"{page.relative_to(ROOT)}: {line.strip()}")
    assert not hidden, f"generated but never shown: {hidden}"
