"""The web config file's YAML, read strictly as Go's ``UnmarshalStrict`` does.

Imported by ``webconfig`` only when a file is read, so a server without ``--web.config.file``
does not load PyYAML (docs/architecture.md, "Imports").
"""

from __future__ import annotations

from typing import Any

import yaml


class YAMLProblem(ValueError):
    """The text is not valid YAML; the message says what and where, quoting nothing."""


class _StrictLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a mapping key given twice, as Go's ``UnmarshalStrict``."""

    def construct_mapping(self, node: yaml.MappingNode,
                          deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load(text: str) -> Any:
    """The document in ``text``; raises ``YAMLProblem``."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise YAMLProblem(_problem(exc)) from exc


def _problem(exc: yaml.YAMLError) -> str:
    """What and where, without PyYAML's quote of the line, which may hold a key or a hash."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return type(exc).__name__
