"""Follow the index folder: switch to each generation that a build, sync, add or remove commits, with no restart
and no request dropped (a batch in flight finishes on the generation it started with)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from bot.alerts import queue_alerts
from bot.filter_words import Vocabulary
from bot.services import Services
from indexing import Index
from indexing.errors import ExtractorMismatchError
from indexing.store.files import MANIFEST, read_manifest

log = logging.getLogger(__name__)
# Manifest fields that change without a new generation (a sync that services nothing new, a build's progress, the
# catalogue's nearest-neighbour distances and the "nothing similar" cut-off that calibrate stores).
PROGRESS_FIELDS = ("synced", "updated", "building", "neighbours", "calibration")


def stamp(directory: Path) -> tuple[int, int, int] | None:
    try:
        status = (directory / MANIFEST).stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size, status.st_ino


def newer_generation(directory: Path, current: Index, store_uri: str | None = None) -> Index | None:
    """The index's new generation, loaded, or None if only progress fields changed (copied into current)."""
    manifest = read_manifest(directory)
    if manifest.get("generation") == current.manifest.get("generation"):
        for key in PROGRESS_FIELDS:
            if key in manifest:
                current.manifest[key] = manifest[key]
            else:
                current.manifest.pop(key, None)
        return None
    fresh = Index.load(directory, store_uri)
    if fresh.fingerprint != current.fingerprint:
        raise ExtractorMismatchError("the index was rebuilt with another extractor: restart the bot to serve it")
    return fresh


def switch(services: Services, fresh: Index) -> None:
    services.recommender.index = fresh
    services.vocabulary = Vocabulary(fresh.facets())


async def follow_index(services: Services, every: float) -> None:
    """Every `every` seconds, look at the manifest; load a new generation in a thread, switch to it and compare the
    saved products with it. Any failure (a manifest half-replaced or garbage, a segment deleted under the load,
    Milvus away, the state away, an error nobody foresaw) leaves the last good generation serving and /healthz
    degraded with its reason, and is tried again, backing off to two periods at most: a repair is picked up with no
    restart."""
    directory = services.settings.index_dir
    seen = stamp(directory)
    unsettled: Index | None = None  # a generation served whose saved products are not yet compared
    delay = every
    while True:
        await asyncio.sleep(delay)
        try:
            now = stamp(directory)
            if now != seen:
                fresh = await asyncio.to_thread(newer_generation, directory, services.index,
                                                services.settings.store_uri)
                seen = now
                if fresh is not None:
                    switch(services, fresh)
                    log.info("catalogue updated: generation %s, %d products (%d photos)",
                             fresh.manifest.get("generation"), fresh.product_count, fresh.count)
                    unsettled = fresh
            if unsettled is not None:
                await queue_alerts(services.state, unsettled)
                unsettled = None
        except Exception as exc:  # never fatal: the reason is told once, and the next look tries again
            why = "the saved products cannot be compared with it" if unsettled is not None else "it cannot be served"
            services.health.failing("catalogue", f"the index changed but {why}: {type(exc).__name__}: {exc}")
            delay = min(2 * delay, 2 * every)
            continue
        services.health.passing("catalogue")
        delay = every
