"""Declaring the configured exports to the tracker, at start-up and on each reload."""

from __future__ import annotations

import asyncio
import logging

from exporter.domain.tracker import ExportTracker
from exporter.store import StoreError
from exporter.web.appkeys import Runtime

log = logging.getLogger(__name__)


async def declare_exports(rt: Runtime, tracker: ExportTracker) -> None:
    declared = rt.config.config
    await tracker.declare(declared.exports, declared.label_values())


async def reload_config(rt: Runtime) -> tuple[bool, str]:
    """Re-read ``--config.file`` (SIGHUP, ``POST /-/reload``); keeps the old one on error.

    Reloads coalesce: one runs at a time, and the requests that arrive while it runs share the
    result of the next one, which starts after them and so reads what was written before they
    asked. A flood of reload requests costs one reload at a time, leaving the store to the
    webhooks and ``/readyz``.
    """
    state = rt.reload
    asked = state.started
    async with state.lock:
        if state.started > asked:  # one started after this request and has finished
            return state.result
        state.started += 1
        state.result = await _reload(rt)
        return state.result


async def _reload(rt: Runtime) -> tuple[bool, str]:
    ok, message = await asyncio.to_thread(rt.config.reload)
    if ok and rt.tracker is not None:
        try:
            await declare_exports(rt, rt.tracker)
        except StoreError as exc:
            log.error("could not store the declared exports: %s", exc)
    return ok, message
