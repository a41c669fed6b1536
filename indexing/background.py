"""The default item finder: learn the surface from the photo's border; items are what it cannot explain."""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from indexing.colour import kmeans, to_lab
from indexing.contrast import contrast_objects
from indexing.items import MAX_ITEMS, Finding, Item, box_iou, scale_box

WORK_SIDE = 160  # the finder looks at photos this size (long side): a few milliseconds a photo
BORDER = 0.05  # the border ring, as a share of the short side, from which the surface is learnt
CLUSTERS = 4  # surface modes: a plain sheet needs one, wood grain, weaves or a cluttered floor more
# Per-feature noise floors for (L, a, b, texture): a difference below these is never an edge.
FLOORS = np.array([4.0, 3.0, 3.0, 2.5], np.float32)
MIN_AREA = 0.004  # items smaller than this share of the photo are specks
STANDS_OUT = 0.12  # the first item's prominence must reach this for it to be searched on its own
WHITE = 226  # a packshot's border: every channel above this


def work_copy(photo: Image.Image) -> np.ndarray:
    scale = WORK_SIDE / max(photo.size)
    size = (max(8, round(photo.width * scale)), max(8, round(photo.height * scale)))
    return np.asarray(photo.resize(size, Image.Resampling.BOX, reducing_gap=2.0), np.float32)


def border_ring(shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    width = max(2, round(BORDER * min(h, w)))
    ring = np.ones((h, w), bool)
    ring[width:-width, width:-width] = False
    return ring


def features(lab: np.ndarray) -> np.ndarray:
    """Per pixel: smoothed Lab colour and local texture energy (the spread of lightness around it)."""
    colour = ndimage.gaussian_filter(lab, (1.5, 1.5, 0))
    light = lab[..., 0]
    mean = ndimage.gaussian_filter(light, 2.0)
    texture = np.sqrt(np.maximum(ndimage.gaussian_filter(light * light, 2.0) - mean * mean, 0))
    return np.concatenate([colour, texture[..., None]], -1)


def remove_light_trend(feats: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """Subtract a smooth (quadratic) trend of the colour fitted on the border: uneven light on a surface."""
    h, w = ring.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = x / w - 0.5, y / h - 0.5
    basis = np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], -1)
    on_border = basis[ring]
    out = feats.copy()
    for channel in range(3):
        values = feats[..., channel][ring]
        keep = np.ones(len(values), bool)
        for _ in range(2):  # an item touching the border must not bend the fit: refit without outliers
            coef, *_ = np.linalg.lstsq(on_border[keep], values[keep], rcond=None)
            residual = np.abs(values - on_border @ coef)
            keep = residual <= np.percentile(residual, 80) + 1e-3
        trend = basis @ coef
        out[..., channel] = feats[..., channel] - trend + coef[0]
    return out


