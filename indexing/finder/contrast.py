"""Objects in busy photos: windows whose colours differ most from the ring around them.

Alexe et al.'s colour-contrast objectness cue, scored for thousands of windows at once with integral
colour histograms, then each chosen window's mask from the colours that are likelier inside than around.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from indexing.finder.colour import kmeans
from indexing.finder.items import box_iou

COLOURS = 12  # colour bins, learnt per photo
SIDES = (0.22, 0.3, 0.4, 0.52, 0.66, 0.82)  # window long sides, as shares of the photo's short side
ASPECTS = (0.6, 1.0, 1.6)  # height / width
RING = 0.3  # the surround: this share of the window's size on each side


def quantise(lab: np.ndarray, colours: int = COLOURS) -> np.ndarray:
    """Each pixel's colour bin, from a small k-means over the photo's own colours."""
    flat = lab.reshape(-1, 3)
    sample = flat[:: max(1, len(flat) // 1500)]
    centres, _ = kmeans(sample, colours, iterations=6)
    return np.argmin(((flat[:, None] - centres[None]) ** 2).sum(-1), 1).reshape(lab.shape[:2])


def windows(shape: tuple[int, int]) -> np.ndarray:
    """Candidate boxes (x0, y0, x1, y1) in pixels of the working image."""
    h, w = shape
    out = []
    for side in SIDES:
        for aspect in ASPECTS:
            long_side = side * min(h, w)
            bw, bh = (long_side / aspect, long_side) if aspect >= 1 else (long_side, long_side * aspect)
            bw, bh = int(min(bw, w - 2)), int(min(bh, h - 2))
            step_x, step_y = max(2, int(bw * 0.15)), max(2, int(bh * 0.15))
            for y0 in range(1, h - bh, step_y):
                for x0 in range(1, w - bw, step_x):
                    out.append((x0, y0, x0 + bw, y0 + bh))
    return np.array(out, int).reshape(-1, 4)


def box_sums(integral: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = boxes.T
    return integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]


def contrast_windows(bins: np.ndarray, count: int) -> list[tuple[tuple[int, int, int, int], float]]:
    """The count best windows by chi-square distance of colour histograms, inside against around."""
    h, w = bins.shape
    onehot = np.eye(COLOURS, dtype=np.float32)[bins]
    integral = np.zeros((h + 1, w + 1, COLOURS), np.float32)
    integral[1:, 1:] = onehot.cumsum(0).cumsum(1)
    boxes = windows((h, w))
    if not len(boxes):
        return []
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    outer = np.stack([np.clip(boxes[:, 0] - RING * bw, 0, w), np.clip(boxes[:, 1] - RING * bh, 0, h),
                      np.clip(boxes[:, 2] + RING * bw, 0, w), np.clip(boxes[:, 3] + RING * bh, 0, h)], 1).astype(int)
    inside = box_sums(integral, boxes)
    ring = box_sums(integral, outer) - inside
    ring_area = ring.sum(1)
    nominal = ((1 + 2 * RING) ** 2 - 1) * bw * bh
    p = inside / np.maximum(inside.sum(1, keepdims=True), 1)
    q = ring / np.maximum(ring_area[:, None], 1)
    chi2 = 0.5 * (((p - q) ** 2) / np.maximum(p + q, 1e-6)).sum(1)
    score = chi2 * np.minimum(1.0, ring_area / (0.5 * nominal))  # a window at the edge has little surround
    chosen: list[tuple[tuple[int, int, int, int], float]] = []
    for i in np.argsort(-score):
        box = tuple(int(v) for v in boxes[i])
        if all(box_iou(box, kept) < 0.4 for kept, _ in chosen):
            chosen.append((box, float(score[i])))  # type: ignore[arg-type]
            if len(chosen) == count:
                break
    return chosen


def window_mask(bins: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray | None:
    """Inside the window, the pixels whose colour is likelier there than in its surround (whole-photo mask)."""
    h, w = bins.shape
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    ox0, oy0 = max(0, int(x0 - RING * bw)), max(0, int(y0 - RING * bh))
    ox1, oy1 = min(w, int(x1 + RING * bw)), min(h, int(y1 + RING * bh))
    local = bins[oy0:oy1, ox0:ox1]
    inner = np.zeros(local.shape, bool)
    inner[y0 - oy0 : y1 - oy0, x0 - ox0 : x1 - ox0] = True
    p = np.bincount(local[inner], minlength=COLOURS) + 1.0
    q = np.bincount(local[~inner], minlength=COLOURS) + 1.0
    likelier = (p / p.sum()) > 1.2 * (q / q.sum())
    mask = inner & likelier[local]
    mask = ndimage.binary_closing(ndimage.binary_opening(mask), iterations=2)
    labels, n = ndimage.label(mask)
    if n == 0:
        return None
    sizes = ndimage.sum(mask, labels, range(1, n + 1))
    mask = ndimage.binary_fill_holes(labels == 1 + int(np.argmax(sizes)))
    if mask.sum() < 0.25 * bw * bh:
        return None
    whole = np.zeros((h, w), bool)
    whole[oy0:oy1, ox0:ox1] = mask
    return whole


def edge_strength(mask: np.ndarray, gradient: np.ndarray) -> float:
    """Mean colour gradient along the mask's outline: a real object's outline is an edge all round."""
    outline = mask ^ ndimage.binary_erosion(mask)
    return float(gradient[outline].mean()) if outline.any() else 0.0


def contrast_objects(lab: np.ndarray, count: int, candidates: int = 48
                     ) -> list[tuple[tuple[int, int, int, int], np.ndarray, float]]:
    """Up to count objects (box, mask, score): the best colour-contrast windows, each cut to the colours
    that set it apart, re-ranked by how crisp that cut's outline is and how large it is."""
    bins = quantise(lab)
    # Colour, not only lightness: a red shirt on green grass differs in hue far more than in lightness.
    smooth = ndimage.gaussian_filter(lab, (0.8, 0.8, 0))
    gradient = np.sqrt(sum(ndimage.sobel(smooth[..., c], axis) ** 2 for c in range(3) for axis in (0, 1)))
    found = []
    for window, score in contrast_windows(bins, candidates):
        mask = window_mask(bins, window)
        if mask is None:
            continue
        ys, xs = np.nonzero(mask)
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        # Larger is likelier: a shopper photographs the garment they ask about, not a speck beside it.
        found.append((box, mask, score * edge_strength(mask, gradient) * float(np.sqrt(mask.mean()))))
    found.sort(key=lambda entry: -entry[2])
    chosen: list[tuple[tuple[int, int, int, int], np.ndarray, float]] = []
    for entry in found:
        if all(box_iou(entry[0], kept[0]) < 0.5 for kept in chosen):
            chosen.append(entry)
    return chosen[:count]
