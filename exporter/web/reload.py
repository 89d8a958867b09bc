"""Declaring the configured exports to the tracker, at start-up and on each reload."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from exporter.store import StoreError
from exporter.web.appkeys import CONFIG, TRACKER

log = logging.getLogger(__name__)


async def declare_exports(app: web.Application) -> None:
    config = app[CONFIG].config
    await app[TRACKER].declare(config.exports.keys(), config.label_values())


async def reload_config(app: web.Application) -> tuple[bool, str]:
    """Re-read ``--config.file`` (SIGHUP, ``POST /-/reload``); keeps the old one on error."""
    holder = app[CONFIG]
    ok, message = await asyncio.to_thread(holder.reload)
    if ok and TRACKER in app:
        try:
            await declare_exports(app)
        except StoreError as exc:
            log.error("could not store the declared exports: %s", exc)
    return ok, message
