"""Prometheus-style durations (``48h``, ``1h30m``, ``90s``), as flags and config files take them."""

from __future__ import annotations

import re
from typing import Final

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS: Final = {
    "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0,
    "y": 31536000.0,
}


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus-style duration (``48h``, ``1h30m``, ``90s``) or plain seconds."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        parts = _DURATION_PART.findall(value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise ValueError(
                f"invalid duration {text!r}: use e.g. 48h, 90m, 30s or plain seconds"
            ) from None
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"duration {text!r} must be positive")
    return seconds
