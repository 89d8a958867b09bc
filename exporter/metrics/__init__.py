"""The exporter's metrics: the export families rendered from the model at each scrape
(``exposition``, ``collector``) and the HTTP layer's own request metrics (``instruments``).

All three are for the web layer, which builds and serves them. Nothing is imported here.
"""

__all__ = ["collector", "exposition", "instruments"]
