"""The search service: one inference worker fed in small batches, behind a bounded queue.

Photos are decoded in helper threads; everything heavy (the model, the scan over the vectors) runs in
one worker thread, so the event loop never blocks and the 2 cores are not oversubscribed. Requests
that arrive while the worker is busy are served together: one batch through the model and one pass
over the vectors for all of them, which is what keeps a burst of users fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from indexing import Embedder, Hit, Index, load_image

MAX_BATCH = 8  # the model's best throughput on 2 cores (benchmarks/results: build)


class Busy(Exception):
    """More photos are waiting than MAX_PENDING: the user should try again in a moment."""


@dataclass
class Job:
    k: int
    exclude: Sequence[str]
    filters: Mapping[str, Sequence[str]] | None
    pixels: np.ndarray | None = None  # a decoded photo to embed, or
    vector: np.ndarray | None = None  # an embedding we already have
    done: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Recommender:
    def __init__(self, index: Index, embedder: Embedder, max_pending: int = 32):
        self.index = index
        self.embedder = embedder
        self.max_pending = max_pending
        self.pending = 0
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        # The scan over the vectors is bound by memory bandwidth, not compute: one BLAS thread does it
        # almost as fast as two, and leaves ONNX Runtime's threads their cores. Two spinning thread
        # pools on 2 cores doubled the model's time per photo (benchmarks: 109 ms against 52 ms).
        threadpool_limits(1, user_api="blas")
        self._jobs: asyncio.Queue[Job] | None = None
        self._runner: asyncio.Task | None = None

    @property
    def busy(self) -> bool:
        return self.pending >= self.max_pending

    async def recommend(self, photo: bytes, k: int, *, filters: Mapping[str, Sequence[str]] | None = None
                        ) -> tuple[np.ndarray, list[Hit]]:
        """Decode, embed and search one photo: its vector and its k nearest products."""
        if self.busy:
            raise Busy
        self.pending += 1
        try:
            pixels = await asyncio.to_thread(load_image, photo)
            job = Job(k, (), filters, pixels=pixels)
            return await self._submit(job)
        finally:
            self.pending -= 1

    async def search(self, vector: np.ndarray, k: int, *, exclude: Sequence[str] = (),
                     filters: Mapping[str, Sequence[str]] | None = None) -> list[Hit]:
        _, hits = await self._submit(Job(k, exclude, filters, vector=vector))
        return hits

    async def _submit(self, job: Job) -> tuple[np.ndarray, list[Hit]]:
        if self._jobs is None:
            self._jobs = asyncio.Queue()
            self._runner = asyncio.create_task(self._serve(self._jobs), name="recommender")
        self._jobs.put_nowait(job)
        return await job.done

    async def _serve(self, jobs: asyncio.Queue[Job]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await jobs.get()]
            while len(batch) < MAX_BATCH and not jobs.empty():
                batch.append(jobs.get_nowait())
            try:
                results = await loop.run_in_executor(self._worker, self._run, batch)
            except Exception as exc:  # the handlers' error path reports it to each user
                for job in batch:
                    if not job.done.done():
                        job.done.set_exception(exc)
                continue
            for job, result in zip(batch, results, strict=True):
                if not job.done.done():
                    job.done.set_result(result)

    def _run(self, batch: list[Job]) -> list[tuple[np.ndarray, list[Hit]]]:
        """In the worker thread: one model call for the photos, one scan for every query."""
        photos = [job for job in batch if job.pixels is not None]
        if photos:
            vectors = self.embedder.embed(np.stack([job.pixels for job in photos]))
            for job, vector in zip(photos, vectors, strict=True):
                job.vector = vector
        queries = np.stack([job.vector for job in batch])
        k = max(job.k for job in batch)
        found = self.index.search_many(queries, k, excludes=[job.exclude for job in batch],
                                       filters=[job.filters for job in batch])
        return [(query, hits[: job.k]) for job, query, hits in zip(batch, queries, found, strict=True)]

    def close(self) -> None:
        if self._runner:
            self._runner.cancel()
        self._worker.shutdown(wait=False, cancel_futures=True)
