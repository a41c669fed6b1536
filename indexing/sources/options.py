"""How a catalogue is embedded and published, whatever its source: one frozen object for every builder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from indexing.extract.embedder import Weights


@dataclass(frozen=True)
class BuildOptions:
    """weights: for a new index, unless an embedder is given. export: embed with, and keep beside the index,
    the ONNX export of a TensorFlow extractor (a third faster, and what the bot serves with). ann: the
    approximate-search graph, auto|on|off (None: auto for a new index, as it was for an existing one).
    store: keep vectors and products in Milvus (`milvus://HOST:PORT/COLLECTION` or a Milvus Lite *.db).
    milvus_index: Milvus's vector index, `TYPE[:KEY=VALUE,...]` (None: exact below 100k rows, HNSW above).
    publish: commit the products embedded so far, now and then, for a bot to serve during a build.
    checkpoint_every: photos between checkpoints, what a kill -9 can cost. limit: the first N photos only.
    workers: parallel downloads of a feed's photos. recheck: ask the shop's server about every photo, even one its
    cache headers say is still fresh (a photo replaced at the same URL). on_checkpoint: called with the count done
    at each one."""

    weights: Weights = field(default_factory=lambda: Weights("imagenet"))
    batch_size: int = 8
    checkpoint_every: int = 256
    export: bool = True
    ann: str | None = None
    store: str | None = None
    milvus_index: str | None = None
    overwrite: bool = False
    publish: bool = True
    progress: bool = True
    copy_images: bool = False
    limit: int | None = None
    workers: int = 8
    recheck: bool = False
    on_checkpoint: Callable[[int], None] | None = None


DEFAULTS = BuildOptions()  # frozen: safe to share as every builder's default
