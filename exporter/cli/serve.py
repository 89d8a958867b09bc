"""Serving: logging, the event loop, listening sockets and signal handling."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence

from aiohttp import web

from exporter import __version__
from exporter.cli.flags import parse_settings
from exporter.domain.declared import ConfigError
from exporter.store import StoreError
from exporter.web.app import create_app, create_metrics_app, server_options
from exporter.web.appkeys import RUNTIME
from exporter.web.protocol import Runner
from exporter.web.reload import reload_config
from exporter.web.requestlog import ProtocolLogger, RedactedAccessLogger
from exporter.web.settings import LogSettings, Settings

log = logging.getLogger("exporter")


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log pipelines."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(settings: LogSettings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    # aiohttp's access logger writes at INFO: keep it quiet unless asked for.
    logging.getLogger("aiohttp.access").setLevel(
        logging.INFO if settings.access_log else logging.WARNING
    )


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then close the store cleanly."""
    listen = settings.listen
    separate = listen.metrics_port is not None
    app = create_app(settings, serve_metrics=not separate)
    access = logging.getLogger("aiohttp.access") if settings.logging.access_log else None
    options = server_options(settings)
    rt = app[RUNTIME]
    protocol_log = ProtocolLogger(rt.instruments)

    def runner_of(served: web.Application) -> web.AppRunner:
        return Runner(served, handle_signals=False, access_log=access,
                      access_log_class=RedactedAccessLogger, logger=protocol_log,
                      **options)

    runners = [runner_of(app)]
    if listen.metrics_port is not None:
        runners.append(runner_of(create_metrics_app(app)))
    ports = [listen.port, listen.metrics_port]
    # The web config's TLS applies to every listener, as exporter-toolkit does; each connection
    # gets the context of the file as it is then, so a renewed certificate needs no restart.
    ssl_context = (rt.web_config_file.server_context() if rt.web_config_file is not None
                   else None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reloads: set[asyncio.Task[tuple[bool, str]]] = set()

    def on_sighup() -> None:
        task = loop.create_task(reload_config(rt))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    try:
        for runner, port in zip(runners, ports, strict=False):
            await runner.setup()
            await web.TCPSite(runner, listen.host, port, ssl_context=ssl_context).start()
        log.info("clevertap-export-exporter %s listening on %s://%s:%s%s", __version__,
                 "https" if ssl_context else "http", listen.host, listen.port,
                 f" (metrics on port {listen.metrics_port})" if separate else "")
        await stop.wait()
        log.info("shutting down")
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop  # optional speed-up, absent on some platforms
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(args: Sequence[str]) -> int:
    """Serve with the settings ``args`` and the environment give; the process's exit code."""
    settings = parse_settings(args)
    setup_logging(settings.logging)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(serve(settings))
    except (StoreError, ConfigError) as exc:
        log.error("%s", exc)
        return 1
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    return 0
