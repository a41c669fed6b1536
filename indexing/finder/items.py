"""Items in a photo: what a finder proposes, and how one item is cut out onto white like a packshot."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from PIL import Image

from indexing.extract.images import BACKGROUND, SIZE, fit_square

MAX_ITEMS = 6
# The catalogue's own framing, measured on 2,939 of its photos: a 3:4 portrait frame in which the
# product's bounding box fills 89% of the limiting side (median; see docs/item-finder.md).
FRAME_ASPECT = 3 / 4
FRAME_FILL = 0.89


@dataclass(frozen=True)
class Item:
    """One proposed item: its box in the photo's pixels and its mask over the whole photo."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels of the photo as given (EXIF-upright)
    mask: np.ndarray = field(repr=False)  # float32 in [0, 1] over the whole photo, at the finder's scale
    prominence: float = 0.0
    cue: str = "surface"  # what found it: "surface" (unlike the surface it lies on) or "contrast" (busy photos)
    # What it is: "item" (a thing on a surface), "outfit" (a person, cut out whole), "top", "bottom", "shoes" (the
    # part of a person between body points) or "photo" (a picture in a screenshot, searched as a photo of its own).
    kind: str = "item"

    def to_dict(self) -> dict:
        return {"box": list(self.box), "kind": self.kind, "prominence": round(self.prominence, 3), "cue": self.cue}

    def to_record(self) -> dict[str, Any]:
        """The item as JSON-ready data, mask included, that rebuilds the same cut-out however often it is read. The
        masks are most of what a month of photos leaves in the bot's state, so the mask is kept small: at half the
        finder's scale (cut_out scales a mask to the photo, bilinearly), in 16 levels, which shade a garment's
        feathered edge as well as 256 do. A quarter of the PNG."""
        height, width = self.mask.shape
        half = Image.fromarray(np.clip(self.mask, 0, 1).astype(np.float32), "F").resize(
            (max(1, width // 2), max(1, height // 2)), Image.Resampling.BILINEAR)
        levels = np.round(np.asarray(half) * 15).astype(np.uint8) * 17
        png = io.BytesIO()
        Image.fromarray(levels, "L").save(png, "PNG", optimize=True)
        return {**self.to_dict(), "mask": base64.b64encode(png.getvalue()).decode("ascii")}

    def as_kept(self) -> Item:
        """The item as a later tap, a restart or another replica rebuilds it from to_record: what the first search
        cuts out too, so that every search of this item searches the same pixels."""
        return Item.from_record(self.to_record())

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Item:
        with Image.open(io.BytesIO(base64.b64decode(record["mask"]))) as png:
            mask = np.asarray(png, np.float32) / 255
        x0, y0, x1, y1 = record["box"]
        return cls((x0, y0, x1, y1), mask, record["prominence"], record["cue"], record["kind"])


@dataclass(frozen=True)
class Finding:
    """What a finder saw in one photo."""

    size: tuple[int, int]  # the photo's width and height as given
    items: list[Item]
    searched: int | None  # the item to search first, or None: no item stands out, search the whole photo
    packshot: bool = False  # one product on white already: the whole photo is searched unchanged
    surface: object = field(default=None, repr=False)  # what the finder learnt of the photo, for refine()
    quiet: bool = False  # the surface explains the whole photo but its items: their outlines are exact


class ItemFinder(Protocol):
    """Anything that proposes the items in a decoded photo, most prominent first."""

    name: str

    def find(self, photo: Image.Image, size: tuple[int, int] | None = None, *, busy_cues: bool = True
             ) -> Finding: ...

    def refine(self, photo: Image.Image, finding: Finding, n: int) -> Item:
        """Item n ready to cut out: its mask drawn at the photo's detail, where the finder can."""
        ...


def offered(finder: ItemFinder, photo: Image.Image, size: tuple[int, int] | None = None) -> Finding:
    """The items the bot offers for a photo: the quick cues, and the busy-photo proposals only where no item
    stands out (the bot runs that second step after the first album has gone out)."""
    finding = finder.find(photo, size, busy_cues=False)
    if finding.searched is None and not finding.packshot:
        finding = finder.find(photo, size)
    return finding


def scale_box(box: Sequence[float], sx: float, sy: float, size: tuple[int, int]) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    w, h = size
    return (max(0, int(np.floor(x0 * sx))), max(0, int(np.floor(y0 * sy))),
            min(w, int(np.ceil(x1 * sx))), min(h, int(np.ceil(y1 * sy))))


def mask_box(mask: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The box around a mask's True pixels (at least one), in pixels of size, the photo's size the mask covers."""
    ys, xs = np.nonzero(mask)
    return scale_box((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), size[0] / mask.shape[1],
                     size[1] / mask.shape[0], size)


def box_area(box: Sequence[int]) -> int:
    return max(0, box[2] - box[0]) * max(0, box[3] - box[1])


def box_overlap(a: Sequence[int], b: Sequence[int]) -> int:
    """The area that two boxes share."""
    return box_area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    inter = box_overlap(a, b)
    union = box_area(a) + box_area(b) - inter
    return inter / union if union else 0.0


def catalogue_frame(box: Sequence[int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The region around box that frames it as the catalogue frames a product (it may extend past the photo)."""
    x0, y0, x1, y1 = box
    w, h = max(1, x1 - x0), max(1, y1 - y0)
    frame_h = max(h, w / FRAME_ASPECT) / FRAME_FILL
    frame_w = frame_h * FRAME_ASPECT
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return (round(cx - frame_w / 2), round(cy - frame_h / 2), round(cx + frame_w / 2), round(cy + frame_h / 2))


def cut_out(photo: Image.Image, item: Item, size: tuple[int, int] | None = None) -> Image.Image:
    """The item alone on white, framed like a catalogue packshot.

    photo: the decoded photo (possibly reduced); size: the photo's size as given, in which item.box
    is expressed (default: photo.size). Pixels outside the item's mask become the catalogue's white.
    """
    size = size or photo.size
    sx, sy = photo.width / size[0], photo.height / size[1]
    box = scale_box(item.box, sx, sy, photo.size)
    frame = catalogue_frame(box, photo.size)
    crop = photo.crop(frame)  # areas outside the photo come back black; the mask whitens them
    mh, mw = item.mask.shape
    mx, my = mw / photo.width, mh / photo.height
    alpha = Image.fromarray((np.clip(item.mask, 0, 1) * 255).astype(np.uint8), "L")
    alpha = alpha.transform(crop.size, Image.Transform.EXTENT,
                            (frame[0] * mx, frame[1] * my, frame[2] * mx, frame[3] * my),
                            Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", crop.size, BACKGROUND)
    canvas.paste(crop, (0, 0), alpha)
    return canvas


def item_pixels(photo: Image.Image, item: Item, size: tuple[int, int] | None = None) -> np.ndarray:
    """The item as the model sees it: its cut-out padded to a white square, 224x224 RGB uint8. A photo
    inside a screenshot is already framed by whoever took it: it is searched as it is, like a photo sent."""
    if item.kind == "photo":
        size = size or photo.size
        box = scale_box(item.box, photo.width / size[0], photo.height / size[1], photo.size)
        return np.asarray(fit_square(photo.crop(box), SIZE), dtype=np.uint8)
    return np.asarray(fit_square(cut_out(photo, item, size), SIZE), dtype=np.uint8)
