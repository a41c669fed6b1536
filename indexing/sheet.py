"""Contact sheets: a query photo beside its results, with captions, as one PNG."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from indexing.errors import ImageError
from indexing.images import fit_square, open_image, read_bytes
from indexing.index import Hit, Index

TILE = 224
CAPTION = 64
MARGIN = 8


def thumbnail(source: bytes | str | Path) -> Image.Image:
    try:
        return fit_square(open_image(read_bytes(source), draft=TILE), TILE)
    except ImageError:
        return Image.new("RGB", (TILE, TILE), (220, 220, 220))


def caption(hit: Hit) -> str:
    name = hit.meta.get("productDisplayName") or hit.id
    return f"#{hit.rank} {hit.id}  {hit.score:.3f}\n" + "\n".join(textwrap.wrap(name, 30)[:2])


def contact_sheet(query: bytes | str | Path, hits: Sequence[Hit], index: Index, out: str | Path) -> Path:
    """Write a PNG: the query, then each hit with its rank, id, score and name."""
    font = ImageFont.load_default(size=13)
    tiles = [(thumbnail(query), "query")] + [(thumbnail(index.image_path(h.id)), caption(h)) for h in hits]
    sheet = Image.new("RGB", (MARGIN + len(tiles) * (TILE + MARGIN), TILE + CAPTION + 2 * MARGIN), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (tile, text) in enumerate(tiles):
        x = MARGIN + i * (TILE + MARGIN)
        sheet.paste(tile, (x, MARGIN))
        draw.multiline_text((x, MARGIN + TILE + 4), text, fill="black", font=font, spacing=2)
    if hits:
        divider = MARGIN + TILE + MARGIN // 2
        draw.line([(divider, 0), (divider, sheet.height)], fill=(180, 180, 180), width=2)
    out = Path(out)
    sheet.save(out, "PNG")
    return out
