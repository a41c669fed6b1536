"""The default item finder: learn the surface from the photo's border; items are what it cannot explain."""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from indexing.finder.colour import to_lab
from indexing.finder.contrast import contrast_objects
from indexing.finder.foreground import foreground
from indexing.finder.items import MAX_ITEMS, Finding, Item, box_area, box_overlap, mask_box, scale_box
from indexing.finder.surface import Surface, border_ring, features, fit_surface, smooth_colour, texture, work_copy

WORK_SIDE = 160  # the finder looks at photos this size (long side): a few milliseconds a photo
FINE = 2  # an item's mask is redrawn at this many times the working scale, for its cut-out
MIN_AREA = 0.004  # items smaller than this share of the photo are specks
STANDS_OUT = 0.12  # the first item's prominence must reach this for it to be searched on its own
WHITE = 226  # a packshot's border: every channel above this
FAINT = 0.5  # a share of the surface's edge: too weak to be an item, enough to tie two parts of one together
CLEAN = 0.05  # a surface leaving at most this share of the photo unexplained is clean: nothing but the items
MOSTLY = 0.5  # and an item holding this share of what it leaves unexplained is what was photographed
NESTED = 0.6  # two boxes sharing this much of the smaller one's area show one item
PART = 0.35  # a part at most this share of its neighbour's area belongs to that neighbour, not beside it
# A surface that explains its photo: the median pixel lies within this share of the edge of it. On such a
# surface a region wholly above the edge is an item, however faint its strongest pixel.
QUIET = 0.25


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


def is_quiet(distance: np.ndarray, low: float) -> bool:
    return bool(np.median(distance) < QUIET * low)


def segment(distance: np.ndarray, low: float, quiet: bool = False) -> np.ndarray:
    """Pixels the surface cannot explain, with hysteresis: weak ones only where they touch strong ones. The
    hysteresis keeps a busy photo's scene from becoming items; where the surface is quiet it has nothing to
    guard against, and it would drop a product close to the surface's colour (a beige shoe on green brick)."""
    weak = distance > low
    weak = ndimage.binary_opening(weak, iterations=1)
    weak = ndimage.binary_closing(weak, iterations=2)
    weak = ndimage.binary_fill_holes(weak)
    labels, count = ndimage.label(weak)
    if count == 0:
        return labels
    strong = ndimage.maximum(distance, labels, range(1, count + 1)) > (low if quiet else 2 * low)
    keep = np.concatenate([[0], np.flatnonzero(strong) + 1])
    relabelled = np.zeros(count + 1, int)
    relabelled[keep] = np.arange(len(keep))
    return join_parts(relabelled[labels], distance, low)


def join_parts(labels: np.ndarray, distance: np.ndarray, low: float) -> np.ndarray:
    """Each small part joined to the larger item it touches through faint evidence: the head above a worn
    shirt (the neck is nearly the colour of a sandy floor), a bag's handle, a strap. Garments of like size
    stay apart, and so does anything across bare surface. Joined labels leave gaps in the numbering."""
    count = int(labels.max())
    if count < 2:
        return labels
    faint, _ = ndimage.label(distance > FAINT * low)
    parts = range(1, count + 1)
    home = np.concatenate([[0], ndimage.maximum(faint, labels, parts)]).astype(int)
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    largest_first = sorted(parts, key=lambda part: -areas[part])
    joined = np.arange(count + 1)
    for i, small in enumerate(largest_first):
        for big in largest_first[:i]:
            if joined[big] == big and home[big] == home[small] > 0 and areas[small] <= PART * areas[big]:
                joined[small] = big
                break
    return joined[labels]


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
        rgb = work_copy(photo, WORK_SIDE)
        h, w = rgb.shape[:2]
        ring = border_ring((h, w))
        if is_packshot(rgb, ring):
            return Finding(size, [], None, packshot=True)
        lab = to_lab(rgb)
        feats = features(lab)
        surface = fit_surface(feats, ring)
        distance = surface.distance(feats)
        sx, sy = size[0] / w, size[1] / h
        quiet = is_quiet(distance, surface.edge)
        items = surface_items(distance, surface.edge, quiet, ring, size)
        items.sort(key=lambda item: -item.prominence)
        for box, mask, _ in contrast_objects(lab, MAX_ITEMS) if busy_cues else ():
            items.append(Item(scale_box(box, sx, sy, size), soften(mask), 0.0, cue="contrast"))
        distinct = distinct_items(items)[:MAX_ITEMS]
        searched = 0 if distinct and stands_out(distinct[0], distance > surface.edge) else None
        if searched is None:  # a garment filling the frame touches the border, so the border's model explains it
            filling = foreground(surface.detrend(feats)[..., :3], ring)
            if filling is not None:
                item = Item(mask_box(filling, size), soften(filling), STANDS_OUT, cue="fill")
                distinct, searched = distinct_items([item, *distinct])[:MAX_ITEMS], 0
        return Finding(size, distinct, searched, surface=surface, quiet=quiet)

    def refine(self, photo: Image.Image, finding: Finding, n: int) -> Item:
        """Item n with its mask redrawn at FINE times the working scale, where the coarse mask's stair
        steps would otherwise cut off, or let in, a rim of the garment and its surroundings."""
        item = finding.items[n]
        if item.cue != "surface" or not isinstance(finding.surface, Surface):
            return item
        return sharpen(photo, item, finding.surface, finding.size) or item


