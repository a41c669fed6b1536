"""The search service: one inference worker fed in small batches, behind a bounded queue.

Photos are decoded, and their items found, in helper threads; everything heavy (the model, the scan over
the vectors) runs in one worker thread, so the event loop never blocks and the 2 cores are not
oversubscribed. Requests that arrive while the worker is busy are served together: one batch through
the model and one pass over the vectors for all of them, which is what keeps a burst of users fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image
from threadpoolctl import threadpool_limits

from bot.memory import release_freed_memory
from indexing import Embedder, Hit, Index, load_image
from indexing.extract.images import open_photo
from indexing.finder.background import BorderFinder
from indexing.finder.first_cut import find_first, first_item, item_picture
from indexing.finder.items import Finding, Item, ItemFinder, item_pixels

MAX_BATCH = 8  # queries served by one pass over the vectors
# Pictures per model call. Batches help the model little on 2 cores (17.1 pictures/s one at a time, 19.1 in
# eights: benchmarks/results, build), but a batch's activations are held at once: 8 cost ~45 MB more at
# the peak of a burst than 2, and the 700 MB budget had no room for that.
MODEL_BATCH = 2
# What is kept of a photo once its first item is cut out: enough to draw the outlines on and to look for
# the other items (the finder works at 160 pixels), a third of the memory of the decoded photo.
KEPT_SIDE = 480


class Busy(Exception):
    """More photos are waiting than MAX_PENDING: the user should try again in a moment."""


@dataclass
class Job:
    k: int  # 0: embed only
    exclude: Sequence[str]
    filters: Mapping[str, Sequence[str]] | None
    pixels: np.ndarray | None = None  # a picture to embed, or
    vector: np.ndarray | None = None  # an embedding we already have
    done: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


@dataclass
class Photo:
    """A user's photo, decoded (reduced to KEPT_SIDE once its first item is cut out), with its items."""

    data: bytes
    image: Image.Image
    size: tuple[int, int]  # as sent (after EXIF rotation): the items' boxes are in these pixels
    finding: Finding

    @property
    def first(self) -> int:
        """The item searched first: the most prominent one, or the whole photo if none stands out."""
        return first_item(self.finding)


def reduced(image: Image.Image, side: int) -> Image.Image:
    """The image with its long side at most side."""
    if max(image.size) <= side:
        return image
    copy = image.copy()
    copy.thumbnail((side, side), Image.Resampling.BILINEAR)
    return copy


@dataclass
class Recommendation:
    photo: Photo
    vector: np.ndarray
    hits: list[Hit]


