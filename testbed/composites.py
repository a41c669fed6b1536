"""Test photos with known answers: catalogue products cut out and laid on surfaces or into photos.

Each composite keeps every placed product's id, box and exact mask, so that an item finder can be
scored against ground truth. Surfaces are plain (a coloured sheet, floor or table with uneven light)
or textured (wood, woven fabric, knit, linen, carpet, tiles, marble, stone chips, fine grain, brick,
grass, gravel, the moon's surface); scenes are ordinary photos that scikit-learn and scikit-image ship,
or a plain room. Model shots stand in them at a person's scale (worn).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage

WHITE_CUTOFF = 232  # catalogue background: every channel above this


@dataclass
class Placed:
    id: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels of the composite
    mask: np.ndarray  # bool, the composite's full size


@dataclass
class Composite:
    image: Image.Image
    kind: str  # "flatlay" or "busy"
    background: str
    placed: list[Placed] = field(default_factory=list)


def product_cutout(path: Path) -> Image.Image | None:
    """The product of a catalogue photo as RGBA: its white background made transparent."""
    rgb = np.asarray(Image.open(path).convert("RGB"))
    mask = rgb.min(axis=2) < WHITE_CUTOFF
    mask = ndimage.binary_closing(mask, iterations=1)
    mask = ndimage.binary_fill_holes(mask)
    labels, n = ndimage.label(mask)
    if n == 0:
        return None
    sizes = ndimage.sum(mask, labels, range(1, n + 1))
    mask = np.isin(labels, 1 + np.flatnonzero(sizes >= max(12, 0.05 * sizes.max())))
    if mask.sum() < 0.08 * mask.size:
        return None  # faint jewellery and near-blank photos: no shape to cut out
    ys, xs = np.nonzero(mask)
    rgba = np.dstack([rgb, (mask * 255).astype(np.uint8)])[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return Image.fromarray(rgba, "RGBA")


# -- surfaces -------------------------------------------------------------------------------------------
def lighting(size: tuple[int, int], rng: np.random.Generator, strength: float = 0.18) -> np.ndarray:
    """A smooth multiplicative light falloff, as from a window or a lamp."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = rng.uniform(-0.3, 1.3) * w, rng.uniform(-0.3, 1.3) * h
    dist = np.hypot(x - cx, y - cy) / math.hypot(w, h)
    return (1 - strength * dist / max(dist.max(), 1e-6))[..., None]


def plain(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    colours = [(205, 190, 170), (120, 85, 60), (235, 232, 225), (60, 62, 70), (170, 190, 210),
               (215, 175, 180), (150, 150, 145), (95, 120, 90), (240, 225, 200), (40, 40, 45)]
    base = np.array(colours[rng.integers(len(colours))], np.float32) * rng.uniform(0.9, 1.08, 3)
    w, h = size
    pixels = base * lighting(size, rng) + rng.normal(0, 3, (h, w, 3))
    return pixels


def wood(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    u = x * np.cos(angle) + y * np.sin(angle)
    v = -x * np.sin(angle) + y * np.cos(angle)
    warp = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)), 25) * 300
    grain = 0.5 + 0.5 * np.sin((v + warp) / rng.uniform(6, 14) + np.sin(u / 90) * 2)
    planks = (np.floor(v / rng.uniform(120, 220)) % 2) * 0.08
    tone = np.array([(150, 100, 60), (190, 150, 105), (110, 75, 50), (205, 180, 150)][rng.integers(4)], np.float32)
    pixels = tone * (0.8 + 0.25 * grain + planks)[..., None]
    return pixels * lighting(size, rng, 0.12) + rng.normal(0, 3, (h, w, 3))


