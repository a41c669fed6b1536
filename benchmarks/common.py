"""What the benchmarks share: where the catalogue and the results are, percentiles, the machine, a
catalogue-sized index of random vectors, and a process's memory."""

from __future__ import annotations

import os
import platform
import re
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from indexing.extract.embedder import DIM, l2_normalize, probe_images
from indexing.extract.images import encode
from indexing.sources.catalogue import read_metadata
from indexing.store.files import write_index
from indexing.store.index import Index
from indexing.store.milvus import parse_store

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DATASET = Path(os.environ.get("FASHION_DATASET", ROOT.parent / "shared" / "datasets" / "fashion-small"))


def p(values, q=50) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def catalogue_files(n: int) -> list[Path]:
    ids = sorted(int(f.stem) for f in (DATASET / "images").glob("*.jpg"))[:n]
    return [DATASET / "images" / f"{i}.jpg" for i in ids]


def big_jpeg(size: tuple[int, int]) -> bytes:
    """A catalogue photo upscaled to a phone-sized JPEG (real content, real JPEG entropy)."""
    source = Image.open(DATASET / "images" / "15970.jpg").convert("RGB")
    return encode(source.resize(size, Image.Resampling.BICUBIC))


def machine() -> dict:
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "python": sys.version.split()[0]}


def synthetic_index(directory: Path, n: int, embedder, seed: int = 0, store: str | None = None) -> Index:
    """n products with the real catalogue's metadata and photos, and random unit vectors.

    Search time and memory depend only on n and the dimension, so random vectors give true timings.
    """
    rng = np.random.default_rng(seed)
    vectors = np.empty((n, DIM), np.float32)
    for start in range(0, n, 50_000):
        stop = min(n, start + 50_000)
        vectors[start:stop] = l2_normalize(rng.standard_normal((stop - start, DIM), dtype=np.float32))
    write_index(directory, vectors=vectors, products=synthetic_products(n), fingerprint=embedder.fingerprint,
                probe=embedder.embed(probe_images()), store=parse_store(store) if store else None)
    return Index.load(directory)


def synthetic_products(n: int) -> list[dict]:
    """n products: the real catalogue's, then copies of them under new ids (with the same photos and metadata)."""
    table = read_metadata(DATASET / "styles.csv")
    ids = sorted(int(f.stem) for f in (DATASET / "images").glob("*.jpg"))
    products = []
    for i in range(n):
        pid = str(ids[i % len(ids)])
        key = pid if i < len(ids) else f"{pid}-{i}"
        products.append({"id": key, "image": str(DATASET / "images" / f"{pid}.jpg"), "photo": key,
                         "meta": table.rows.get(pid, {})})
    return products


def rss_mb(pid: int) -> dict[str, int]:
    """A running process's memory now and at its peak (VmRSS, VmHWM)."""
    status = Path(f"/proc/{pid}/status").read_text()
    value = {key: int(re.search(rf"{key}:\s+(\d+)", status).group(1)) // 1024 for key in ("VmRSS", "VmHWM")}
    return {"rss_mb": value["VmRSS"], "peak_rss_mb": value["VmHWM"]}
