"""Declared exports: the operator's YAML file of the exports expected to report, with thresholds.

A declared export has its series from start-up (so one that never reports is visible and can be
alerted on) and may carry its own ``grace``, ``max_runtime`` and ``min_runtime``. Entries name
partner, type and frequency the way CleverTap or a person would write them; they are normalized
exactly like webhook fields, so "Amazon S3" / "Every 4 hours" meet ``amazon_s3`` / ``4h``.

``ConfigHolder`` keeps the configuration in force: a reload that fails (unreadable file, invalid
YAML, an invalid entry) keeps the previous configuration, logs the reason and counts it.

The file's YAML and schema are read in ``declared_schema``, imported only when there is a file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from exporter.domain import normalize
from exporter.domain.destination import Destination, DestinationError, parse_destination
from exporter.domain.keys import SeriesKey

if TYPE_CHECKING:
    from exporter.domain.declared_schema import DestinationEntry, ExportEntry

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """The configuration file cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class DeclaredExport:
    """A declared export, normalized, with its effective thresholds in seconds."""

    account: str
    partner: str
    export_type: str
    frequency: str
    name: str
    grace: float | None
    max_runtime: float | None
    min_runtime: float | None
    #: The declared ``interval``, which wins over the Frequency's and a learned one.
    declared_interval: float | None = None
    #: The ``learn:`` knobs of its defaults and its own, overriding THRESHOLDS'.
    learn: Mapping[str, float] = field(default_factory=dict)
    #: Where its files land, to check after a Completed; None when not declared.
    destination: Destination | None = None

    @property
    def key(self) -> SeriesKey:
        return (self.account, self.partner, self.export_type, self.frequency)

    @property
    def interval(self) -> float | None:
        if self.declared_interval is not None:
            return self.declared_interval
        return normalize.interval_seconds(self.frequency)


@dataclass(frozen=True, slots=True)
class DeclaredConfig:
    """The configuration in force: declared exports by series key, in file order."""

    exports: dict[SeriesKey, DeclaredExport] = field(default_factory=dict)
    source: str | None = None
    #: Values accepted but not known to CleverTap (a likely typo), with the nearest known one.
    warnings: tuple[str, ...] = ()

    def label_values(self) -> dict[str, set[str]]:
        """Label values the declared exports use, per capped label."""
        out: dict[str, set[str]] = {"account": set(), "partner": set(), "export_type": set(),
                                    "frequency": set()}
        for account, partner, export_type, frequency in self.exports:
            out["account"].add(account)
            out["partner"].add(partner)
            out["export_type"].add(export_type)
            out["frequency"].add(frequency)
        return out


EMPTY: Final = DeclaredConfig()
#: ``frequency: auto``: the webhooks carry no Frequency (label ``unknown``); learn the schedule.
AUTO: Final = "auto"


def parse_config(text: str, source: str = "<config>") -> DeclaredConfig:
    """Validate YAML ``text``; raises ``ConfigError`` naming the entry and field at fault."""
    # Here, not at the top: PyYAML and pydantic are loaded only when there is a file to read.
    from exporter.domain import declared_schema

    try:
        model = declared_schema.read(text)
    except declared_schema.SchemaError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    exports: dict[SeriesKey, DeclaredExport] = {}
    where: dict[SeriesKey, int] = {}
    warnings: list[str] = []
    for i, entry in enumerate(model.exports):
        frequency = normalize.frequency(entry.frequency)
        if frequency == AUTO:
            frequency = normalize.UNKNOWN
        elif frequency != normalize.ONE_TIME and normalize.interval_seconds(frequency) is None:
            raise ConfigError(
                f"{source}: exports[{i}].frequency: {entry.frequency!r} is not a frequency: "
                "use 'One Time', an interval such as 'Every 4 hours', '12h' or 'Daily', or "
                "'auto' (none in the webhooks: the schedule is learned)"
            )
        grace = _pick(entry.grace, model.defaults.grace)
        max_runtime = _pick(entry.max_runtime, model.defaults.max_runtime)
        min_runtime = _pick(entry.min_runtime, model.defaults.min_runtime)
        if min_runtime is not None and max_runtime is not None and min_runtime >= max_runtime:
            raise ConfigError(f"{source}: exports[{i}]: min_runtime must be shorter than "
                              "max_runtime (after applying defaults)")
        export = DeclaredExport(
            account=entry.account,
            partner=normalize.partner(entry.partner),
            export_type=normalize.export_type(entry.export_type),
            frequency=frequency,
            name=entry.name or "",
            grace=grace,
            max_runtime=max_runtime,
            min_runtime=min_runtime,
            declared_interval=entry.interval,
            learn={**model.defaults.learn, **entry.learn},
            destination=_destination(f"{source}: exports[{i}].destination", entry.destination),
        )
        if export.key in exports:
            raise ConfigError(
                f"{source}: exports[{i}] declares the same export as exports[{where[export.key]}]"
                f" (account={export.account}, partner={export.partner}, "
                f"type={export.export_type}, frequency={export.frequency})"
            )
        exports[export.key] = export
        where[export.key] = i
        warnings.extend(_unknown_values(f"{source}: exports[{i}]", entry, export))
    return DeclaredConfig(exports, source, tuple(warnings))


