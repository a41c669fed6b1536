"""The search service: one inference worker behind a bounded queue, so the event loop never blocks."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from indexing import Embedder, Hit, Index, load_image


class Busy(Exception):
    """More photos are waiting than MAX_PENDING: the user should try again in a moment."""


class Recommender:
    def __init__(self, index: Index, embedder: Embedder, max_pending: int = 32):
        self.index = index
        self.embedder = embedder
        self.max_pending = max_pending
        self.pending = 0
        # One worker: the model already uses every core, and two at once only thrash the caches.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")

    async def embed(self, photo: bytes) -> np.ndarray:
        """Decode (in a helper thread, overlapping the model) and embed one photo."""
        if self.pending >= self.max_pending:
            raise Busy
        self.pending += 1
        try:
            pixels = await asyncio.to_thread(load_image, photo)
            loop = asyncio.get_running_loop()
            vectors = await loop.run_in_executor(self._worker, self.embedder.embed, pixels[None])
            return vectors[0]
        finally:
            self.pending -= 1

    async def search(self, vector: np.ndarray, k: int, *, exclude: Sequence[str] = (),
                     filters: Mapping[str, Sequence[str]] | None = None) -> list[Hit]:
        return await asyncio.to_thread(self.index.search, vector, k, exclude=exclude, filters=filters)

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
