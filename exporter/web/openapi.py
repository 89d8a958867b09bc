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
from exporter.web import routes
from exporter.web.outcomes import STORED, Outcome
from exporter.web.settings import AuthSettings, Settings

JSON: Final = "application/json"
# The documented pattern starts with a non-dot: "." and ".." are path segments that clients
# normalize away before sending, so they can never reach the route.


def _text(description: str, max_length: int = MAX_TEXT_LENGTH) -> dict[str, Any]:
    # A number stands for its decimal text, which must fit the same length: bound it well
    # inside that (1e{n} has n + 1 digits).
    bound = float(f"1e{max_length - 8}")
    return {
        "description": description,
        # No U+0000: PostgreSQL's text cannot hold it, so the webhook refuses it (422).
        "oneOf": [{"type": "string", "minLength": 1, "maxLength": max_length,
                   "pattern": "^[^\\u0000]*$"},
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


def _security(auth: AuthSettings) -> tuple[dict[str, Any], list[dict[str, list[str]]]]:
    schemes: dict[str, Any] = {}
    if auth.auth_token is not None:
        schemes["bearerToken"] = {"type": "http", "scheme": "bearer"}
        if auth.auth_header is not None:
            schemes["headerToken"] = {"type": "apiKey", "in": "header",
                                      "name": auth.auth_header}
    if auth.basic_auth_user is not None:
        schemes["basic"] = {"type": "http", "scheme": "basic"}
    if auth.oauth_client_id is not None:
        schemes["oauth2"] = {"type": "oauth2", "flows": {"clientCredentials": {
            "tokenUrl": TOKEN_PATH, "scopes": {}}}}
    return schemes, [{name: []} for name in schemes]


def _webhook_operation(settings: Settings, with_account: bool) -> dict[str, Any]:
    schemes, security = _security(settings.auth)
    responses: dict[str, Any] = {
        "200": _reply("Stored (`accepted`), a redelivery already stored (`duplicate`), or "
                      "CleverTap's test ping (`test`).", [o.value for o in STORED]),
        "400": _error("The body is empty, not JSON, not a JSON object, or does not decode "
                      "as its Content-Encoding; or the account in the path is invalid."),
        "408": _error("The body was not received within the read timeout "
                      f"({settings.limits.read_timeout:g} s)."),
        "413": _error(f"The body exceeds {settings.limits.max_body_bytes} bytes."),
        "415": _error("The body's Content-Encoding is one the exporter does not decode (br, "
                      "zstd); Accept-Encoding names those it does.",
                      headers={"Accept-Encoding": {"schema": {"type": "string"},
                                                   "description": "gzip, deflate"}}),
        "422": _error("A field is missing or invalid, or 'Date and Time' is outside the "
                      "accepted window (--event-time-max-ahead, --event-time-min); `fields` "
                      "names each one."),
        "503": _error("Too many requests in progress (`overloaded`), or the state store "
                      "could not store the event (`unavailable`); retry later.",
                      headers={"Retry-After": {"schema": {"type": "string"},
                                               "description": "Seconds to wait, when "
                                               "overloaded."}}),
    }
    if schemes:
        responses["401"] = _error("Missing or wrong webhook credentials.")
    if settings.auth.allow_cidrs:
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


def _json_get(summary: str, required: list[str], *,
              unavailable: bool = False) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": summary, "content": {JSON: {
        "schema": {"type": "object", "required": required}}}}}
    if unavailable:
        responses["503"] = _error("The state store is not open yet.")
    return {"get": {"summary": summary, "responses": responses}}


