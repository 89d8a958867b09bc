"""The OpenAPI 3 description of the exporter's HTTP interface, served at ``/openapi.json``.

It documents what CleverTap (or anyone) may send and every answer the exporter gives, so that
a schema-driven fuzzer can check the running server against it: the test suite runs
schemathesis on it. It is built from ``Settings`` so the limits and the authentication it
states are the ones in force.
"""

from __future__ import annotations

from typing import Any, Final

from exporter import __version__
from exporter.domain.keys import ACCOUNT_PATTERN
from exporter.domain.payload import MAX_ID_LENGTH, MAX_TEXT_LENGTH
from exporter.security.oauth import TOKEN_PATH
from exporter.web.settings import Settings

JSON: Final = "application/json"
# The documented pattern starts with a non-dot: "." and ".." are path segments that clients
# normalize away before sending, so they can never reach the route.


def _text(description: str, max_length: int = MAX_TEXT_LENGTH) -> dict[str, Any]:
    # A number stands for its decimal text, which must fit the same length: bound it well
    # inside that (1e{n} has n + 1 digits).
    bound = float(f"1e{max_length - 8}")
    return {
        "description": description,
        "oneOf": [{"type": "string", "minLength": 1, "maxLength": max_length},
                  {"type": "number", "minimum": -bound, "maximum": bound}],
    }


def _reply(description: str, statuses: list[str] | None = None,
           headers: dict[str, Any] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"$ref": "#/components/schemas/Reply"}
    if statuses is not None:
        schema = {"allOf": [schema, {"properties": {"status": {"enum": statuses}}}]}
    out: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def _error(description: str, **kw: Any) -> dict[str, Any]:
    out = _reply(description, **kw)
    out["content"][JSON]["schema"] = {"$ref": "#/components/schemas/Error"}
    return out


def _security(settings: Settings) -> tuple[dict[str, Any], list[dict[str, list[str]]]]:
    schemes: dict[str, Any] = {}
    if settings.auth_token is not None:
        schemes["bearerToken"] = {"type": "http", "scheme": "bearer"}
        if settings.auth_header is not None:
            schemes["headerToken"] = {"type": "apiKey", "in": "header",
                                      "name": settings.auth_header}
    if settings.basic_auth_user is not None:
        schemes["basic"] = {"type": "http", "scheme": "basic"}
    if settings.oauth_client_id is not None:
        schemes["oauth2"] = {"type": "oauth2", "flows": {"clientCredentials": {
            "tokenUrl": TOKEN_PATH, "scopes": {}}}}
    return schemes, [{name: []} for name in schemes]


def _webhook_operation(settings: Settings, with_account: bool) -> dict[str, Any]:
    schemes, security = _security(settings)
    responses: dict[str, Any] = {
        "200": _reply("Stored (`accepted`), a redelivery already stored (`duplicate`), or "
                      "CleverTap's test ping (`test`).", ["accepted", "duplicate", "test"]),
        "400": _error("The body is empty, not JSON, or not a JSON object; or the account "
                      "in the path is invalid."),
        "408": _error("The body was not received within the read timeout "
                      f"({settings.read_timeout:g} s)."),
        "413": _error(f"The body exceeds {settings.max_body_bytes} bytes."),
        "422": _error("A field is missing or invalid; `fields` names each one."),
        "503": _error("Too many requests in progress (`overloaded`), or the state store "
                      "could not store the event (`unavailable`); retry later.",
                      headers={"Retry-After": {"schema": {"type": "string"},
                                               "description": "Seconds to wait, when "
                                               "overloaded."}}),
    }
    if schemes:
        responses["401"] = _error("Missing or wrong webhook credentials.")
    if settings.allow_cidrs:
        responses["403"] = _error("The source address is outside --allow-cidr.")
    op: dict[str, Any] = {
        "summary": "Receive one CleverTap export status event"
        + (" for an account" if with_account else " (account `default`)"),
        "description": "A 200 means the event is durably stored. The body is read as JSON "
                       "whatever its Content-Type says.",
        "requestBody": {"required": True, "content": {JSON: {
            "schema": {"oneOf": [{"$ref": "#/components/schemas/ExportStatusEvent"},
                                 {"$ref": "#/components/schemas/TestPing"}]}}}},
        "responses": responses,
        "security": security,
    }
    if with_account:
        op["parameters"] = [{
            "name": "account", "in": "path", "required": True,
            "description": "The CleverTap account or project the webhook belongs to.",
            "schema": {"type": "string", "pattern": f"^{ACCOUNT_PATTERN}$"},
        }]
    return op


def openapi_document(settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.0 document for an exporter configured by ``settings``."""
    schemes, _ = _security(settings)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "clevertap-export-exporter",
            "version": __version__,
            "description": "Receives CleverTap Export Status Alerts webhooks and exposes "
                           "Prometheus metrics. With --metrics-port, /metrics and the "
                           "health checks are served on that port instead.",
        },
        "paths": {
            "/webhook": {"post": _webhook_operation(settings, with_account=False)},
            "/webhook/{account}": {"post": _webhook_operation(settings, with_account=True)},
            "/metrics": {"get": {
                "summary": "Prometheus metrics (OpenMetrics when the Accept header asks)",
                "responses": {"200": {"description": "Metrics exposition.", "content": {
                    "text/plain": {"schema": {"type": "string"}},
                    "application/openmetrics-text": {"schema": {"type": "string"}},
                }}},
            }},
            "/healthz": {"get": {
                "summary": "The process is alive",
                "responses": {"200": _reply("Alive.", ["ok"])},
            }},
            "/readyz": {"get": {
                "summary": "The state store is usable",
                "responses": {"200": _reply("Ready.", ["ready"]),
                              "503": _error("The state store is not usable.")},
            }},
            "/openapi.json": {"get": {
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3 document.",
                                      "content": {JSON: {"schema": {"type": "object"}}}}},
            }},
        },
        "components": {
            "securitySchemes": schemes,
            "schemas": {
                "ExportStatusEvent": {
                    "type": "object",
                    "description": "One Export Status Alerts body; other fields are ignored.",
                    "required": ["Export Request Id", "Partner", "Status"],
                    "properties": {
                        "Export Request Id": _text("Id of the export request.", MAX_ID_LENGTH),
                        "Partner": _text("Amazon S3, Google Cloud Storage, Microsoft Azure."),
                        "Status": _text("Initiated, Completed or Failed."),
                        "Type": _text("Events or Profiles; `unknown` when absent."),
                        "Frequency": _text("One Time, Every 4/8/12/24 hours; `unknown` "
                                           "when absent."),
                        "Date and Time": {"description": "DD/MM/YYYY h:mm:ss AM/PM, "
                                          "DD/MM/YYYY HH:MM:SS, ISO 8601 or epoch seconds or "
                                          "milliseconds; when missing or unreadable the "
                                          "receipt time is used."},
                    },
                },
                "TestPing": {
                    "type": "object",
                    "description": "CleverTap's sample body, sent when a webhook is saved.",
                    "required": ["is_test"],
                    "properties": {"is_test": {"type": "boolean", "enum": [True]}},
                },
                "Reply": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {"status": {"type": "string"},
                                   "message": {"type": "string"}},
                },
                "Error": {
                    "type": "object",
                    "required": ["status", "error"],
                    "properties": {
                        "status": {"type": "string"},
                        "error": {"type": "string", "minLength": 1},
                        "fields": {"type": "object",
                                   "additionalProperties": {"type": "string"}},
                    },
                },
            },
        },
    }
