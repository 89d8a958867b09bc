"""Times and durations as people read them: the status page, the JSON API, the event log."""

from __future__ import annotations

from datetime import datetime, tzinfo


def iso_time(ts: float | None, zone: tzinfo) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, zone).isoformat(timespec="seconds")


def local_time(ts: float, zone: tzinfo) -> str:
    """``2024-05-01 14:03:22 IST``: an absolute time in the configured zone."""
    return datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def human_duration(seconds: float) -> str:
    """``45s``, ``12m``, ``3h 5m``, ``2d 4h``: two units at most."""
    total = int(abs(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m {secs}s" if secs and minutes < 10 else f"{minutes}m"
    return f"{secs}s"


def ago(seconds: float) -> str:
    """``5m ago``, or ``in 5m`` for a time in the future."""
    return f"{human_duration(seconds)} ago" if seconds >= 0 else f"in {human_duration(seconds)}"
