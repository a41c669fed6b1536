"""How near a photo's best match is, measured against the catalogue's own nearest neighbours: the distribution a
build records, and the "nothing similar" cut-off chosen from photos of both kinds (pure functions on distances).

What counts as far depends on the weights (random weights put everything at other distances than ImageNet's), so
no constant here says what is far: the catalogue and the shop's own photos do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from indexing.store.index import Index

PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)
SAMPLE = 1000  # products whose nearest neighbour is measured: enough for the 99th percentile to settle
BATCH = 64


def neighbour_distances(index: Index, sample: int = SAMPLE, seed: int = 0) -> np.ndarray:
    """For a sample of products, the distance from each one's main photo to the nearest other product (a photo
    that another product shares, shown once in results, does not count as a neighbour)."""
    products = sorted(set(index.ids))
    if len(products) < 2:
        return np.zeros(0, np.float32)
    rng = np.random.default_rng(seed)
    chosen = [products[i] for i in sorted(rng.choice(len(products), min(sample, len(products)), replace=False))]
    distances: list[float] = []
    for start in range(0, len(chosen), BATCH):
        batch = chosen[start : start + BATCH]
        queries = np.stack([index.vector(pid) for pid in batch])
        results = index.search_many(queries, 1, excludes=[index.ids_with_photo(pid) for pid in batch])
        distances += [hits[0].distance for hits in results if hits]
    return np.asarray(distances, np.float32)


def distribution(distances: np.ndarray) -> dict[str, Any]:
    """What the manifest keeps of the nearest-neighbour distances: how many, and their percentiles."""
    if not len(distances):
        return {"sample": 0, "percentiles": {}}
    return {"sample": len(distances),
            "percentiles": {str(p): round(float(np.percentile(distances, p)), 4) for p in PERCENTILES}}


def percentile_of(neighbours: Mapping[str, Any], distance: float) -> str:
    """Where a distance falls among the catalogue's own nearest-neighbour distances, e.g. `p90-p95`."""
    marks = [(int(p), d) for p, d in neighbours.get("percentiles", {}).items()]
    below = [p for p, d in marks if d <= distance]
    above = [p for p, d in marks if d > distance]
    if not below:
        return f"<p{min(above)}" if above else "?"
    return f">p{max(below)}" if not above else f"p{max(below)}-p{min(above)}"


@dataclass(frozen=True)
class Cutoff:
    """A cut-off and how it does: "nothing similar" is said for photos whose best match is farther than it."""

    cutoff: float
    precision: float  # of the photos told "nothing similar", the share that were not of the catalogue
    recall: float  # of the photos not of the catalogue, the share told "nothing similar"
    answered: float  # of the photos of catalogue products, the share still answered with products

    @property
    def f_half(self) -> float:
        """F0.5: precision weighs twice recall. Telling a shopper with a real garment "nothing similar" costs more
        than showing five products for a photo of a cat."""
        both = 0.25 * self.precision + self.recall
        return 1.25 * self.precision * self.recall / both if both else 0.0

    def to_dict(self) -> dict[str, float]:
        return {key: round(value, 4) for key, value in asdict(self).items()}


def judge(cutoff: float, near: np.ndarray, far: np.ndarray) -> Cutoff:
    """How a cut-off sorts photos of catalogue products (near) from the others (far), by their best distance."""
    flagged_far = int(np.sum(far > cutoff))
    flagged_near = int(np.sum(near > cutoff))
    flagged = flagged_far + flagged_near
    return Cutoff(float(cutoff), flagged_far / flagged if flagged else 1.0, flagged_far / len(far) if len(far) else 0.0,
                  float(np.mean(near <= cutoff)) if len(near) else 1.0)


def candidates(near: np.ndarray, far: np.ndarray) -> list[float]:
    """Every cut-off that sorts the photos differently: halfway between each two neighbouring distances."""
    values = np.unique(np.concatenate([near, far]).astype(np.float64))
    return [float(v) for v in (values[:-1] + values[1:]) / 2] or [float(v) for v in values]


def choose(near: np.ndarray, far: np.ndarray) -> Cutoff:
    """The cut-off with the best F0.5 of "nothing similar"; on a tie, the largest (fewest shoppers turned away)."""
    if not len(near) or not len(far):
        raise ValueError("calibration needs photos of catalogue products and photos that are not")
    return max((judge(c, near, far) for c in candidates(near, far)), key=lambda row: (round(row.f_half, 9), row.cutoff))


def table(near: np.ndarray, far: np.ndarray, cutoffs: Sequence[float]) -> list[Cutoff]:
    return [judge(c, near, far) for c in cutoffs]


def cutoff_of(manifest: Mapping[str, Any]) -> float | None:
    """The calibrated cut-off of an index, or None where none was chosen (the bot then always shows products)."""
    value = (manifest.get("calibration") or {}).get("cutoff")
    return float(value) if isinstance(value, (int, float)) else None
