"""The domain: what a webhook says, the exports it describes and what their state is, with no
HTTP and no storage engine in it (the store is reached through ``exporter.store.base``).

Other layers may use the modules in ``__all__``. ``declared_schema`` (the pydantic model of
``--config.file``, imported only by ``declared.parse_config``) and ``timeparse`` (read by
``payload``) are internal: the ``protected`` contract in pyproject.toml keeps them so. Nothing is
imported here, so each module costs only who uses it.
"""

__all__ = ["declared", "destination", "durations", "keys", "labelcap", "landing", "limits",
           "model", "normalize", "payload", "schedule", "status", "thresholds", "timefmt",
           "tracker", "usual"]
