"""Phone screenshots with known answers: a shop's product page and a social post, each holding a catalogue photo.

Each keeps the product photo's rectangle, so that a finder can be scored against it. Themes are the
held-out split: the screenshot finder was tuned on `light`, `black` (an OLED page, photos on their own white)
and `mist` (a blue-grey page and cards); `dark` and `tinted` were never looked at while tuning. Telegram
re-encodes what it is sent as JPEG, and so do these.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from indexing.extract.images import encode

THEMES = {  # page, bar, text, faint text, accent
    "light": ((255, 255, 255), (250, 250, 250), (20, 20, 20), (120, 120, 120), (230, 60, 90)),
    "dark": ((18, 18, 20), (30, 30, 34), (235, 235, 235), (150, 150, 150), (90, 160, 255)),
    "tinted": ((246, 240, 230), (236, 226, 210), (50, 40, 30), (130, 115, 100), (40, 130, 90)),
    "black": ((0, 0, 0), (0, 0, 0), (250, 250, 250), (140, 140, 140), (255, 80, 60)),
    "mist": ((234, 242, 248), (222, 234, 244), (25, 40, 60), (110, 125, 145), (30, 100, 200)),
}
TUNING_THEMES = ("light", "black", "mist")
HELD_OUT_THEMES = ("dark", "tinted")
WORDS = ("cotton", "slim", "fit", "classic", "summer", "printed", "casual", "round", "neck", "new", "sale",
         "free", "delivery", "returns", "size", "guide", "colour", "soft", "everyday", "look", "style", "with")


@dataclass
class Screenshot:
    image: Image.Image
    kind: str  # "shop" or "social"
    theme: str
    id: str  # the product shown
    box: tuple[int, int, int, int]  # its photo's rectangle in the screenshot


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def text_lines(draw: ImageDraw.ImageDraw, x: int, y: int, width: int, lines: int, size: int, colour, rng) -> int:
    """Lines of made-up words from (x, y); returns the y below them."""
    for _ in range(lines):
        words, line = [], ""
        while True:
            word = WORDS[rng.integers(len(WORDS))]
            if draw.textlength(f"{line} {word}", font=font(size)) > width:
                break
            line = f"{line} {word}".strip()
            words.append(word)
        draw.text((x, y), line, fill=colour, font=font(size))
        y += int(size * 1.45)
    return y


def status_bar(draw: ImageDraw.ImageDraw, w: int, h: int, colour, text) -> None:
    draw.rectangle((0, 0, w, h), fill=colour)
    draw.text((int(0.05 * w), int(0.22 * h)), "9:41", fill=text, font=font(int(0.55 * h)))
    for i in range(3):
        x = w - int(0.06 * w) - i * int(0.05 * w)
        draw.rectangle((x, int(0.35 * h), x + int(0.03 * w), int(0.65 * h)), fill=text)


def framed(photo: Image.Image, size: tuple[int, int], background=(255, 255, 255)) -> Image.Image:
    """A catalogue photo fitted into a rectangle of this size, centred on its own white."""
    scale = min(size[0] / photo.width, size[1] / photo.height)
    fitted = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", size, background)
    canvas.paste(fitted, ((size[0] - fitted.width) // 2, (size[1] - fitted.height) // 2))
    return canvas


def screen(theme: str, size: tuple[int, int], bar) -> tuple[Image.Image, ImageDraw.ImageDraw, int]:
    """A blank screen of the theme with its status bar: the image, its pen, and where the bar ends."""
    page, _, text, _, _ = THEMES[theme]
    image = Image.new("RGB", size, page)
    draw = ImageDraw.Draw(image)
    status = int(0.035 * size[1])
    status_bar(draw, size[0], status, bar, text)
    return image, draw, status


def shop_page(product: tuple[str, Image.Image], others: Sequence[Image.Image], rng: np.random.Generator,
              theme: str, size: tuple[int, int]) -> Screenshot:
    _, bar, text, faint, accent = THEMES[theme]
    w, h = size
    image, draw, status = screen(theme, size, bar)
    header = status + int(0.05 * h)
    draw.rectangle((0, status, w, header), fill=bar)
    draw.text((int(0.2 * w), status + int(0.012 * h)), "SHOP", fill=text, font=font(int(0.025 * h)))
    margin = int(w * rng.choice([0.0, 0.04]))
    pw = w - 2 * margin
    ph = int(pw * rng.choice([4 / 3, 1.0, 5 / 4]))
    photo_bg = (255, 255, 255) if rng.random() < 0.5 else (242, 242, 242)
    box = (margin, header + int(0.01 * h), margin + pw, header + int(0.01 * h) + ph)
    image.paste(framed(product[1], (pw, ph), photo_bg), box[:2])
    y = box[3] + int(0.015 * h)
    x = int(0.05 * w)
    y = text_lines(draw, x, y, w - 2 * x, 2, int(0.018 * h), text, rng)
    draw.text((x, y), f"$ {rng.integers(9, 199)}.99", fill=text, font=font(int(0.024 * h)))
    y += int(0.04 * h)
    draw.rounded_rectangle((x, y, w - x, y + int(0.045 * h)), radius=int(0.01 * h), fill=accent)
    draw.text((int(0.38 * w), y + int(0.012 * h)), "ADD TO BAG", fill=(255, 255, 255), font=font(int(0.018 * h)))
    y += int(0.06 * h)
    y = text_lines(draw, x, y, w - 2 * x, 2, int(0.015 * h), faint, rng)
    draw.text((x, y), "You may also like", fill=text, font=font(int(0.018 * h)))
    y += int(0.03 * h)
    tile = (w - 4 * x) // 3
    for i, other in enumerate(others[:3]):
        image.paste(framed(other, (tile, int(tile * 4 / 3)), (242, 242, 242)), (x + i * (tile + x), y))
    nav = h - int(0.06 * h)
    draw.rectangle((0, nav, w, h), fill=bar)
    for i in range(4):
        cx = int((i + 0.5) * w / 4)
        draw.ellipse((cx - 12, nav + 18, cx + 12, nav + 42), outline=faint, width=3)
    return Screenshot(image, "shop", theme, product[0], box)


def social_post(product: tuple[str, Image.Image], rng: np.random.Generator, theme: str,
                size: tuple[int, int]) -> Screenshot:
    page, _, text, faint, accent = THEMES[theme]
    w, h = size
    image, draw, status = screen(theme, size, page)
    draw.text((int(0.05 * w), status + int(0.012 * h)), "Instagrid", fill=text, font=font(int(0.028 * h)))
    y = status + int(0.07 * h)
    avatar = int(0.035 * h)
    face = tuple(int(v) for v in rng.integers(60, 200, 3))
    draw.ellipse((int(0.04 * w), y, int(0.04 * w) + avatar, y + avatar), fill=face)
    draw.text((int(0.04 * w) + avatar + 12, y + avatar // 4), "style.daily", fill=text, font=font(int(0.018 * h)))
    y += avatar + int(0.012 * h)
    card = tuple(int(v) for v in (np.array(page) * 0.85 + np.array(accent) * 0.15))
    pad = int(w * rng.choice([0.03, 0.06]))
    side = w - 2 * pad - int(0.04 * w)
    ph = int(side * rng.choice([1.0, 5 / 4]))
    draw.rounded_rectangle((int(0.02 * w), y, w - int(0.02 * w), y + ph + 2 * pad), radius=16, fill=card)
    box = (int(0.02 * w) + pad, y + pad, int(0.02 * w) + pad + side, y + pad + ph)
    image.paste(framed(product[1], (side, ph)), box[:2])
    y = box[3] + pad + int(0.015 * h)
    for i in range(3):
        cx = int(0.07 * w) + i * int(0.1 * w)
        draw.ellipse((cx - 14, y, cx + 14, y + 28), outline=text, width=3)
    y += int(0.035 * h)
    draw.text((int(0.04 * w), y), f"{rng.integers(20, 9000)} likes", fill=text, font=font(int(0.017 * h)))
    text_lines(draw, int(0.04 * w), y + int(0.03 * h), int(0.9 * w), 3, int(0.016 * h), faint, rng)
    return Screenshot(image, "social", theme, product[0], box)


def as_sent(screenshot: Screenshot, quality: int = 87) -> Screenshot:
    """The screenshot as a Telegram photo: JPEG-encoded."""
    sent = Image.open(io.BytesIO(encode(screenshot.image, quality=quality))).convert("RGB")
    return Screenshot(sent, screenshot.kind, screenshot.theme, screenshot.id, screenshot.box)


def screenshot(products: Sequence[tuple[str, Image.Image]], rng: np.random.Generator, kind: str, theme: str,
               size: tuple[int, int] = (591, 1280)) -> Screenshot:
    """products[0] is shown; the shop page's row of other products shows the next three."""
    if kind == "shop":
        made = shop_page(products[0], [p for _, p in products[1:4]], rng, theme, size)
    else:
        made = social_post(products[0], rng, theme, size)
    return as_sent(made)