def _unknown_values(where: str, entry: ExportEntry, export: DeclaredExport) -> list[str]:
    out = []
    for label, raw, value in (("partner", entry.partner, export.partner),
                              ("type", entry.export_type, export.export_type)):
        key = "export_type" if label == "type" else label
        if not normalize.is_known(key, value):
            near = normalize.nearest_known(key, raw)
            hint = (f"did you mean {near!r}?" if near else
                    f"known: {', '.join(normalize.KNOWN[key])}")
            out.append(f"{where}.{label}: {raw!r} is not a {label} CleverTap is known to send "
                       f"({hint}); its webhooks will not match unless they spell it so")
    return out


def _destination(where: str, entry: DestinationEntry | None) -> Destination | None:
    if entry is None:
        return None
    try:
        return parse_destination(entry.url, account=entry.account, endpoint=entry.endpoint,
                                 region=entry.region, folder=entry.folder, names=entry.names,
                                 clevertap_account_id=entry.clevertap_account_id)
    except DestinationError as exc:
        raise ConfigError(f"{where}.{exc}") from None


def load_config(path: str | Path) -> DeclaredConfig:
    """Read and validate the file at ``path``; raises ``ConfigError``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc}") from None
    return parse_config(text, str(path))


def _pick(own: float | None, default: float | None) -> float | None:
    return own if own is not None else default


def _log_warnings(config: DeclaredConfig) -> None:
    for warning in config.warnings:
        log.warning("%s", warning)


class ConfigHolder:
    """The declared configuration in force, its file, and the outcome of the last reload."""

    def __init__(self, path: Path | None, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self.config: DeclaredConfig = EMPTY
        self.last_reload_successful = True
        self.last_success: float = clock()
        self.last_error: str | None = None
        self.reloads: dict[str, int] = {"success": 0, "failure": 0}

    def load_initial(self) -> DeclaredConfig:
        """Load the file at start-up; raises ``ConfigError`` so the process refuses to start."""
        if self.path is not None:
            self.config = load_config(self.path)
            self.last_success = self.clock()
            log.info("configuration %s: %d declared export(s)", self.path,
                     len(self.config.exports))
            _log_warnings(self.config)
        return self.config

    def reload(self) -> tuple[bool, str]:
        """Re-read the file; on error keep the old configuration. Returns (ok, message)."""
        if self.path is None:
            return True, "no configuration file (--config.file) is set; nothing to reload"
        try:
            config = load_config(self.path)
        except ConfigError as exc:
            self.last_reload_successful = False
            self.last_error = str(exc)
            self.reloads["failure"] += 1
            log.error("configuration reload failed, keeping the previous configuration: %s",
                      exc)
            return False, str(exc)
        self.config = config
        _log_warnings(config)
        self.last_reload_successful = True
        self.last_success = self.clock()
        self.last_error = None
        self.reloads["success"] += 1
        message = f"configuration reloaded: {len(config.exports)} declared export(s)"
        log.info("%s from %s", message, self.path)
        return True, message
