"""Phone screenshots: tell one from a photo, and find the pictures in it (the largest first), never text or bars."""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from indexing.finder.items import MAX_ITEMS, Finding, Item, ItemFinder, box_area, catalogue_frame, scale_box

Box = tuple[int, int, int, int]
WORK_WIDTH = 240  # screenshots are read at this width: a line of text is then about 6 pixels high
TALL = 1.6  # a phone screenshot is at least this much taller than wide
FLAT = 3  # neighbouring pixels of an interface's flat fill differ by at most this (per channel, after JPEG)
FLAT_SHARE = 0.35  # an interface is at least this share flat fill; a camera's photo almost never is
STATUS_BAR = 0.03  # the status bar's share of the height: flat but for a few glyphs
# The page's colour covers at least this share of a screenshot: 0.13-0.62 on drawn ones (shop pages of the mist
# and dark themes the least), 0.03-0.08 on the ten tall phone photos of garments (hangers on white walls, sheets)
# that passed the tests above.
PAGE_SHARE = 0.10
TEXT = 0.03  # a line of text is at most this share of the screen's height
MIN_HEIGHT = 0.05  # anything lower than this share of the screen is text, an icon or a bar
MIN_AREA = 0.012  # and a picture covers at least this share of it
CARD_EDGE = 3  # a card's margin colour is read this many pixels inside its outline
CARD = 0.6  # a row of a card's margin: this share of it in the card's colour (corners and outline aside)
CUT = 0.3  # content running along this share of its box's bottom (or top) row is cut there by its picture
SOLID = 0.9  # a block this full is a rectangle of its own (a photo, a card); below, a shape on a backdrop
LONG = 4  # buttons and banners are longer than this many times their height; pictures are not
COLOURS = 6  # a picture holds at least this many distinct colours (a flat shape: one or two)
SAME = 4  # a flat fill's pixels are within this of its colour (per channel)
CARD_SAME = 10  # and a card's margin within this: JPEG smears colour (not light) over 8 pixels from a photo's edge
WHITE = 235


def flat_fill(rgb: np.ndarray) -> np.ndarray:
    """Pixels whose right and lower neighbours have the same colour: an interface's fills, never a camera's."""
    step_x = np.abs(np.diff(rgb, axis=1, append=rgb[:, -1:])).max(-1)
    step_y = np.abs(np.diff(rgb, axis=0, append=rgb[-1:])).max(-1)
    return (step_x <= FLAT) & (step_y <= FLAT)


def is_screenshot(flat: np.ndarray, fill: np.ndarray) -> bool:
    """Mostly flat fill, a flat status bar on top, and a page: one colour that text is written on over a good
    part of the screen (the caller checks the shape first). A tall phone photo of a shirt on a white wall or a
    sheet is as flat, bar and all, but its light drifts across it: no one colour covers more than a few percent."""
    h = flat.shape[0]
    bar = flat[: max(2, round(STATUS_BAR * h))]
    return bool(flat.mean() >= FLAT_SHARE and bar.mean() >= 0.6 and fill.mean() >= PAGE_SHARE)


