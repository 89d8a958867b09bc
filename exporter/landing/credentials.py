"""Store credentials from the environment: ``EXPORTER_<NAME>`` or the file ``EXPORTER_<NAME>_FILE``
names (Docker and Kubernetes secrets), as the rest of the exporter's secrets. Never logged."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


class SecretError(ValueError):
    """A secret's file cannot be read; the message names the variable, never the value."""


def secret(env: Mapping[str, str], name: str) -> str | None:
    """The value of ``EXPORTER_<name>``, else of the file ``EXPORTER_<name>_FILE`` names."""
    value = env.get(f"EXPORTER_{name}")
    if value:
        return value
    path = env.get(f"EXPORTER_{name}_FILE")
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretError(f"cannot read EXPORTER_{name}_FILE: {exc.__class__.__name__}") from None
