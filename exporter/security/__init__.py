"""Who may talk to the exporter: webhook credentials (``auth``), the OAuth token endpoint
(``oauth``) and its client assertions (``assertion``), the web config file's TLS, users and
rate limit (``webconfig``, ``users``) and the source allow-list (``allowlist``).

Other layers may use the modules in ``__all__``. ``tls`` and ``openssl`` (the TLS context,
ctypes for two settings) and ``webconfig_yaml`` (PyYAML) are internal, reached through
``webconfig``: the ``protected`` contract in pyproject.toml keeps them so. Nothing is imported
here.
"""

__all__ = ["allowlist", "assertion", "auth", "oauth", "users", "webconfig"]