class Recommender:
    def __init__(self, index: Index, embedder: Embedder, max_pending: int = 32, finder: ItemFinder | None = None):
        self.index = index
        self.embedder = embedder
        self.finder: ItemFinder = finder or BorderFinder()
        self.max_pending = max_pending
        self.pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        # The scan over the vectors is bound by memory bandwidth, not compute: one BLAS thread does it
        # almost as fast as two, and leaves ONNX Runtime's threads their cores. Two spinning thread
        # pools on 2 cores doubled the model's time per photo (benchmarks: 109 ms against 52 ms).
        threadpool_limits(1, user_api="blas")
        self._jobs: asyncio.Queue[Job] | None = None
        self._runner: asyncio.Task | None = None
        self._working_since: float | None = None  # when the batch in the worker started (None: idle)

    @property
    def busy(self) -> bool:
        return self.pending >= self.max_pending

    def stuck_for(self) -> float:
        """Seconds the batch in the worker has taken so far (0 when idle): a batch takes well under a second."""
        return 0.0 if self._working_since is None else time.monotonic() - self._working_since

    def first_cut(self, data: bytes) -> tuple[Photo, np.ndarray]:
        """The photo with its quickly found items, kept small, and the pixels of the item to search first
        (blocking: call it in a thread)."""
        image, size, finding = find_first(self.finder, data)
        pixels = item_picture(self.finder, data, image, size, finding, first_item(finding))
        return Photo(data, reduced(image, KEPT_SIDE), size, finding), pixels

    async def recommend(self, data: bytes, k: int, *, filters: Mapping[str, Sequence[str]] | None = None
                        ) -> Recommendation:
        """Decode the photo, find its items, and search the most prominent one (or the whole photo).

        Only the quick cues run before the album: the further proposals come from complete().
        """
        if self.busy:
            raise Busy
        self.pending += 1
        self._idle.clear()
        try:
            photo, pixels = await asyncio.to_thread(self.first_cut, data)
            vector, hits = await self._submit(Job(k, (), filters, pixels=pixels))
            return Recommendation(photo, vector, hits)
        finally:
            self.pending -= 1
            if not self.pending:
                self._idle.set()

    async def until_idle(self, timeout: float) -> None:
        """Wait until no photo is being searched, or timeout seconds: work that can wait (the buttons
        message, drawn and uploaded) then leaves the 2 cores to the albums of a burst of users."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)

    async def complete(self, photo: Photo) -> Photo:
        """The same photo with every proposal, the busy-photo cues included; item 0 stays item 0."""
        return replace(photo, finding=await asyncio.to_thread(self.finder.find, photo.image, photo.size))

    def outlined(self, photo: Photo) -> list[Item]:
        """The photo's items as they are outlined and kept: each with its mask drawn at the photo's detail."""
        return [self.finder.refine(photo.image, photo.finding, n) for n in range(len(photo.finding.items))]

    async def embed_item(self, data: bytes, item: Item | None) -> np.ndarray:
        """The vector of an item kept from a photo seen before (None: the whole photo), from the photo's bytes."""
        def cut() -> np.ndarray:
            if item is None:
                return load_image(data)
            image, size = open_photo(data)
            return item_pixels(image, item, size)

        vector, _hits = await self._submit(Job(0, (), None, pixels=await asyncio.to_thread(cut)))
        return vector

    async def search(self, vector: np.ndarray, k: int, *, exclude: Sequence[str] = (),
                     filters: Mapping[str, Sequence[str]] | None = None) -> list[Hit]:
        _vector, hits = await self._submit(Job(k, exclude, filters, vector=vector))
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
            self._working_since = time.monotonic()
            try:
                results = await loop.run_in_executor(self._worker, self._run, batch)
            except Exception as exc:  # the handlers' error path reports it to each user
                for job in batch:
                    if not job.done.done():
                        job.done.set_exception(exc)
                continue
            finally:
                self._working_since = None
            for job, result in zip(batch, results, strict=True):
                if not job.done.done():
                    job.done.set_result(result)
            if jobs.empty():  # idle: hand back what the batch's activations took, not keep it for the next
                await loop.run_in_executor(self._worker, release_freed_memory)

    def _run(self, batch: list[Job]) -> list[tuple[np.ndarray, list[Hit]]]:
        """In the worker thread: one model call for the pictures, one scan for every query."""
        pictures = [job for job in batch if job.pixels is not None]
        if pictures:
            stack = np.stack([job.pixels for job in pictures])
            vectors = np.concatenate([self.embedder.embed(stack[start:start + MODEL_BATCH])
                                      for start in range(0, len(stack), MODEL_BATCH)])
            for job, vector in zip(pictures, vectors, strict=True):
                job.vector = vector
                job.pixels = None
        searches = [job for job in batch if job.k > 0]
        found: dict[int, list[Hit]] = {}
        if searches:
            queries = np.stack([job.vector for job in searches])
            k = max(job.k for job in searches)
            results = self.index.search_many(queries, k, excludes=[job.exclude for job in searches],
                                              filters=[job.filters for job in searches])
            found = {id(job): hits[: job.k] for job, hits in zip(searches, results, strict=True)}
        return [(job.vector, found.get(id(job), [])) for job in batch]

    def close(self) -> None:
        if self._runner:
            self._runner.cancel()
        self._worker.shutdown(wait=False, cancel_futures=True)
