"""A shop for the feed tests: products with photos and prices, written as a Merchant Center feed."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps

from indexing.extract.images import encode
from testbed.drawing import COLOURS, SHAPES, draw_product
from testbed.feed_server import FeedServer

FIELDS = ["id", "title", "link", "image_link", "additional_image_link", "price", "sale_price", "availability",
          "brand", "color", "gender", "item_group_id"]


jpeg = encode


@dataclass
class Product:
    id: str
    photos: list[str]  # image names on the server (or whole URLs), the main one first
    attributes: dict[str, str] = field(default_factory=dict)


class Shop:
    """Products whose photos live on a FeedServer; feed() writes the current state as TSV."""

    def __init__(self, server: FeedServer):
        self.server = server
        self.products: dict[str, Product] = {}

    def add(self, pid: str, main: Image.Image, extra: int = 0, **attributes: str) -> Product:
        """A product with its main photo and `extra` more (mirrored and zoomed copies of it)."""
        names = [f"{pid}.jpg"]
        self.server.images[names[0]] = jpeg(main)
        for n in range(extra):
            variant = ImageOps.mirror(main) if n % 2 == 0 else ImageOps.crop(main, border=max(1, main.width // 10))
            names.append(f"{pid}-{n + 2}.jpg")
            self.server.images[names[-1]] = jpeg(variant.resize(main.size))
        defaults = {"title": f"Product {pid}", "link": f"https://shop.example/p/{pid}", "price": "1299.00 INR",
                    "availability": "in stock", "brand": "Acme"}
        product = Product(pid, names, {**defaults, **attributes})
        self.products[pid] = product
        return product

    def replace_photo(self, pid: str, image: Image.Image) -> None:
        """New bytes at the same URL, as when a shop re-shoots a product."""
        self.server.images[self.products[pid].photos[0]] = jpeg(image)

    def feed(self, name: str = "tsv") -> str:
        """Publish the feed on the server; its URL."""
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=FIELDS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        for product in self.products.values():
            urls = [n if "://" in n else self.server.image_url(n) for n in product.photos]
            writer.writerow({"id": product.id, "image_link": urls[0], "additional_image_link": ",".join(urls[1:]),
                             **product.attributes})
        self.server.feeds[name] = out.getvalue().encode("utf-8")
        return f"{self.server.url}/feed.{name}"


def generated_shop(server: FeedServer, count: int, start: int = 1000, extra_every: int = 3) -> Shop:
    """count drawn products; every extra_every-th has two more photos."""
    shop = Shop(server)
    for i in range(count):
        colour, shape = COLOURS[i % 6], SHAPES[(i // 6) % 4]
        pid = str(start + i)
        shop.add(pid, draw_product(colour, shape, seed=start + i), extra=2 if i % extra_every == 0 else 0,
                 title=f"{colour} {shape} {pid}", color=colour)
    return shop


def catalogue_shop(server: FeedServer, dataset: Path, count: int, extra_every: int = 2) -> Shop:
    """count products of the shared catalogue, every extra_every-th with two more photos."""
    shop = Shop(server)
    files = sorted((dataset / "images").glob("*.jpg"), key=lambda p: int(p.stem))[:count]
    for i, path in enumerate(files):
        with Image.open(path) as image:
            shop.add(path.stem, image.convert("RGB"), extra=2 if i % extra_every == 0 else 0)
    return shop