def weave(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Woven or knitted fabric: a fine periodic pattern in one or two colours."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    period = rng.uniform(4, 12)
    a = np.array(rng.uniform(40, 230, 3), np.float32)
    b = a * rng.uniform(0.6, 0.9) if rng.random() < 0.6 else np.array(rng.uniform(40, 230, 3), np.float32)
    if rng.random() < 0.5:
        pattern = ((np.floor(x / period) + np.floor(y / period)) % 2)[..., None]  # basket weave
    else:
        pattern = (0.5 + 0.5 * np.sin(x / period * 2) * np.sin(y / period))[..., None]  # knit-like
    pixels = a * pattern + b * (1 - pattern)
    return pixels * lighting(size, rng, 0.15) + rng.normal(0, 4, (h, w, 3))


def carpet(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    w, h = size
    tone = np.array(rng.uniform(50, 200, 3), np.float32)
    fibres = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)), 1.2)
    blotches = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)), 12)
    shade = 1 + 0.9 * fibres / fibres.std() * 0.12 + 0.6 * blotches / blotches.std() * 0.05
    return tone * shade[..., None] * lighting(size, rng, 0.12)


def terrazzo(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Stone chips, sand or speckled tiles: a fine, irregular grain in a few close tones."""
    w, h = size
    grain = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)), rng.uniform(2, 6))
    tones = np.array(rng.uniform(60, 220, 3), np.float32) * rng.uniform(0.75, 1.2, (4, 3)).astype(np.float32)
    edges = np.quantile(grain, [0.3, 0.6, 0.85])
    pixels = tones[np.digitize(grain, edges)]
    return pixels * lighting(size, rng, 0.12) + rng.normal(0, 4, (h, w, 3))


def tiles(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Floor or wall tiles: squares of one or two glazes between lines of grout."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    side = rng.uniform(60, 200)
    grout = ((x % side) < 4) | ((y % side) < 4)
    glaze = np.array(rng.uniform(90, 240, 3), np.float32)
    other = glaze * rng.uniform(0.8, 1.0) if rng.random() < 0.5 else glaze
    checker = ((np.floor(x / side) + np.floor(y / side)) % 2)[..., None]
    pixels = glaze * checker + other * (1 - checker)
    pixels[grout] = glaze * 0.6
    return pixels * lighting(size, rng, 0.15) + rng.normal(0, 3, (h, w, 3))


def speckle(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Fine natural grain, like lawn, sand or gravel seen from above: noise at one or two pixels' scale."""
    w, h = size
    tone = np.array([(70, 120, 50), (190, 170, 130), (120, 115, 105), (150, 120, 80)][rng.integers(4)], np.float32)
    fine = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)), rng.uniform(0.6, 1.5))
    shade = 1 + 0.25 * fine / fine.std()
    return tone * shade[..., None] * lighting(size, rng, 0.15) + rng.normal(0, 3, (h, w, 3))


