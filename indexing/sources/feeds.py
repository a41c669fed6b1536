"""Product feeds: Google Merchant Center TSV/CSV and RSS 2.0/Atom XML, or any CSV through a column map."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import defusedxml.ElementTree as SafeXml
from defusedxml import DefusedXmlException

from indexing.errors import FeedError

# The attributes kept from a feed (the Google Merchant Center names); the rest of a row is ignored.
ATTRIBUTES = (
    "id", "title", "link", "image_link", "additional_image_link", "price", "sale_price", "availability",
    "brand", "color", "gender", "age_group", "size", "product_type", "google_product_category", "item_group_id",
)
IMAGES = ("image_link", "additional_image_link")
MAX_ADDITIONAL = 10  # Merchant Center's own limit
MAX_FEED_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True)
class FeedProduct:
    id: str
    images: tuple[str, ...]  # image_link first, then the additional ones
    meta: dict[str, str] = field(default_factory=dict)  # the other attributes that the row has
    where: str = ""  # "row 12" or "item 12", for messages


def parse_columns(spec: str) -> dict[str, str]:
    """`id=ID,title=Name` -> {"ID": "id", "Name": "title"}: the feed's column for each attribute."""
    mapping: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        attribute, sep, column = part.partition("=")
        attribute, column = attribute.strip(), column.strip()
        if not sep or not column:
            raise FeedError(f"--columns: {part!r} is not ATTRIBUTE=COLUMN")
        if attribute not in ATTRIBUTES:
            raise FeedError(f"--columns: unknown attribute {attribute!r}; known: {', '.join(ATTRIBUTES)}")
        mapping[column] = attribute
    return mapping


def read_feed(source: str | Path, columns: Mapping[str, str] | None = None,
              max_bytes: int = MAX_FEED_BYTES) -> list[FeedProduct]:
    """The products of a feed file or http(s) URL, in feed order."""
    text = str(source)
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text):
        from indexing.sources.download import fetch_feed  # only feeds by URL need the HTTP client

        data = fetch_feed(text, max_bytes)
    else:
        path = Path(source)
        try:
            if path.stat().st_size > max_bytes:
                raise FeedError(f"{path}: {path.stat().st_size:,} bytes is over the {max_bytes:,}-byte feed limit")
            data = path.read_bytes()
        except OSError as exc:
            raise FeedError(f"cannot read feed {path}: {exc.strerror or exc}") from None
    return parse_feed(data, Path(text).name if "://" not in text else text, columns)


def parse_feed(data: bytes, name: str, columns: Mapping[str, str] | None = None) -> list[FeedProduct]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FeedError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    rows = xml_rows(data, name) if text.lstrip().startswith("<") else table_rows(text, name)
    products = list(feed_products(rows, name, columns or {}))
    if not products:
        raise FeedError(f"{name}: the feed lists no products")
    return products


def table_rows(text: str, name: str) -> Iterator[tuple[str, dict[str, list[str]]]]:
    """Tab- or comma-separated, attribute names in the first row (tab if the first row has a tab)."""
    header = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text), delimiter="\t" if "\t" in header else ",")
    try:
        names = [n.strip() for n in next(reader, [])]
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) > len(names):
                raise FeedError(f"{name} row {reader.line_num}: {len(row)} cells under {len(names)} column names")
            yield f"row {reader.line_num}", {n: [cell] for n, cell in zip(names, row, strict=False)}
    except csv.Error as exc:
        raise FeedError(f"{name} row {reader.line_num}: malformed ({exc})") from None


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def xml_rows(data: bytes, name: str) -> Iterator[tuple[str, dict[str, list[str]]]]:
    """RSS 2.0 <item>s or Atom <entry>s, with the attributes as child elements (`g:` or no namespace)."""
    try:
        # No DTD at all: Merchant Center feeds have none, and without one no entity can be declared.
        root = SafeXml.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise FeedError(f"{name}: refused, the XML declares a DTD or entities ({type(exc).__name__}); "
                        "feeds need neither, and entity expansion is how XML bombs work") from None
    except SafeXml.ParseError as exc:
        raise FeedError(f"{name}: malformed XML ({exc})") from None
    entries = [e for e in root.iter() if local(e.tag) in ("item", "entry")]
    for number, entry in enumerate(entries, 1):
        row: dict[str, list[str]] = {}
        for child in entry:
            key = local(child.tag)
            value = child.get("href", "") if key == "link" and child.get("href") else (child.text or "")
            row.setdefault(key, []).append(value)
        yield f"item {number}", row


def feed_products(rows: Iterator[tuple[str, dict[str, list[str]]]], name: str,
                  columns: Mapping[str, str]) -> Iterator[FeedProduct]:
    first: dict[str, str] = {}
    for where, raw in rows:
        values: dict[str, list[str]] = {}
        for column, cells in raw.items():
            attribute = columns.get(column) or column.strip().lower().replace(" ", "_")
            values.setdefault(attribute, []).extend(c.strip() for c in cells if c and c.strip())
        pid = (values.get("id") or [""])[0]
        if not pid:
            raise FeedError(f"{name} {where}: no id")
        if pid in first:
            raise FeedError(f"{name} {where}: duplicate id {pid!r}, first at {first[pid]}")
        first[pid] = where
        # Several links in one cell are comma-separated (Merchant Center's TSV, and shop exports' image columns).
        links = [url.strip() for attribute in IMAGES for cell in values.get(attribute, [])
                 for url in cell.split(",") if url.strip()]
        if not values.get("image_link"):
            raise FeedError(f"{name} {where}: product {pid!r} has no image_link")
        meta = {a: values[a][0] for a in ATTRIBUTES if a not in IMAGES and a != "id" and values.get(a)}
        yield FeedProduct(pid, tuple(dict.fromkeys(links))[: 1 + MAX_ADDITIONAL], meta, where)
