"""The ``--config.file`` as written: its YAML and the schema of its entries (pydantic).

Imported by ``declared.parse_config`` only when a file is read, so a server without
``--config.file`` loads neither PyYAML nor pydantic (docs/architecture.md, "Imports").
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from exporter.domain.durations import parse_duration
from exporter.domain.keys import ACCOUNT_PATTERN, DEFAULT_ACCOUNT
from exporter.domain.thresholds import FRACTION_KNOBS, LEARNING_KNOBS, MAX_HISTORY, WHOLE_KNOBS

MAX_NAME_LENGTH: Final = 128
MAX_EXPORTS: Final = 1000


def _duration(value: Any) -> Any:
    """Accept ``30m``, ``1h30m``, ``90s`` or plain seconds (number or text)."""
    if isinstance(value, bool):
        raise ValueError("must be a duration such as 30m, 2h or 90s")
    if isinstance(value, int | float):
        value = str(value)
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError("must be a duration such as 30m, 2h or 90s")


def _learn(value: Any) -> Any:
    """``learn:``: THRESHOLDS' learning knobs by name, each a positive number (whole where it
    counts runs, below 1 where it is a fraction)."""
    if not isinstance(value, dict):
        raise ValueError("must be a mapping of knob names to numbers")
    out: dict[str, float] = {}
    for name, number in value.items():
        if name not in LEARNING_KNOBS:
            raise ValueError(f"{name!r} is not a learning knob "
                             f"(known: {', '.join(LEARNING_KNOBS)})")
        if isinstance(number, bool) or not isinstance(number, int | float) or not number > 0:
            raise ValueError(f"{name} must be a positive number")
        if name in WHOLE_KNOBS and (number != int(number) or number > MAX_HISTORY):
            raise ValueError(f"{name} must be a whole number of at most {MAX_HISTORY}")
        if name in FRACTION_KNOBS and number >= 1:
            raise ValueError(f"{name} must be below 1")
        out[name] = float(number)
    return out


Duration = Annotated[float, BeforeValidator(_duration)]
Learn = Annotated[dict[str, float], BeforeValidator(_learn)]
Text = Annotated[str, Field(min_length=1, max_length=256)]


class Thresholds(BaseModel):
    """Per-export thresholds; any left out falls back to ``defaults`` and then to the rules'."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    grace: Duration | None = None
    max_runtime: Duration | None = None
    min_runtime: Duration | None = None
    #: Overrides of THRESHOLDS' knobs of the usual duration and the learned schedule.
    learn: Learn = Field(default_factory=dict)

    @model_validator(mode="after")
    def _runtimes_ordered(self) -> Thresholds:
        if (self.min_runtime is not None and self.max_runtime is not None
                and self.min_runtime >= self.max_runtime):
            raise ValueError("min_runtime must be shorter than max_runtime")
        return self


class DestinationEntry(BaseModel):
    """An entry's ``destination:``, as written; ``destination.parse_destination`` checks the
    values (``declared.parse_config``), so each error names its field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: Text
    account: Text | None = None
    endpoint: Text | None = None
    region: Text | None = None
    folder: Annotated[str, Field(max_length=256)] = ""
    names: Text = "default"
    clevertap_account_id: Text | None = None


def _destination(value: Any) -> Any:
    """``destination: s3://bucket/prefix`` is short for ``destination: {url: ...}``."""
    return {"url": value} if isinstance(value, str) else value


class ExportEntry(Thresholds):
    """One ``exports:`` entry as written in the file."""

    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)] | None = None
    account: Annotated[str, Field(pattern=f"^{ACCOUNT_PATTERN}$")] = DEFAULT_ACCOUNT
    partner: Text
    export_type: Text = Field(validation_alias=AliasChoices("type", "export_type"))
    #: As CleverTap writes it, or ``auto``: the webhooks carry none, learn the schedule.
    frequency: Text
    #: The schedule, when the webhooks' Frequency does not give it: wins over a learned one.
    interval: Duration | None = None
    destination: Annotated[DestinationEntry | None, BeforeValidator(_destination)] = None


class ConfigFile(BaseModel):
    """The whole file: ``defaults`` (optional) and ``exports``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: Thresholds = Thresholds()
    exports: list[ExportEntry] = Field(default_factory=list, max_length=MAX_EXPORTS)


class SchemaError(ValueError):
    """The file is not valid YAML or does not follow the schema; the message says where."""


def read(text: str) -> ConfigFile:
    """The file's ``text``, validated; raises ``SchemaError`` naming each field at fault."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SchemaError(f"not valid YAML: {exc}") from None
    if doc is None:
        # Most likely caught mid-write (or truncated): refused, so a reload keeps the last good
        # configuration rather than forgetting every declared export. ``exports: []`` is the
        # way to declare none.
        raise SchemaError("the file is empty (or only comments); write 'exports: []' to "
                          "declare no exports")
    if not isinstance(doc, dict):
        raise SchemaError("the top level must be a mapping with 'exports:'")
    try:
        return ConfigFile.model_validate(doc)
    except ValidationError as exc:
        raise SchemaError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
        loc = loc.lstrip(".") or "file"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        msg = re.sub(r"^Value error, ", "", msg)
        problems.append(f"{loc}: {msg}")
    return "; ".join(problems)
