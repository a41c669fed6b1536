"""Drawn catalogue products: a coloured shape on white, and folders of them with a styles.csv."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLOURS = ["Red", "Blue", "Green", "Black", "White", "Yellow"]
RGB = {"Red": (200, 30, 30), "Blue": (30, 50, 200), "Green": (30, 160, 60), "Black": (20, 20, 20),
       "White": (245, 245, 245), "Yellow": (230, 210, 40)}
SHAPES = ["Tshirts", "Shoes", "Watches", "Jeans"]
GENDERS = ["Men", "Women"]


def draw_product(colour: str, shape: str, size: tuple[int, int] = (60, 80), seed: int = 0) -> Image.Image:
    """A small catalogue-like photo: a coloured shape on white, with a little seeded texture."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    w, h = size
    fill = RGB[colour]
    if shape == "Tshirts":
        draw.rectangle([w * 0.25, h * 0.2, w * 0.75, h * 0.85], fill=fill)
        draw.rectangle([w * 0.05, h * 0.2, w * 0.95, h * 0.35], fill=fill)
    elif shape == "Shoes":
        draw.ellipse([w * 0.1, h * 0.55, w * 0.9, h * 0.8], fill=fill)
    elif shape == "Watches":
        draw.ellipse([w * 0.3, h * 0.35, w * 0.7, h * 0.65], outline=fill, width=max(2, w // 12))
        draw.rectangle([w * 0.45, h * 0.05, w * 0.55, h * 0.95], fill=fill)
    else:
        draw.polygon([(w * 0.3, h * 0.1), (w * 0.7, h * 0.1), (w * 0.8, h * 0.95), (w * 0.55, h * 0.95),
                      (w * 0.5, h * 0.4), (w * 0.45, h * 0.95), (w * 0.2, h * 0.95)], fill=fill)
    rng = np.random.default_rng(seed)
    pixels = np.asarray(image, dtype=np.int16) + rng.integers(-6, 7, size=(h, w, 3))
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def make_catalogue(folder: Path, count: int = 24, start_id: int = 1000) -> Path:
    """count generated products as <id>.jpg plus styles.csv; returns the CSV path."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        pid = start_id + i
        colour, shape, gender = COLOURS[i % 6], SHAPES[(i // 6) % 4], GENDERS[i % 2]
        draw_product(colour, shape, seed=pid).save(folder / f"{pid}.jpg", quality=92)
        rows.append({"id": pid, "gender": gender, "articleType": shape, "baseColour": colour,
                     "productDisplayName": f"{gender} {colour} {shape} {pid}"})
    styles = folder.parent / f"{folder.name}-styles.csv"
    with open(styles, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return styles
