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


Duration = Annotated[float, BeforeValidator(_duration)]
Text = Annotated[str, Field(min_length=1, max_length=256)]


class Thresholds(BaseModel):
    """Per-export thresholds; any left out falls back to ``defaults`` and then to the rules'."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    grace: Duration | None = None
    max_runtime: Duration | None = None
    min_runtime: Duration | None = None

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
    frequency: Text
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
        doc = {}
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
