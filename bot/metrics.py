"""Prometheus metrics (GET /metrics on the health port): photos served, latency, errors by kind, queue depth,
catalogue size and index generation. Needs prometheus-client (the 'scale' extra); without it, nothing is kept."""

from __future__ import annotations

from collections.abc import Callable

LATENCY_BUCKETS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class Metrics:
    """Counters that cost nothing when prometheus-client is absent (available is then False)."""

    def __init__(self, queue_depth: Callable[[], float], products: Callable[[], float],
                 generation: Callable[[], float]):
        try:
            import prometheus_client as prom
        except ImportError:
            self.available = False
            return
        self.available = True
        self._prom = prom
        # A registry of our own: the process collectors of the default one are not what an operator asked for.
        self.registry = prom.CollectorRegistry()
        self.photos = prom.Counter("fashion_photos_served", "Photos answered with an album", registry=self.registry)
        self.latency = prom.Histogram("fashion_photo_latency_seconds", "From the update to the album sent",
                                      buckets=LATENCY_BUCKETS, registry=self.registry)
        self.errors = prom.Counter("fashion_errors", "Photos or updates that failed, by kind", ["kind"],
                                   registry=self.registry)
        for name, text, read in (("fashion_queue_depth", "Photos waiting for or in the model", queue_depth),
                                 ("fashion_products", "Products in the catalogue being served", products),
                                 ("fashion_index_generation", "Generation of the index being served", generation)):
            prom.Gauge(name, text, registry=self.registry).set_function(read)

    def served(self, seconds: float) -> None:
        if self.available:
            self.photos.inc()
            self.latency.observe(seconds)

    def error(self, kind: str) -> None:
        if self.available:
            self.errors.labels(kind).inc()

    def render(self) -> bytes:
        return self._prom.generate_latest(self.registry) if self.available else b""
