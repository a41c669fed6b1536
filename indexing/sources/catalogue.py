"""A catalogue on disk: image files named <id>.<ext> and an optional metadata CSV keyed by `id`."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from indexing.errors import BuildError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".heic", ".heif"}


@dataclass(frozen=True)
class Metadata:
    columns: list[str]  # every column but `id`, in file order
    rows: dict[str, dict[str, str]]


def product_id(path: Path) -> str:
    return path.stem


def sort_key(product: str) -> tuple[int, int | str]:
    """Numeric ids in numeric order, then the rest by name: stable across runs and resumes."""
    return (0, int(product)) if product.isdigit() else (1, product)


def list_images(sources: Iterable[str | Path]) -> list[Path]:
    """Image files in the given folders (not recursive) and files, one per id, sorted by id."""
    found: dict[str, Path] = {}
    for source in map(Path, sources):
        if source.is_dir():
            candidates: Iterable[Path] = source.iterdir()
        elif source.is_file():
            candidates = [source]
        else:
            raise BuildError(f"no such file or folder: {source}")
        for path in candidates:
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
                found.setdefault(product_id(path), path)
    return [found[key] for key in sorted(found, key=sort_key)]


def read_metadata(path: str | Path) -> Metadata:
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or "id" not in reader.fieldnames:
                raise BuildError(f"{path}: the metadata CSV needs an 'id' column")
            columns = [c for c in reader.fieldnames if c != "id"]
            rows = {}
            for row in reader:
                key = (row.get("id") or "").strip()
                if key:
                    rows[key] = {c: (row.get(c) or "").strip() for c in columns}
    except OSError as exc:
        raise BuildError(f"cannot read metadata {path}: {exc.strerror or exc}") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise BuildError(f"{path}: not a readable CSV ({exc})") from None
    return Metadata(columns, rows)
