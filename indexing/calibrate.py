"""`fashion-index calibrate`: the distance past which the bot says "nothing similar", chosen from photos of catalogue
products and photos that are not fashion, and stored in the index's manifest."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from indexing.errors import FashionIndexError, ImageError
from indexing.extract.embedder import Embedder
from indexing.extract.extractor import open_embedder
from indexing.finder.finders import open_finder
from indexing.finder.first_cut import first_picture
from indexing.finder.items import ItemFinder
from indexing.nearness import Cutoff, choose, distribution, judge, neighbour_distances, table
from indexing.sources.catalogue import list_images
from indexing.store.files import now, update_manifest
from indexing.store.index import Index

BATCH = 16


@dataclass
class Calibration:
    near: np.ndarray  # best distances of the photos of catalogue products
    far: np.ndarray  # best distances of the photos that are not fashion
    chosen: Cutoff
    neighbours: dict[str, Any]  # the catalogue's own nearest-neighbour distances (nearness.distribution)
    weights: str  # the index's weights identity (random weights make the figures meaningless for real ones)
    unreadable: list[str] = field(default_factory=list)

    def rows(self) -> list[Cutoff]:
        """The chosen cut-off among the catalogue's own nearest-neighbour percentiles, for comparison."""
        marks = sorted({*self.neighbours.get("percentiles", {}).values(), self.chosen.cutoff})
        return table(self.near, self.far, marks)

    def to_dict(self) -> dict[str, Any]:
        return {**self.chosen.to_dict(), "queries": len(self.near), "others": len(self.far), "calibrated": now()}


def photos_in(folder: str | Path) -> list[Path]:
    files = list_images([folder])
    if not files:
        raise FashionIndexError(f"no images in {folder}")
    return files


def best_distances(index: Index, embedder: Embedder, finder: ItemFinder, files: list[Path], label: str,
                   progress: bool, unreadable: list[str]) -> np.ndarray:
    """Each photo's distance to its best match, searched as the bot searches it (its first item, or the whole)."""
    distances: list[float] = []
    for start in tqdm(range(0, len(files), BATCH), desc=label, unit="batch", disable=not progress):
        pictures = []
        for path in files[start : start + BATCH]:
            try:
                pictures.append(first_picture(finder, path.read_bytes()))
            except (ImageError, OSError) as exc:
                unreadable.append(f"{path}: {exc}")
        if pictures:
            results = index.search_many(embedder.embed(np.stack(pictures)), 1)
            distances += [hits[0].distance for hits in results if hits]
    return np.asarray(distances, np.float32)


def calibrate(directory: str | Path, queries: str | Path, others: str | Path, *, cutoff: float | None = None,
              finder: str = "auto", runtime: str = "auto", weights_path: str | None = None,
              progress: bool = True) -> Calibration:
    """Measure both folders against the index, choose the cut-off (or judge the one given), and store it."""
    directory = Path(directory)
    near_files, far_files = photos_in(queries), photos_in(others)  # before the model takes its seconds to load
    index = Index.load(directory)
    embedder = open_embedder(index, runtime=runtime, weights_path=weights_path)
    item_finder = open_finder(finder, embedder, index.manifest)
    unreadable: list[str] = []
    near = best_distances(index, embedder, item_finder, near_files, "catalogue photos", progress, unreadable)
    far = best_distances(index, embedder, item_finder, far_files, "other photos", progress, unreadable)
    if not len(near) or not len(far):
        raise FashionIndexError("no readable photos in one of the folders: calibration needs both kinds")
    neighbours = index.manifest.get("neighbours") or distribution(neighbour_distances(index))
    chosen = choose(near, far) if cutoff is None else judge(cutoff, near, far)
    result = Calibration(near, far, chosen, neighbours, str(index.fingerprint.get("weights")), unreadable)
    update_manifest(directory, neighbours=neighbours, calibration=result.to_dict())
    return result


def record_neighbours(directory: Path) -> dict[str, Any]:
    """Measure the catalogue's nearest-neighbour distances and keep them in its manifest (at the end of a build)."""
    neighbours = distribution(neighbour_distances(Index.load(directory)))
    update_manifest(directory, neighbours=neighbours)
    return neighbours
