"""The one safe image loader: bytes or a file in, a 224x224 RGB uint8 array out."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image, ImageOps

from indexing.errors import ImageTooLargeError, UnreadableImageError

SIZE = 224
# 40 megapixels covers every phone camera; a bomb is refused before any pixel is decoded.
MAX_PIXELS = 40_000_000
MAX_BYTES = 50 * 1024 * 1024
BACKGROUND = (255, 255, 255)  # the catalogue's own background colour
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "MPO", "HEIF")
# iPhones send HEIC when a photo is sent as a file.
pillow_heif.register_heif_opener()
# The leading bytes of each format, and the suffix its files get: a download's type is taken from its
# bytes, never from what the server says it is.
SIGNATURES = ((b"\xff\xd8\xff", "jpg"), (b"\x89PNG\r\n\x1a\n", "png"), (b"GIF87a", "gif"), (b"GIF89a", "gif"),
              (b"BM", "bmp"))
HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
# Item cut-outs want a photo with this short side: an item a third of the photo wide still fills 224 pixels.
CUT_SIDE = 480
EXIF_ORIENTATION = 0x0112

# Resize policy: pad to a white square, then scale to 224x224. Catalogue photos are 3:4 on white,
# user photos have any shape; padding keeps every garment's proportions for both, so a query and
# its catalogue twin produce the same picture. See docs/resize-policy.md for the measurements.


def read_bytes(source: bytes | str | Path) -> bytes:
    """Return the raw bytes of a path or pass bytes through, refusing absurd sizes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
            if size > MAX_BYTES:
                raise ImageTooLargeError(f"{path.name}: {size} bytes is over the {MAX_BYTES} limit")
            data = path.read_bytes()
        except OSError as exc:
            raise UnreadableImageError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    if len(data) > MAX_BYTES:
        raise ImageTooLargeError(f"{len(data)} bytes is over the {MAX_BYTES} limit")
    if not data:
        raise UnreadableImageError("the file is empty")
    return data


def image_type(data: bytes) -> str | None:
    """The file suffix for an image's bytes (jpg, png, gif, webp, bmp, heic), or None if they are none of those."""
    for signature, suffix in SIGNATURES:
        if data.startswith(signature):
            return suffix
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
        return "heic"
    return None


def open_image(data: bytes, *, max_pixels: int = MAX_PIXELS, draft: int | None = None) -> Image.Image:
    """Decode bytes to an upright RGB image on white.

    draft: for JPEGs, let the decoder shrink by 1/2, 1/4 or 1/8 while keeping both sides at or
    above this many pixels; it costs a third of a full decode and changes vectors very little.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in FORMATS:
                raise UnreadableImageError(f"unsupported image format {image.format}")
            width, height = image.size
            if width * height > max_pixels:
                raise ImageTooLargeError(
                    f"{width}x{height} is {width * height / 1e6:.0f} megapixels, "
                    f"over the {max_pixels / 1e6:.0f} MP limit"
                )
            if draft and image.format in ("JPEG", "MPO"):
                image.draft("RGB", (draft, draft))
            image.seek(0)  # GIF and MPO: the first frame
            image.load()
            image = ImageOps.exif_transpose(image)
            return to_rgb(image)
    except (ImageTooLargeError, UnreadableImageError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(
            f"over {max_pixels / 1e6:.0f} megapixels: refused as a possible decompression bomb"
        ) from exc
    except Exception as exc:  # Pillow raises many types (OSError, SyntaxError, ValueError, ...)
        raise UnreadableImageError(f"not a readable image ({exc})") from exc


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB; transparency becomes the white background."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit greyscale: keep the top 8 bits instead of letting convert() clip to white.
        wide = np.asarray(image, dtype=np.uint32)
        image = Image.fromarray((wide >> 8).clip(0, 255).astype(np.uint8), "L")
    elif image.mode == "F":
        image = Image.fromarray(np.asarray(image).clip(0, 255).astype(np.uint8), "L")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        canvas.alpha_composite(rgba)
        return canvas.convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def fit_square(image: Image.Image, size: int = SIZE) -> Image.Image:
    """Pad to a white square around the centre, then resize to size x size."""
    width, height = image.size
    side = max(width, height)
    if width != height:
        canvas = Image.new("RGB", (side, side), BACKGROUND)
        canvas.paste(image, ((side - width) // 2, (side - height) // 2))
        image = canvas
    if side != size:
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return image


def open_photo(source: bytes | str | Path, *, side: int = CUT_SIDE) -> tuple[Image.Image, tuple[int, int]]:
    """A photo for the item finder: upright RGB, its short side reduced no lower than side (JPEGs are
    decoded reduced, which is cheap), and its size as given (after EXIF rotation), in which boxes are told."""
    data = read_bytes(source)
    try:
        with Image.open(io.BytesIO(data)) as header:
            width, height = header.size
            if header.getexif().get(EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
                width, height = height, width
    except Exception:  # open_image gives the one clear error for unreadable bytes
        width = height = 0
    image = open_image(data, draft=side)
    return image, (width or image.width, height or image.height)


def load_image(
    source: bytes | str | Path, *, size: int = SIZE, max_pixels: int = MAX_PIXELS, draft: bool = True
) -> np.ndarray:
    """Load one photo as the model sees it: (size, size, 3) uint8 RGB."""
    data = read_bytes(source)
    try:
        image = open_image(data, max_pixels=max_pixels, draft=size if draft else None)
    except (UnreadableImageError, ImageTooLargeError) as exc:
        if isinstance(source, (str, Path)):
            raise type(exc)(f"{Path(source).name}: {exc}") from exc
        raise
    return np.asarray(fit_square(image, size), dtype=np.uint8)


def encode(image: Image.Image, fmt: str = "JPEG", quality: int = 90) -> bytes:
    """A picture as the bytes of a file (a JPEG unless told): what a phone sends, or what the bot uploads."""
    out = io.BytesIO()
    image.save(out, fmt, quality=quality)
    return out.getvalue()