def linen(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Linen or canvas: threads along both axes, unevenly thick."""
    w, h = size
    tone = np.array(rng.uniform(120, 235, 3), np.float32)
    warp = ndimage.gaussian_filter1d(rng.normal(0, 1, w), 0.8)[None, :]
    weft = ndimage.gaussian_filter1d(rng.normal(0, 1, h), 0.8)[:, None]
    shade = 1 + 0.06 * (warp + weft) + 0.03 * rng.normal(0, 1, (h, w))
    return tone * shade[..., None] * lighting(size, rng, 0.12)


def marble(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Marble: a pale stone with thin dark veins."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    turbulence = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)), 30) * 400
    veins = np.abs(np.sin((x * 0.7 + y * 0.3 + turbulence) / rng.uniform(40, 90))) ** 0.15
    base = np.array(rng.uniform(200, 245, 3), np.float32)
    return base * (0.75 + 0.25 * veins)[..., None] + rng.normal(0, 2, (h, w, 3))


def room(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A plain room: a painted wall with a window or a door, a floor below it."""
    w, h = size
    wall = np.array(rng.uniform(150, 240, 3), np.float32)
    pixels = np.broadcast_to(wall, (h, w, 3)).copy()
    horizon = int(h * rng.uniform(0.6, 0.8))
    pixels[horizon:] = wood((w, h - horizon), rng) if rng.random() < 0.5 else carpet((w, h - horizon), rng)
    x0, y0 = int(rng.uniform(0.05, 0.6) * w), int(rng.uniform(0.05, 0.3) * h)
    pixels[y0 : y0 + int(0.3 * h), x0 : x0 + int(0.3 * w)] = rng.uniform(60, 250, 3)  # a window, a door, a picture
    return pixels * lighting(size, rng, 0.2) + rng.normal(0, 3, (h, w, 3))


def sample_photo(name: str) -> Image.Image:
    """One of the photos that scikit-learn or scikit-image ship with their code."""
    if name in ("china", "flower"):
        import sklearn.datasets

        folder = Path(sklearn.datasets.__file__).parent / "images"
        return Image.open(folder / f"{name}.jpg").convert("RGB")
    import skimage

    found = list((Path(skimage.__file__).parent / "data").glob(f"{name}.*"))
    return Image.open(found[0]).convert("RGB")


def photo_surface(name: str) -> Callable[[tuple[int, int], np.random.Generator], np.ndarray]:
    """A scene photo (or a greyscale texture, tinted) cropped and scaled to fill the size."""
    def make(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        photo = sample_photo(name)
        w, h = size
        scale = max(w / photo.width, h / photo.height) * rng.uniform(1.0, 1.3)
        photo = photo.resize((math.ceil(photo.width * scale), math.ceil(photo.height * scale)),
                             Image.Resampling.BICUBIC)
        x0 = int(rng.integers(0, photo.width - w + 1))
        y0 = int(rng.integers(0, photo.height - h + 1))
        pixels = np.asarray(photo.crop((x0, y0, x0 + w, y0 + h)), np.float32)
        if name in TEXTURE_PHOTOS:
            pixels = pixels.mean(axis=2, keepdims=True) * rng.uniform(0.5, 1.1, 3) + rng.uniform(0, 40, 3)
        return pixels
    return make


TEXTURE_PHOTOS = ("brick", "grass", "gravel", "moon")
SURFACES: dict[str, Callable] = {"plain": plain, "wood": wood, "weave": weave, "carpet": carpet,
                                 "terrazzo": terrazzo, "tiles": tiles, "speckle": speckle, "linen": linen,
                                 "marble": marble, **{name: photo_surface(name) for name in TEXTURE_PHOTOS}}
SCENES = ("china", "flower", "astronaut", "chelsea", "coffee", "rocket", "coins", "page", "hubble_deep_field",
          "motorcycle_left", "camera", "motorcycle_right", "retina", "ihc", "clock_motion")


# -- composing ------------------------------------------------------------------------------------------
def transformed(product: Image.Image, long_side: int, rng: np.random.Generator) -> Image.Image:
    scale = long_side / max(product.size)
    size = (max(1, round(product.width * scale)), max(1, round(product.height * scale)))
    product = product.resize(size, Image.Resampling.BICUBIC)
    # The catalogue's JPEG fringe would leave a white halo that no real garment has.
    r, g, b, alpha = product.split()
    alpha = alpha.filter(ImageFilter.MinFilter(2 * max(1, round(scale / 2)) + 1))
    product = Image.merge("RGBA", (r, g, b, alpha))
    return product.rotate(float(rng.uniform(-12, 12)), Image.Resampling.BICUBIC, expand=True)


def paste(canvas: np.ndarray, product: Image.Image, x: int, y: int) -> np.ndarray:
    """Alpha-composite product at (x, y); returns the product's mask on the canvas."""
    rgba = np.asarray(product, np.float32)
    alpha = rgba[..., 3:] / 255
    h, w = alpha.shape[:2]
    region = canvas[y : y + h, x : x + w]
    region[:] = rgba[..., :3] * alpha + region * (1 - alpha)
    mask = np.zeros(canvas.shape[:2], bool)
    mask[y : y + h, x : x + w] = alpha[..., 0] >= 0.5
    return mask


def mask_fit(item_mask: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """How well a finder's soft mask, drawn at the composite's size, covers a placed product (its truth mask):
    IoU, and the surface it takes in as a share of the product's area (what would ring its cut-out)."""
    alpha = Image.fromarray((np.clip(item_mask, 0, 1) * 255).astype(np.uint8))
    drawn = np.asarray(alpha.resize(truth.shape[::-1], Image.Resampling.BILINEAR)) > 127
    return float((drawn & truth).sum() / (drawn | truth).sum()), float((drawn & ~truth).sum() / truth.sum())


def box_of(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def overlaps(box: tuple[int, int, int, int], others: Sequence[tuple[int, int, int, int]], gap: int) -> bool:
    x0, y0, x1, y1 = box
    return any(x0 < b[2] + gap and b[0] < x1 + gap and y0 < b[3] + gap and b[1] < y1 + gap for b in others)


def finish(pixels: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A camera's last touches: a little blur and sensor noise."""
    pixels = pixels + rng.normal(0, 2, pixels.shape)
    image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8)))


def flatlay(products: Sequence[tuple[str, Image.Image]], rng: np.random.Generator,
            size: tuple[int, int] = (1280, 960), surface: str | None = None) -> Composite:
    """2-3 products laid apart on a plain or textured surface."""
    surface = surface or list(SURFACES)[rng.integers(len(SURFACES))]
    canvas = SURFACES[surface](size, rng).astype(np.float32)
    placed = lay_out(canvas, products, rng, (0.32, 0.5), margin=0.03, gap=0.02)
    return Composite(finish(canvas, rng), "flatlay", surface, placed)


def lay_out(canvas: np.ndarray, products: Sequence[tuple[str, Image.Image]], rng: np.random.Generator,
            scale: tuple[float, float], margin: float, gap: float) -> list[Placed]:
    """Each product turned, scaled to a share of the short side, and pasted clear of the frame's margin and of
    the others (a product that finds no room in 200 tries is left out)."""
    h, w = canvas.shape[:2]
    placed: list[Placed] = []
    boxes: list[tuple[int, int, int, int]] = []
    for pid, product in products:
        for _ in range(200):
            item = transformed(product, int(min(w, h) * rng.uniform(*scale)), rng)
            if item.width >= (1 - 2 * margin) * w or item.height >= (1 - 2 * margin) * h:
                continue
            x = int(rng.integers(int(margin * w), w - item.width - int(margin * w)))
            y = int(rng.integers(int(margin * h), h - item.height - int(margin * h)))
            box = (x, y, x + item.width, y + item.height)
            if not overlaps(box, boxes, gap=int(gap * min(w, h))):
                mask = paste(canvas, item, x, y)
                placed.append(Placed(pid, box_of(mask), mask))
                boxes.append(box)
                break
    return placed


def busy(product: tuple[str, Image.Image], rng: np.random.Generator, size: tuple[int, int] = (960, 1280),
         scene: str | None = None) -> Composite:
    """One product placed into an ordinary photo."""
    scene = scene or SCENES[rng.integers(len(SCENES))]
    canvas = photo_surface(scene)(size, rng).astype(np.float32)
    w, h = size
    item = transformed(product[1], int(min(w, h) * rng.uniform(0.35, 0.6)), rng)
    x = int(rng.integers(int(0.05 * w), w - item.width - int(0.05 * w)))
    y = int(rng.integers(int(0.05 * h), h - item.height - int(0.05 * h)))
    mask = paste(canvas, item, x, y)
    return Composite(finish(canvas, rng), "busy", scene, [Placed(product[0], box_of(mask), mask)])


def small(products: Sequence[tuple[str, Image.Image]], rng: np.random.Generator,
          size: tuple[int, int] = (1280, 960)) -> Composite:
    """1-2 small products (a watch, sunglasses, jewellery) on a plain surface, 12-22% of its short side."""
    canvas = plain(size, rng).astype(np.float32)
    placed = lay_out(canvas, products, rng, (0.12, 0.22), margin=0.1, gap=0.05)
    return Composite(finish(canvas, rng), "small", "plain", placed)


def worn(person: tuple[str, Image.Image], rng: np.random.Generator, size: tuple[int, int] = (960, 1280),
         scene: str = "room") -> Composite:
    """A catalogue model shot standing upright in a room or a scene photo, 55-85% of the photo's height."""
    canvas = (room if scene == "room" else photo_surface(scene))(size, rng).astype(np.float32)
    w, h = size
    cut = person[1]
    height = int(h * rng.uniform(0.55, 0.85))
    width = min(int(0.95 * w), round(cut.width * height / cut.height))
    cut = cut.resize((width, height), Image.Resampling.BICUBIC)
    x, y = int(rng.integers(0, w - width + 1)), int(rng.integers(0, h - height + 1))
    mask = paste(canvas, cut, x, y)
    return Composite(finish(canvas, rng), "people", scene, [Placed(person[0], box_of(mask), mask)])
