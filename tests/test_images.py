"""The shared loader: formats, orientation, colour modes, bombs and broken files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from indexing.errors import ImageTooLargeError, UnreadableImageError
from indexing.extract.images import image_type, load_image
from testbed.drawing import draw_product


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF"])
def test_every_supported_format_loads_as_224_rgb(fmt):
    pixels = load_image(encode(draw_product("Red", "Tshirts"), fmt))
    assert pixels.shape == (224, 224, 3) and pixels.dtype == np.uint8
    assert pixels[112, 112, 0] > 150 and pixels[112, 112, 2] < 100  # the red shirt's middle


def test_portrait_photo_is_padded_with_white_not_squashed():
    pixels = load_image(encode(Image.new("RGB", (300, 400), (0, 0, 200)), "PNG"))
    # 3:4 -> 224 tall, 168 wide in the middle, 28 white columns each side
    assert (pixels[:, :27] == 255).all() and (pixels[:, -27:] == 255).all()
    assert (pixels[:, 30:-30, 2] == 200).all()


def test_transparent_png_becomes_white_background():
    rgba = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (25, 25, 75, 75))
    pixels = load_image(encode(rgba, "PNG"))
    assert (pixels[5, 5] == 255).all()
    assert tuple(pixels[112, 112]) == (0, 0, 255)


def test_palette_with_transparency_and_la_modes():
    palette = Image.new("P", (50, 50), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.paste(1, (10, 10, 40, 40))
    palette.info["transparency"] = 0
    pixels = load_image(encode(palette, "PNG", transparency=0))
    assert (pixels[3, 3] == 255).all() and tuple(pixels[112, 112]) == (255, 0, 0)
    la = Image.new("LA", (40, 40), (0, 0))
    assert (load_image(encode(la, "PNG")) == 255).all()


def test_cmyk_jpeg_converts_to_rgb():
    cmyk = Image.new("CMYK", (80, 80), (0, 255, 255, 0))  # pure red in CMYK
    pixels = load_image(encode(cmyk, "JPEG"))
    red, green, blue = (int(v) for v in pixels[112, 112])
    assert red > 200 and green < 60 and blue < 60


def test_sixteen_bit_greyscale_keeps_its_tone():
    grey = Image.fromarray(np.full((50, 50), 32768, dtype=np.uint16))
    assert grey.mode.startswith("I;16")
    pixels = load_image(encode(grey, "PNG"))
    assert 120 <= pixels[112, 112, 0] <= 136


def test_exif_orientation_is_applied():
    # Stored landscape, red on the left; orientation 6 means "rotate 90 degrees clockwise to view".
    stored = Image.new("RGB", (200, 100), "blue")
    stored.paste((255, 0, 0), (0, 0, 100, 100))
    exif = Image.Exif()
    exif[0x0112] = 6
    pixels = load_image(encode(stored, "JPEG", exif=exif.tobytes()))
    # Viewed upright it is portrait (white padding left and right), red on top.
    assert (pixels[:, :40] > 240).all()
    assert pixels[30, 112, 0] > 200 and pixels[200, 112, 2] > 200


def test_gif_uses_first_frame():
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    assert load_image(out.getvalue())[112, 112, 0] > 200


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"this is a text file, not a photo", "not a readable image"),
        (b"%PDF-1.4\n1 0 obj\n", "not a readable image"),
    ],
)
def test_non_images_raise_a_clear_error(data, message):
    with pytest.raises(UnreadableImageError, match=message):
        load_image(data)


def test_truncated_jpeg_raises():
    data = encode(draw_product("Blue", "Shoes", size=(600, 800)), "JPEG")
    with pytest.raises(UnreadableImageError):
        load_image(data[: len(data) // 3])


def test_decompression_bomb_is_refused_before_decoding():
    bomb = encode(Image.new("1", (12000, 12000)), "PNG")  # 144 MP, a few kB on disk
    assert len(bomb) < 100_000
    with pytest.raises(ImageTooLargeError, match="megapixels"):
        load_image(bomb)


def test_unreadable_file_error_names_the_file(tmp_path):
    broken = tmp_path / "12345.jpg"
    broken.write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(UnreadableImageError, match=r"12345\.jpg"):
        load_image(broken)


def test_draft_decode_matches_full_decode(embedder):
    big = draw_product("Green", "Jeans", size=(1800, 2400)).resize((1800, 2400))
    data = encode(big, "JPEG", quality=90)
    fast, full = load_image(data), load_image(data, draft=False)
    assert np.abs(fast.astype(int) - full.astype(int)).mean() < 2.0
    a, b = embedder.embed(np.stack([fast, full]))
    assert float(a @ b) > 0.999


def test_heic_from_an_iphone_loads_like_the_same_photo_as_jpeg():
    image = draw_product("Green", "Jeans", size=(120, 160), seed=4)
    heic = io.BytesIO()
    image.save(heic, "HEIF", quality=95)
    assert image_type(heic.getvalue()) == "heic"
    loaded = load_image(heic.getvalue()).astype(int)
    reference = load_image(encode(image, "PNG")).astype(int)
    assert loaded.shape == (224, 224, 3) and np.abs(loaded - reference).mean() < 4


@pytest.mark.parametrize(("fmt", "suffix"), [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif"),
                                             ("BMP", "bmp")])
def test_image_type_is_sniffed_from_the_bytes(fmt, suffix):
    assert image_type(encode(draw_product("Red", "Shoes"), fmt)) == suffix
    assert image_type(b"<!doctype html><html>") is None
