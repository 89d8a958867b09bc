"""Prometheus exporter for CleverTap "Export Status Alerts" webhooks."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("clevertap-export-exporter")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
