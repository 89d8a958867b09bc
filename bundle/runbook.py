"""The runbook as the exporter serves it (``GET /runbook``): docs/runbook.md as one HTML page.

Each heading gets the anchor a forge gives it (``#clevertapexportoverdue``), which is what the
alerts' ``runbook_url`` ends with; the text between headings is kept as written, wrapped. A
page, not a Markdown renderer: the exporter ships it with its package, so the link in every
alert resolves wherever the exporter runs, with no forge to guess.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Final

#: Where the exporter's package keeps the page (package data of ``exporter.web``).
PAGE: Final = "exporter/web/runbook.html"
_HEADING: Final = re.compile(r"(#{1,6}) (.+)")


def anchor(title: str) -> str:
    """A forge's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^a-z0-9 _-]", "", title.strip().lower()).replace(" ", "-")


def runbook_page(root: Path) -> str:
    parts = ['<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
             "<title>Runbook: CleverTap export alerts</title>"
             '<meta name="viewport" content="width=device-width, initial-scale=1">'
             "<style>body{font-family:sans-serif;max-width:60rem;margin:auto;padding:1rem}"
             "pre{white-space:pre-wrap;font-family:inherit}</style></head><body>\n"]
    text: list[str] = []

    def flush() -> None:
        if "".join(text).strip():
            parts.append(f"<pre>{html.escape(chr(10).join(text).strip())}</pre>\n")
        text.clear()

    fenced = False
    for line in (root / "docs" / "runbook.md").read_text(encoding="utf-8").splitlines():
        fenced ^= line.startswith("```")
        heading = None if fenced else _HEADING.fullmatch(line)
        if heading is None:
            text.append(line)
            continue
        flush()
        level, title = len(heading[1]), heading[2]
        parts.append(f'<h{level} id="{anchor(title)}">{html.escape(title)}</h{level}>\n')
    flush()
    parts.append("</body></html>\n")
    return "".join(parts)