def page(rgb: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """The page's own fill: flat pixels of the colour that text is written on. Any other fill (a photo's white
    on a dark page, a card's tint) is part of what the page shows, so a picture keeps its own background. Text
    tells the page apart where a photo's own background covers more of the screen than the page does."""
    h = flat.shape[0]
    labels, _ = ndimage.label(~flat)
    small = [i + 1 for i, part in enumerate(ndimage.find_objects(labels))
             if part[0].stop - part[0].start <= TEXT * h]
    glyphs = np.isin(labels, small)
    voters = ndimage.binary_dilation(glyphs, iterations=2) & ~glyphs & flat
    if voters.sum() < 0.01 * flat.size:
        voters = flat
    colours = rgb[voters].astype(np.int32)
    codes = colours[:, 0] * 65536 + colours[:, 1] * 256 + colours[:, 2]
    values, counts = np.unique(codes, return_counts=True)
    colour = colours[codes == values[counts.argmax()]][0]
    return flat & (np.abs(rgb - colour).max(-1) <= SAME)


def distinct_colours(pixels: np.ndarray) -> int:
    quantised = (pixels.reshape(-1, 3) // 16).astype(np.int32)
    return len(np.unique(quantised[:, 0] * 256 + quantised[:, 1] * 16 + quantised[:, 2]))


def rectangular(region: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """The region runs along all four sides of its bounding box, as a picture's background does (and a
    page's bars, joined through a fill of like colour, do not)."""
    x0, y0, x1, y1 = box
    sides = [region[y0, x0:x1], region[y1 - 1, x0:x1], region[y0:y1, x0], region[y0:y1, x1 - 1]]
    return all(side.mean() >= 0.8 for side in sides)


def unframed(rgb: np.ndarray, flat: np.ndarray, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The picture inside a card: the card's plain margin (rows and columns mostly of the card's one flat colour,
    its rounded corners and outline aside) taken off. White is a picture's own background, never a card's."""
    x0, y0, x1, y1 = box
    inner = np.zeros(flat.shape, bool)
    inner[y0:y1, x0:x1] = True
    inner[y0 + CARD_EDGE:y1 - CARD_EDGE, x0 + CARD_EDGE:x1 - CARD_EDGE] = False
    if not (inner & flat).any():
        return box
    colour = np.median(rgb[inner & flat], axis=0)
    if colour.min() >= WHITE:
        return box

    def margin(pixels: np.ndarray) -> bool:
        return bool((np.abs(pixels - colour).max(-1) <= CARD_SAME).mean() >= CARD)

    def depth(lines: list[np.ndarray]) -> int:
        """How many lines from the outside in are the card's margin; the outline, which blends the card
        into the page over a pixel or two, is stepped over where margin lies beyond it."""
        edge = next((i for i in range(min(CARD_EDGE, len(lines))) if margin(lines[i])), None)
        if edge is None:
            return 0
        inward = edge
        while inward < len(lines) - 2 and margin(lines[inward]):
            inward += 1
        return inward

    rows = [rgb[y, x0:x1] for y in range(y0, y1)]
    y0, y1 = y0 + depth(rows), y1 - depth(rows[::-1])
    columns = [rgb[y0:y1, x] for x in range(x0, x1)]
    x0, x1 = x0 + depth(columns), x1 - depth(columns[::-1])
    return (x0, y0, x1, y1)


def backdrop(rgb: np.ndarray, flat: np.ndarray, box: Box, others: list[Box]) -> Box:
    """The rectangle of flat fill that a picture's content sits on (a photo's own background), or the content's
    catalogue frame where that fill runs on into the page (a packshot on a page of the same white)."""
    h, w = flat.shape
    x0, y0, x1, y1 = box
    ring = np.zeros_like(flat)
    ring[max(0, y0 - 2): y1 + 2, max(0, x0 - 2): x1 + 2] = True
    ring[y0:y1, x0:x1] = False
    ring &= flat
    if ring.sum() < 0.5 * (2 * (x1 - x0) + 2 * (y1 - y0)):
        return box  # the content reaches its picture's edges
    colour = np.median(rgb[ring], axis=0)
    same = (np.abs(rgb - colour).max(-1) <= SAME) & flat
    labels, _ = ndimage.label(same)
    touching = np.unique(labels[ring & same])
    around = np.isin(labels, touching[touching > 0])
    ys, xs = np.nonzero(around)
    if not len(xs):
        return box
    fill = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    if box_area(fill) < 0.6 * h * w and rectangular(around, fill):  # the picture's own background
        return (min(x0, fill[0]), min(y0, fill[1]), max(x1, fill[2]), max(y1, fill[3]))
    if colour.min() >= WHITE:
        return packshot_frame(flat, box, others)
    return box


def packshot_frame(flat: np.ndarray, box: Box, others: list[Box]) -> Box:
    """A packshot on a page of its own white: framed as the catalogue frames a product, except that a side
    where the content is cut straight (a model shot ending at the thighs) is the picture's own edge, and that
    the frame stops short of the content above and below it (the title under a photo)."""
    h, w = flat.shape
    x0, y0, x1, y1 = box
    fx0, fy0, fx1, fy1 = catalogue_frame(box, (w, h))
    if (~flat[y1 - 1, x0:x1]).mean() >= CUT:
        fy0, fy1 = y1 - (fy1 - fy0), y1
    elif (~flat[y0, x0:x1]).mean() >= CUT:
        fy0, fy1 = y0, y0 + (fy1 - fy0)
    fx0, fx1, fy0, fy1 = max(0, fx0), min(w, fx1), max(0, fy0), min(h, fy1)
    for other in others:
        if other[0] < fx1 and fx0 < other[2]:
            if other[3] <= y0:
                fy0 = max(fy0, other[3])
            elif other[1] >= y1:
                fy1 = min(fy1, other[1])
    return (fx0, fy0, fx1, fy1)


def runs(line: np.ndarray) -> list[tuple[int, int]]:
    """The stretches of True in a row of booleans, as (start, stop)."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], line.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def blocks(content: np.ndarray, x0: int = 0, y0: int = 0) -> list[tuple[int, int, int, int]]:
    """Recursive XY-cut, as layout analysis reads a page: split the content along every row (then column)
    with no content across it, until each block is one line of text, one icon or one picture."""
    rows, cols = runs(content.any(1)), runs(content.any(0))
    if not rows:
        return []
    if len(rows) == 1 and len(cols) == 1:
        (top, bottom), (left, right) = rows[0], cols[0]
        return [(x0 + left, y0 + top, x0 + right, y0 + bottom)]
    found = []
    if len(rows) > 1:
        for top, bottom in rows:
            found += blocks(content[top:bottom], x0, y0 + top)
    else:
        for left, right in cols:
            found += blocks(content[:, left:right], x0 + left, y0)
    return found


def solid_core(content: np.ndarray, box: Box) -> Box:
    """A card or photo that a line beside it touches (a post's avatar and name against its card): the rows that
    the content fills from side to side, where they make up most of the block and what they leave out lies to
    one side (a bag's handle, which belongs to the bag, is centred over it)."""
    x0, y0, x1, y1 = box
    block = content[y0:y1, x0:x1]
    full = runs(block.mean(1) >= SOLID)
    if not full:
        return box
    top, bottom = max(full, key=lambda run: run[1] - run[0])
    if bottom - top < 0.6 * (y1 - y0):
        return box
    for rest in (block[:top], block[bottom:]):
        xs = np.nonzero(rest)[1]
        if len(xs) and abs(xs.mean() / block.shape[1] - 0.5) < 0.25:
            return box
    return (x0, y0 + top, x1, y0 + bottom)


def pictures(rgb: np.ndarray, flat: np.ndarray, fill: np.ndarray) -> list[tuple[int, int, int, int]]:
    """The picture rectangles of a screenshot, largest first, in its work copy's pixels; fill: its page()."""
    h, w = flat.shape
    # An outline encloses what it outlines: a plain garment's flat inside, a photo's own background. Then the
    # steps between two fills (a bar's edge) and text's strokes go: a pixel or two wide at this scale.
    content = ndimage.binary_opening(ndimage.binary_fill_holes(~fill), structure=np.ones((3, 3), bool))
    content[: max(2, round(STATUS_BAR * h))] = False
    found = []
    laid_out = blocks(content)
    for box in laid_out:
        x0, y0, x1, y1 = box
        if y1 - y0 < MIN_HEIGHT * h or box_area(box) < MIN_AREA * h * w or x1 - x0 > LONG * (y1 - y0):
            continue
        if distinct_colours(rgb[y0:y1, x0:x1]) < COLOURS:
            continue
        box = solid_core(content, box)
        x0, y0, x1, y1 = box
        solid = content[y0:y1, x0:x1].mean() >= SOLID  # a card or a photo reaching its edges, not a silhouette
        found.append(unframed(rgb, flat, box) if solid else backdrop(rgb, flat, box, laid_out))
    found.sort(key=lambda box: -box_area(box))
    kept: list[tuple[int, int, int, int]] = []
    for box in found:  # the parts of one picture (a pair of shoes) share its backdrop
        if not any(box[0] >= k[0] and box[1] >= k[1] and box[2] <= k[2] and box[3] <= k[3] for k in kept):
            kept.append(box)
    return kept[:MAX_ITEMS]


class ScreenFinder:
    """Screenshots first: each picture on the screen is an item (kind "photo"), the largest searched first. Any
    other photo goes to the finder behind it."""

    name = "screen"

    def __init__(self, base: ItemFinder):
        self.base = base

    def find(self, photo: Image.Image, size: tuple[int, int] | None = None, *, busy_cues: bool = True) -> Finding:
        size = size or photo.size
        if photo.height < TALL * photo.width:  # most photos: not even the shape of a phone's screen
            return self.base.find(photo, size, busy_cues=busy_cues)
        scale = WORK_WIDTH / photo.width
        work = photo.convert("RGB").resize((WORK_WIDTH, max(8, round(photo.height * scale))), Image.Resampling.BOX)
        rgb = np.asarray(work, np.int16)
        flat = flat_fill(rgb)
        fill = page(rgb, flat)
        if not is_screenshot(flat, fill):
            return self.base.find(photo, size, busy_cues=busy_cues)
        sx, sy = size[0] / rgb.shape[1], size[1] / rgb.shape[0]
        items = []
        for box in pictures(rgb, flat, fill):
            mask = np.zeros(flat.shape, np.float32)
            mask[box[1]:box[3], box[0]:box[2]] = 1
            items.append(Item(scale_box(box, sx, sy, size), mask, box_area(box) / flat.size, cue="screen",
                              kind="photo"))
        return Finding(size, items, 0 if items else None)

    def refine(self, photo: Image.Image, finding: Finding, n: int) -> Item:
        if finding.items[n].cue == "screen":
            return finding.items[n]
        return self.base.refine(photo, finding, n)
