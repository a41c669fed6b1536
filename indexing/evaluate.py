"""Retrieval measures for an index: recall@k on query photos, leave-one-out category precision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from indexing.errors import ImageError
from indexing.extract.embedder import Embedder
from indexing.extract.images import load_image
from indexing.sources.catalogue import list_images, product_id
from indexing.store.index import Index


def recall(index: Index, embedder: Embedder, queries: Path, *, limit: int | None = None,
           batch_size: int = 16, progress: bool = True, reference: Embedder | None = None) -> dict[str, Any]:
    """recall@1 and @5 for photos named <id>.<ext> whose product is indexed; a twin photo counts.

    reference: another extractor (fp32 when embedder is int8) whose top 5 is compared with embedder's.
    """
    files = [f for f in list_images([queries]) if product_id(f) in index][:limit]
    hits1 = hits5 = unreadable = 0
    overlaps: list[float] = []
    for start in tqdm(range(0, len(files), batch_size), desc="queries", disable=not progress):
        batch, ids = [], []
        for path in files[start : start + batch_size]:
            try:
                batch.append(load_image(path))
                ids.append(product_id(path))
            except ImageError:
                unreadable += 1
        if not batch:
            continue
        pixels = np.stack(batch)
        results = index.search_many(embedder.embed(pixels), 5)
        for target, hits in zip(ids, results, strict=True):
            found = [index.same_photo(target, hit.id) for hit in hits]
            hits1 += bool(found[:1] and found[0])
            hits5 += any(found)
        if reference is not None:
            for ours, theirs in zip(results, index.search_many(reference.embed(pixels), 5), strict=True):
                overlaps.append(len({h.id for h in ours} & {h.id for h in theirs}) / 5)
    n = len(files) - unreadable
    figures = {"queries": n, "unreadable": unreadable,
               "recall@1": hits1 / n if n else None, "recall@5": hits5 / n if n else None}
    if reference is not None:
        figures["top5_overlap_with_fp32"] = float(np.mean(overlaps)) if overlaps else None
    return figures


def category_precision(index: Index, *, column: str = "articleType", sample: int = 500,
                       k: int = 5, seed: int = 0) -> dict[str, Any]:
    """Leave-one-out: of each sampled product's k nearest others, the share in its own category."""
    if column not in index.facets():
        return {"column": column, "sampled": 0, f"precision@{k}": None}
    rng = np.random.default_rng(seed)
    chosen = rng.choice(index.count, size=min(sample, index.count), replace=False)
    shares = []
    for position in chosen:
        pid = index.ids[position]
        hits = index.search(index.vector(pid), k, exclude=index.ids_with_photo(pid))
        if hits:
            own = index.product(pid)["meta"].get(column)
            shares.append(sum(h.meta.get(column) == own for h in hits) / len(hits))
    return {"column": column, "sampled": len(shares),
            f"precision@{k}": float(np.mean(shares)) if shares else None}