def stands_out(item: Item, unexplained: np.ndarray) -> bool:
    """Prominent enough to search on its own; or, however small (a watch, a ring), the one thing on a surface
    that explains everything else: then it is what the shopper photographed."""
    if item.prominence >= STANDS_OUT:
        return True
    return bool(item.cue == "surface" and unexplained.mean() <= CLEAN
                and (item.mask > 0.5).sum() >= MOSTLY * unexplained.sum())


def distinct_items(items: list[Item]) -> list[Item]:
    """Items in order, without one that repeats a kept item, or lies inside one, or holds one: a shopper
    offered a shirt, its pocket and the shirt again sees three boxes for one garment."""
    kept: list[Item] = []
    for item in items:
        if all(box_overlap(item.box, other.box) < NESTED * min(box_area(item.box), box_area(other.box))
               for other in kept):
            kept.append(item)
    return kept


def soften(mask: np.ndarray) -> np.ndarray:
    """A mask's edge, antialiased: cut-outs then blend into white instead of stair-stepping."""
    return ndimage.gaussian_filter(mask.astype(np.float32), 0.7)


def surface_items(distance: np.ndarray, edge: float, quiet: bool, ring: np.ndarray, size: tuple[int, int]
                  ) -> list[Item]:
    labels = segment(distance, edge, quiet)
    items = []
    for label in range(1, labels.max() + 1):
        mask = labels == label
        if mask.mean() < MIN_AREA:
            continue
        items.append(Item(mask_box(mask, size), soften(mask), prominence(mask, distance, ring)))
    return items


def sharpen(photo: Image.Image, item: Item, surface: Surface, size: tuple[int, int]) -> Item | None:
    """The item segmented again, at FINE times the working scale, inside a band around its coarse mask;
    None where that finds much less than the coarse mask did (then the coarse one is the safer cut)."""
    h, w = surface.grid
    scale = min(FINE, max(photo.size) / max(h, w))
    coarse = item.mask > 0.5
    if scale < 1.5 or not coarse.any():
        return None
    band = ndimage.binary_dilation(coarse, iterations=2)
    ys, xs = np.nonzero(band)
    y0, x0, y1, x1 = ys.min(), xs.min(), ys.max() + 1, xs.max() + 1
    region = (x0 * photo.width / w, y0 * photo.height / h, x1 * photo.width / w, y1 * photo.height / h)
    out = (round((x1 - x0) * scale), round((y1 - y0) * scale))
    lab = to_lab(np.asarray(photo.resize(out, Image.Resampling.BOX, box=region), np.float32))
    # Narrow windows: at the working scale's width they straddle the garment's edge and flag a rim of
    # surface around it as texture (on composites: 12% of the item's area extra, against 4%).
    feats = np.concatenate([smooth_colour(lab, 1.0), texture(lab[..., 0], 1.0)[..., None]], -1)
    distance = surface.distance(feats, origin=(float(y0), float(x0)), scale=scale)
    inside = np.asarray(Image.fromarray(band[y0:y1, x0:x1]).resize(out, Image.Resampling.NEAREST))
    mask = (distance > surface.edge) & inside
    # The features blur over about two fine pixels, so a contrasting garment's evidence spills past its edge
    # and the surface's colour would ring the cut-out. A blurred step crosses half its height at the true
    # edge: in the mask's rim keep only pixels above half the nearby peak (benchmarks/items.py: the surface
    # taken in fell from 3.2% of the garment's area to 1.6%).
    rim = mask & ~ndimage.binary_erosion(mask, iterations=2)
    mask &= ~(rim & (distance < 0.5 * ndimage.maximum_filter(distance, size=5)))
    mask = ndimage.binary_opening(mask, iterations=1)
    mask = ndimage.binary_fill_holes(ndimage.binary_closing(mask, iterations=2))
    labels, _ = ndimage.label(mask)
    core = np.asarray(Image.fromarray(coarse[y0:y1, x0:x1]).resize(out, Image.Resampling.NEAREST))
    keep = np.unique(labels[core & mask])
    mask = np.isin(labels, keep[keep > 0])
    if mask.sum() < 0.6 * coarse.sum() * scale * scale:
        return None
    whole = np.zeros((round(h * scale), round(w * scale)), bool)
    oy, ox = round(y0 * scale), round(x0 * scale)
    whole[oy:oy + out[1], ox:ox + out[0]] = mask[: whole.shape[0] - oy, : whole.shape[1] - ox]
    return Item(mask_box(whole, size), soften(whole), item.prominence, item.cue)