def surface_distance(feats: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """How many noise-widths each pixel lies from the nearest mode of the border's surface."""
    samples = feats[ring]
    centres, labels = kmeans(samples, CLUSTERS)
    flat = feats.reshape(-1, feats.shape[-1])
    best = np.full(len(flat), np.inf, np.float32)
    for j in range(CLUSTERS):
        members = samples[labels == j]
        if len(members) < 0.03 * len(samples):
            continue
        spread = np.maximum(members.std(0), FLOORS)
        best = np.minimum(best, np.sqrt((((flat - centres[j]) / spread) ** 2).mean(-1)))
    return best.reshape(ring.shape)


def is_packshot(rgb: np.ndarray, ring: np.ndarray) -> bool:
    """One product on a white background, as catalogues photograph them."""
    white = rgb.min(-1) >= WHITE
    if white[ring].mean() < 0.6:  # a product may reach the frame's top and bottom, as in the catalogue
        return False
    # Pieces of one product (a pair of shoes, a set) lie close together; separate garments lie apart.
    gap = max(2, round(0.1 * min(ring.shape)))
    labels, count = ndimage.label(ndimage.binary_dilation(~white, iterations=gap))
    if count <= 1:
        return True
    sizes = ndimage.sum(~white, labels, range(1, count + 1))
    return bool(sizes.max() >= 0.6 * sizes.sum())


def segment(distance: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """Pixels the surface cannot explain, with hysteresis: weak ones only where they touch strong ones."""
    low = max(2.5, float(np.percentile(distance[ring], 95)) * 1.15)
    weak = distance > low
    weak = ndimage.binary_opening(weak, iterations=1)
    weak = ndimage.binary_closing(weak, iterations=2)
    weak = ndimage.binary_fill_holes(weak)
    labels, count = ndimage.label(weak)
    if count == 0:
        return labels
    strong = ndimage.maximum(distance, labels, range(1, count + 1)) > 2 * low
    keep = np.concatenate([[0], np.flatnonzero(strong) + 1])
    relabelled = np.zeros(count + 1, int)
    relabelled[keep] = np.arange(len(keep))
    return relabelled[labels]


def prominence(mask: np.ndarray, distance: np.ndarray, ring: np.ndarray) -> float:
    """Big, contrasting, central and clear of the border: what a shopper photographed on purpose."""
    h, w = mask.shape
    area = mask.mean()
    contrast = min(float(np.median(distance[mask])) / 6.0, 1.0)
    ys, xs = np.nonzero(mask)
    off_centre = np.hypot(xs.mean() / w - 0.5, ys.mean() / h - 0.5) / 0.7071
    on_border = (mask & ring).sum() / mask.sum()
    return float(np.sqrt(area) * (0.4 + 0.6 * contrast) * (1 - 0.5 * off_centre) * (1 - on_border))


class BorderFinder:
    """Models the surface from the photo's border (colour, texture, uneven light) and takes the regions it
    cannot explain as items; in busy photos, where the border explains little, windows whose colours stand
    out from their surround fill the list. Needs no model weights and takes a few milliseconds."""

    name = "border"

    def find(self, photo: Image.Image, size: tuple[int, int] | None = None, *, busy_cues: bool = True) -> Finding:
        """busy_cues=False skips the colour-contrast windows (most of the time): the surface's items and the
        item to search first come out the same, only the further proposals are missing."""
        size = size or photo.size
        rgb = work_copy(photo)
        h, w = rgb.shape[:2]
        ring = border_ring((h, w))
        if is_packshot(rgb, ring):
            return Finding(size, [], None, packshot=True)
        lab = to_lab(rgb)
        distance = surface_distance(remove_light_trend(features(lab), ring), ring)
        sx, sy = size[0] / w, size[1] / h
        items = [item for item in surface_items(distance, ring, sx, sy, size)]
        items.sort(key=lambda item: -item.prominence)
        for box, mask, _ in contrast_objects(lab, MAX_ITEMS) if busy_cues else ():
            items.append(Item(scale_box(box, sx, sy, size), soften(mask), 0.0))
        distinct: list[Item] = []
        for item in items:
            if all(box_iou(item.box, kept.box) < 0.5 for kept in distinct):
                distinct.append(item)
        distinct = distinct[:MAX_ITEMS]
        searched = 0 if distinct and distinct[0].prominence >= STANDS_OUT else None
        return Finding(size, distinct, searched)


def soften(mask: np.ndarray) -> np.ndarray:
    """A mask's edge, antialiased: cut-outs then blend into white instead of stair-stepping."""
    return ndimage.gaussian_filter(mask.astype(np.float32), 0.7)


def surface_items(distance: np.ndarray, ring: np.ndarray, sx: float, sy: float,
                  size: tuple[int, int]) -> list[Item]:
    labels = segment(distance, ring)
    items = []
    for label in range(1, labels.max() + 1):
        mask = labels == label
        if mask.mean() < MIN_AREA:
            continue
        ys, xs = np.nonzero(mask)
        box = scale_box((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), sx, sy, size)
        items.append(Item(box, soften(mask), prominence(mask, distance, ring)))
    return items
