"""SCDA (Wei et al. 2017) as an item finder: the extractor's own last convolutional map marks the main object.

The channels of ResNet50's last map, summed, are high where ImageNet features fire; the cells above the
map's mean, their largest connected part, mark the object. That needs ImageNet weights: with random weights
the map marks noise, so this finder is opt-in (ITEM_FINDER=scda, `query --items --finder scda`) and the
border finder stays the default. It costs one more pass of the model over the whole photo.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from indexing.extract.images import SIZE, fit_square
from indexing.finder.background import BorderFinder, soften
from indexing.finder.items import MAX_ITEMS, Finding, Item, ItemFinder, box_area, box_iou, box_overlap, scale_box

GRID = 7  # the map's side for a 224x224 input
MASK_SIDE = 112  # the region is drawn over the padded square at this many pixels a side
MOST = 0.8  # a region covering more of the grid than this marks nothing in particular
INSIDE = 0.6  # a surface item with this share of its box inside the region's box is the region's object
SAME = 0.5  # proposals whose boxes overlap this much (IoU) are one item


def inside(box: tuple[int, int, int, int], region: tuple[int, int, int, int]) -> float:
    """The share of box that lies inside region."""
    return box_overlap(box, region) / box_area(box) if box_area(box) else 0.0


def scda_region(activation: np.ndarray) -> np.ndarray:
    """SCDA's mask over the (7, 7) channel sum: cells above its mean, only the largest connected part."""
    above = activation > activation.mean()
    labels, count = ndimage.label(above)
    if count <= 1:
        return above
    sizes = ndimage.sum(above, labels, range(1, count + 1))
    return labels == int(np.argmax(sizes)) + 1


def region_in_photo(region: np.ndarray, size: tuple[int, int]) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """A region of the grid over the white square that the photo was padded to (fit_square), as a box in the
    photo's pixels and a soft mask over the photo."""
    w, h = size
    side = max(w, h)
    ox, oy = (side - w) // 2, (side - h) // 2
    fine = Image.fromarray(region.astype(np.float32), "F").resize((MASK_SIDE, MASK_SIDE), Image.Resampling.BILINEAR)
    # Sampled at cell centres, bilinear shrinks the region by half a cell at its rim: 0.25, not 0.5, keeps it.
    square = np.asarray(fine) > 0.25
    k = MASK_SIDE / side
    mask = square[round(oy * k): round((oy + h) * k), round(ox * k): round((ox + w) * k)]
    if not mask.any():
        return (0, 0, w, h), np.ones_like(mask, np.float32)
    ys, xs = np.nonzero(mask)
    box = scale_box((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), w / mask.shape[1], h / mask.shape[0], size)
    return box, soften(mask)


class ScdaFinder:
    """The border finder's items, with the item to search first chosen by SCDA: the surface item that is
    SCDA's object (its outline is sharper than a 7x7 grid's), else SCDA's own region."""

    name = "scda"

    def __init__(self, embedder: Any, surface: ItemFinder | None = None):
        self.embedder = embedder
        self.surface = surface or BorderFinder()

    def find(self, photo: Image.Image, size: tuple[int, int] | None = None, *, busy_cues: bool = True) -> Finding:
        size = size or photo.size
        found = self.surface.find(photo, size, busy_cues=busy_cues)
        if found.packshot:
            return found
        pixels = np.asarray(fit_square(photo, SIZE), np.uint8)
        region = scda_region(self.embedder.activation_maps(pixels[None])[0])
        if not region.any() or region.mean() > MOST:
            return found
        box, mask = region_in_photo(region, size)
        # A 7x7 grid's region is coarser than any outline: the surface item lying mostly inside it, the largest
        # such, is its object. Only the surface's items (found with or without the busy-photo cues) may go
        # first, so item 0 stays item 0 when complete() adds the further proposals.
        shares = [inside(item.box, box) if item.cue == "surface" else 0.0 for item in found.items]
        held = [i for i, share in enumerate(shares) if share >= INSIDE]
        if held:
            first = found.items[max(held, key=lambda i: shares[i] * box_area(found.items[i].box))]
        else:
            first = Item(box, mask, float(1 - region.mean()), cue="scda")
        rest = [item for item in found.items if item is not first and box_iou(item.box, first.box) < SAME]
        return replace(found, items=[first, *rest][:MAX_ITEMS], searched=0)

    def refine(self, photo: Image.Image, finding: Finding, n: int) -> Item:
        return self.surface.refine(photo, finding, n)  # SCDA's own region stays as drawn
