"""The HTTP edge: the application (``app``), its shared state (``appkeys``), its settings, its
routes and webhook outcomes, the reload of ``--config.file``, the server's loggers
(``requestlog``) and its connection handler (``protocol``).

Other layers may use the modules in ``__all__``; ``routes`` and ``outcomes`` import nothing but
the standard library, so the tools read them without aiohttp. The rest is internal, wired by
``app``: the middleware and its admission, responses and event log, the handlers, the OpenAPI
document and the status page; the ``protected`` contract in pyproject.toml keeps it so. Nothing
is imported here.
"""

__all__ = ["app", "appkeys", "outcomes", "protocol", "reload", "requestlog", "routes",
           "settings"]
