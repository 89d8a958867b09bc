"""The exporter's own request metrics, in the application's registry.

Export metrics are derived from the model at each scrape (``collector``); these count what the
HTTP layer itself does: webhook outcomes, latency, requests in progress, token requests.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from exporter import __version__
from exporter.domain.normalize import KNOWN
from exporter.domain.payload import TIME_REFUSALS

#: Upper bounds (seconds) of the webhook latency histogram.
LATENCY_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
                          math.inf)
_LE: Final = tuple(floatToGoString(b) for b in LATENCY_BUCKETS)  # type: ignore[no-untyped-call]

# `_created` samples double the series count and no rule or dashboard here uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]


class Instruments:
    """The exporter's own request metrics, in an application-owned registry.

    The outcomes are the HTTP layer's (``webhook_outcomes``: each one with what it means, or
    an empty note; ``token_outcomes``): each is counted from zero, so ``increase()`` sees the
    very first.
    """

    def __init__(self, registry: CollectorRegistry, webhook_outcomes: Mapping[str, str],
                 token_outcomes: Iterable[str]) -> None:
        #: Webhooks by outcome, counted here and exposed at scrape time (``_Family``): a
        #: prometheus-client child takes a lock on every ``inc``.
        self.outcomes: dict[str, int] = dict.fromkeys(webhook_outcomes, 0)
        listed = ", ".join(f"{o} ({note})" if note else o for o, note in webhook_outcomes.items())
        registry.register(_Family(lambda: _counter(
            "clevertap_export_webhook_requests", f"Webhook requests by outcome: {listed}.",
            "outcome", self.outcomes)))
        #: Webhook requests being handled now; ``middleware`` keeps it under the limit.
        self.active = 0
        Gauge(
            "clevertap_export_webhook_requests_in_progress",
            "Webhook requests being received or handled right now.",
            registry=registry,
        ).set_function(lambda: self.active)
        self.token_requests = Counter(
            "clevertap_export_oauth_token_requests",
            "OAuth token endpoint requests by outcome: granted, or the refusal's RFC 6749 "
            "error code (invalid_request, invalid_client, invalid_grant, "
            "unsupported_grant_type), forbidden, too_large, rate_limited.",
            ["outcome"],
            registry=registry,
        )
        for outcome in token_outcomes:
            self.token_requests.labels(outcome)
        self.time_refused = Counter(
            "clevertap_export_event_time_refused",
            "Webhooks refused (422, also counted as outcome invalid) because their 'Date and "
            "Time' was outside the accepted window: too_far_ahead (--event-time-max-ahead "
            "after receipt), too_early (before --event-time-min).",
            ["reason"],
            registry=registry,
        )
        #: Accepted events with an unknown value, by label: counted like ``outcomes``.
        self.unknown_values: dict[str, int] = dict.fromkeys(KNOWN, 0)
        registry.register(_Family(lambda: _counter(
            "clevertap_export_unknown_values",
            "Accepted events whose partner, export_type or frequency is not a value CleverTap "
            "is known to send (a typo, or a new value): by label. An unknown frequency is "
            "never overdue.",
            "label", self.unknown_values)))
        self.malformed_requests = Counter(
            "clevertap_export_http_malformed_requests",
            "Requests refused (400) by the HTTP parser before reaching an endpoint, by reason: "
            "content_encoding (a body that does not decompress, or an unsupported "
            "Content-Encoding), malformed (not HTTP, bad headers). A body that fails to "
            "decompress when read is counted by its endpoint instead.",
            ["reason"],
            registry=registry,
        )
        # Every reason and label from zero, so increase() sees the very first one.
        for reason in ("content_encoding", "malformed"):
            self.malformed_requests.labels(reason)
        for reason in TIME_REFUSALS:
            self.time_refused.labels(reason)
        #: Non-cumulative webhook counts per bucket of ``LATENCY_BUCKETS`` (the last for +Inf)
        #: and their sum: the latency histogram, exposed at scrape time like ``outcomes``.
        self.latency_counts = [0] * len(LATENCY_BUCKETS)
        self.latency_sum = 0.0
        registry.register(_Family(self._latency))
        Gauge(
            "clevertap_export_exporter_build_info",
            "Always 1; the exporter's version as a label.",
            ["version"],
            registry=registry,
        ).labels(__version__).set(1)

    def count_webhook(self, outcome: str, seconds: float) -> None:
        """One webhook answered with ``outcome`` after ``seconds``."""
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        self.latency_counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds

    def _latency(self) -> Metric:
        counts = list(self.latency_counts)  # one copy, so the buckets agree with each other
        return HistogramMetricFamily(
            "clevertap_export_webhook_request_duration_seconds",
            "Seconds from receiving a webhook to answering it, including the durable commit.",
            buckets=list(zip(_LE, itertools.accumulate(counts), strict=True)),
            sum_value=self.latency_sum,
        )


class _Family(Collector):
    """One metric family built at scrape time from numbers the loop keeps."""

    def __init__(self, build: Callable[[], Metric]) -> None:
        self._build = build

    def collect(self) -> Iterable[Metric]:
        yield self._build()


def _counter(name: str, documentation: str, label: str, counts: dict[str, int]) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for value, n in list(counts.items()):  # a copy: the loop may add a value meanwhile
        family.add_metric([value], n)
    return family
