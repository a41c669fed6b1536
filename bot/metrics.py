"""Prometheus metrics (GET /metrics on the health port): photos served, latency, errors by kind, queue depth,
catalogue size, index generation, the process's memory and what was built. Needs prometheus-client (the 'scale'
extra); without it, nothing is kept."""

from __future__ import annotations

import platform
from collections.abc import Callable, Mapping
from typing import Any

from indexing.about import package_version

LATENCY_BUCKETS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class Metrics:
    """Counters that cost nothing when prometheus-client is absent (available is then False)."""

    def __init__(self, queue_depth: Callable[[], float], products: Callable[[], float],
                 generation: Callable[[], float], info: Mapping[str, str] | None = None):
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
        # process_resident_memory_bytes and friends, read from /proc: the bot's budget is 700 MB.
        prom.ProcessCollector(registry=self.registry)
        prom.Info("fashion_build", "The bot's version, Python, extractor runtime and weights",
                  registry=self.registry).info(dict(info or {}))

    def served(self, seconds: float) -> None:
        if self.available:
            self.photos.inc()
            self.latency.observe(seconds)

    def error(self, kind: str) -> None:
        if self.available:
            self.errors.labels(kind).inc()

    def render(self) -> bytes:
        return self._prom.generate_latest(self.registry) if self.available else b""


def build_info(fingerprint: Mapping[str, Any], runtime: str) -> dict[str, str]:
    """What fashion_build_info reports: the package's version, Python's, and the extractor being served."""
    return {"version": package_version(), "python": platform.python_version(), "runtime": runtime,
            "weights": str(fingerprint.get("weights", "unknown"))}