def _forget_operation(settings: Settings, one_series: bool) -> dict[str, Any]:
    schemes, security = _security(settings.auth)
    segment = {"in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
    parameters = [{"name": "account", "in": "path", "required": True,
                   "schema": {"type": "string", "pattern": f"^{ACCOUNT_PATTERN}$"}}]
    if one_series:
        parameters += [{"name": name, **segment, "description": f"The `{name}` label value, "
                        "as on /metrics."} for name in ("partner", "export_type", "frequency")]
    responses: dict[str, Any] = {
        "200": {"description": "Forgotten, durably: `series` lists them.", "content": {JSON: {
            "schema": {"type": "object", "required": ["status", "series"]}}}},
        "400": _error("The account is invalid."),
        "403": _error("No credentials are configured, so nobody may change the state by "
                      "hand."),
        "404": _error("No such series is known."),
        "409": _error("A declared export (in --config.file) matches: remove it there first."),
        "503": _error("The state store could not store it; retry later."),
    }
    if schemes:
        responses["401"] = _error("Missing or wrong webhook credentials.")
    return {"delete": {
        "summary": ("Forget one series" if one_series else "Forget every series of an "
                    "account") + ": its state, runs and metrics, on every replica",
        "parameters": parameters,
        "responses": responses,
        "security": security,
    }}


def _optional_paths(settings: Settings) -> dict[str, Any]:
    """Routes that exist only with some settings: the token endpoint and the benchmark no-op."""
    paths: dict[str, Any] = {}
    if settings.auth.oauth_client_id is not None:
        oauth_error = {"description": "", "content": {JSON: {"schema": {
            "type": "object", "required": ["error"],
            "properties": {"error": {"type": "string"},
                           "error_description": {"type": "string"}}}}}}
        owner = settings.auth.oauth_username is not None
        grants = ["client_credentials", *(["password", "refresh_token"] if owner else [])]
        owner_fields = ("username", "password", "refresh_token") if owner else ()
        paths[TOKEN_PATH] = {"post": {
            "summary": "OAuth 2.0 token endpoint (RFC 6749): client credentials, and with "
                       "--oauth-username the password and refresh token grants",
            "requestBody": {"required": True, "content": {
                "application/x-www-form-urlencoded": {"schema": {
                    "type": "object", "required": ["grant_type"],
                    "properties": {"grant_type": {"type": "string", "enum": grants},
                                   **{name: {"type": "string"} for name in (
                                       "client_id", "client_secret", "client_assertion_type",
                                       "client_assertion", "scope", *owner_fields)}}}}}},
            "responses": {
                "200": {"description": "An access token for the webhook's "
                        "'Authorization: Bearer'.", "content": {JSON: {"schema": {
                            "type": "object",
                            "required": ["access_token", "token_type", "expires_in"]}}}},
                **{code: {**oauth_error, "description": text} for code, text in (
                    ("400", "invalid_request (also a body that does not decode), "
                     "invalid_grant (wrong username or password, a refresh token not valid) "
                     "or unsupported_grant_type."),
                    ("401", "invalid_client: unknown client, wrong secret or a client "
                     "assertion not valid."))},
                "403": _error("The source address is outside --allow-cidr."),
                "413": _error(f"The body exceeds {settings.limits.max_body_bytes} bytes."),
            },
        }}
    if settings.bench_noop:
        paths[routes.NOOP] = {"post": {
            "summary": "Answer like an accepted webhook without reading or storing "
                       "(--bench-noop, benchmarks only)",
            "responses": {"200": _reply("Always.", [Outcome.ACCEPTED.value])},
        }}
    return paths


def openapi_document(settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.0 document for an exporter configured by ``settings``: every route it
    serves (each GET also answers HEAD, as aiohttp does)."""
    schemes, _ = _security(settings.auth)
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
            routes.WEBHOOK: {"post": _webhook_operation(settings, with_account=False)},
            routes.WEBHOOK_ACCOUNT: {"post": _webhook_operation(settings, with_account=True)},
            routes.METRICS: {"get": {
                "summary": "Prometheus metrics (OpenMetrics when the Accept header asks)",
                "responses": {"200": {"description": "Metrics exposition.", "content": {
                    "text/plain": {"schema": {"type": "string"}},
                    "application/openmetrics-text": {"schema": {"type": "string"}},
                }}},
            }},
            routes.HEALTHZ: {"get": {
                "summary": "The process is alive",
                "responses": {"200": _reply("Alive.", ["ok"])},
            }},
            routes.READYZ: {"get": {
                "summary": "A webhook would be stored now: the state file is the one opened "
                           "and a write to it commits",
                "responses": {"200": _reply("Ready.", ["ready"]),
                              "503": _error("The state store is not usable.")},
            }},
            routes.STATUS_PAGE: {"get": {
                "summary": "The status page: every export's state and the last webhooks",
                "parameters": [{
                    "name": "refresh", "in": "query", "required": False,
                    "description": "Seconds between reloads of the page (0: never; at most "
                                   "3600; anything else: the default, 15).",
                    "schema": {"type": "string"},
                }],
                "responses": {"200": {"description": "HTML page.", "content": {
                    "text/html": {"schema": {"type": "string"}}}}},
            }},
            routes.RUNBOOK: {"get": {
                "summary": "The runbook (docs/runbook.md): what each alert means and what to "
                           "do; each alert's runbook_url points at its section",
                "responses": {"200": {"description": "HTML page.", "content": {
                    "text/html": {"schema": {"type": "string"}}}}},
            }},
            routes.API_EXPORTS: _json_get(
                "Every known or declared export with its state, as on the status page",
                ["generated_at", "timezone", "config", "exports"], unavailable=True),
            routes.API_EXPORTS_ACCOUNT: _forget_operation(settings, one_series=False),
            routes.API_EXPORTS_SERIES: _forget_operation(settings, one_series=True),
            routes.API_EVENTS: _json_get(
                "The last webhooks received (at most 100), newest first, with their outcome",
                ["events"]),
            routes.RELOAD: {"post": {
                "summary": "Reload --config.file (as SIGHUP does)",
                "responses": {
                    "200": _reply("Reloaded, or no file to reload.", ["success"]),
                    "500": _error("The file is invalid: the previous configuration stays in "
                                  "force (the reason is in `error`)."),
                },
            }},
            routes.OPENAPI: {"get": {
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3 document.",
                                      "content": {JSON: {"schema": {"type": "object"}}}}},
            }},
            **_optional_paths(settings),
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
