"""Pictures for people: a photo with its items outlined, and contact sheets of results."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from indexing.errors import ImageError
from indexing.extract.images import fit_square, open_image, read_bytes
from indexing.store.index import Hit, Index

TILE = 224
CAPTION = 64
MARGIN = 8
HIGHLIGHT = (255, 64, 129)
OTHER = (255, 255, 255)


def thumbnail(source: bytes | str | Path | Image.Image) -> Image.Image:
    if isinstance(source, Image.Image):
        return fit_square(source, TILE)
    try:
        return fit_square(open_image(read_bytes(source), draft=TILE), TILE)
    except ImageError:
        return Image.new("RGB", (TILE, TILE), (220, 220, 220))


def outline_items(photo: Image.Image, boxes: Sequence[Sequence[int]], size: tuple[int, int],
                  highlight: int | None, side: int = 480) -> Image.Image:
    """The photo, small (long side `side`), with each box outlined and numbered from 1; the box at index
    highlight drawn thicker in a bright colour. boxes are in pixels of a photo of the given size."""
    scale = side / max(size)
    image = photo.resize((max(1, round(size[0] * scale)), max(1, round(size[1] * scale))),
                         Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(14, side // 22))
    order = [i for i in range(len(boxes)) if i != highlight] + ([highlight] if highlight is not None else [])
    for i in order:
        x0, y0, x1, y1 = (round(v * scale) for v in boxes[i])
        colour, width = (HIGHLIGHT, max(3, side // 110)) if i == highlight else (OTHER, max(2, side // 240))
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], outline=(0, 0, 0), width=width + 2)
        draw.rectangle([x0 + 1, y0 + 1, x1 - 2, y1 - 2], outline=colour, width=width)
        label = str(i + 1)
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        pad = 4
        tag = [x0, y0, x0 + right - left + 2 * pad, y0 + bottom - top + 2 * pad]
        draw.rectangle(tag, fill=colour)
        draw.text((x0 + pad - left, y0 + pad - top), label, fill=(0, 0, 0), font=font)
    return image


def caption(hit: Hit) -> str:
    name = hit.meta.get("productDisplayName") or hit.id
    return f"#{hit.rank} {hit.id}  {hit.score:.3f}\n" + "\n".join(textwrap.wrap(name, 30)[:2])


def contact_sheet(rows: Sequence[tuple[bytes | str | Path | Image.Image, str, Sequence[Hit]]], index: Index,
                  out: str | Path) -> Path:
    """Write a PNG with one row per query: the query picture and its label, then each hit with its rank,
    id, score and name."""
    font = ImageFont.load_default(size=13)
    width = max(len(hits) for _, _, hits in rows) + 1
    row_height = TILE + CAPTION + MARGIN
    sheet = Image.new("RGB", (MARGIN + width * (TILE + MARGIN), MARGIN + len(rows) * row_height), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (query, label, hits) in enumerate(rows):
        y = MARGIN + r * row_height
        tiles = [(thumbnail(query), label)] + [(thumbnail(index.image_path(h.id)), caption(h)) for h in hits]
        for i, (tile, text) in enumerate(tiles):
            x = MARGIN + i * (TILE + MARGIN)
            sheet.paste(tile, (x, y))
            draw.multiline_text((x, y + TILE + 4), text, fill="black", font=font, spacing=2)
        if hits:
            divider = MARGIN + TILE + MARGIN // 2
            draw.line([(divider, y), (divider, y + TILE + CAPTION)], fill=(180, 180, 180), width=2)
    out = Path(out)
    sheet.save(out, "PNG")
    return out
