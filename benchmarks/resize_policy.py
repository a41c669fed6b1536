"""Compare resize policies (pad to a white square, squash, centre-crop) for catalogue and query photos.

Two query sets with a known answer: the data set's queries-224 (squashed to a square) and synthetic
aspect-kept "user photos" made from catalogue images (upscaled, slightly cropped, put on a margin of
another background, re-encoded). Random weights: this measures how well the geometry of query and
catalogue agree, not recommendation quality.

    python -m benchmarks resize [--catalogue 600] [--queries 150]
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import DATASET
from indexing import KerasEmbedder, Weights
from indexing.extract.embedder import l2_normalize
from indexing.extract.images import SIZE, encode, fit_square, open_image


def squash(image: Image.Image) -> Image.Image:
    return image.resize((SIZE, SIZE), Image.Resampling.BILINEAR)


def centre_crop(image: Image.Image) -> Image.Image:
    w, h = image.size
    side = min(w, h)
    box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
    return image.crop(box).resize((SIZE, SIZE), Image.Resampling.BILINEAR)


POLICIES = {"pad (chosen)": fit_square, "squash": squash, "centre-crop": centre_crop}


def user_photo(path: Path, rng: np.random.Generator) -> bytes:
    """A catalogue photo as a phone might show it: bigger, cropped a little, on a margin, re-encoded."""
    image = Image.open(path).convert("RGB")
    w, h = image.size
    image = image.resize((w * 8, h * 8), Image.Resampling.BICUBIC)
    w, h = image.size
    cut = rng.uniform(0.0, 0.05, size=4)
    image = image.crop((int(cut[0] * w), int(cut[1] * h), w - int(cut[2] * w), h - int(cut[3] * h)))
    margin = int(0.12 * max(image.size))
    tone = tuple(int(v) for v in rng.integers(200, 250, size=3))
    canvas = Image.new("RGB", (image.width + 2 * margin, image.height + margin), tone)
    canvas.paste(image, (margin, margin // 2))
    return encode(canvas, quality=80)


def embed(embedder, sources, policy) -> np.ndarray:
    vectors = []
    for start in range(0, len(sources), 16):
        batch = []
        for source in sources[start : start + 16]:
            data = source.read_bytes() if isinstance(source, Path) else source
            batch.append(np.asarray(policy(open_image(data, draft=SIZE)), dtype=np.uint8))
        vectors.append(embedder.embed(np.stack(batch)))
    return np.concatenate(vectors)


def recall(queries: np.ndarray, targets: list[int], catalogue: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    top = np.argsort(-(queries @ catalogue.T), axis=1)[:, :5]
    hit1 = np.mean([groups[t[0]] == groups[i] for t, i in zip(top, targets, strict=True)])
    hit5 = np.mean([np.any(groups[t] == groups[i]) for t, i in zip(top, targets, strict=True)])
    return round(float(hit1), 3), round(float(hit5), 3)


def run(argv: Sequence[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks resize", description=__doc__)
    parser.add_argument("--catalogue", type=int, default=600)
    parser.add_argument("--queries", type=int, default=150)
    args = parser.parse_args(argv)
    with open(DATASET / "manifest.csv", newline="") as handle:
        twin = {row["id"]: row["exact_dup_of"] or row["id"] for row in csv.DictReader(handle)}
    rng = np.random.default_rng(0)
    query_ids = sorted(p.stem for p in (DATASET / "queries-224").glob("*.jpg"))
    query_ids = list(rng.choice(query_ids, size=args.queries, replace=False))
    others = sorted(set(p.stem for p in (DATASET / "images").glob("*.jpg")) - set(query_ids))
    ids = query_ids + list(rng.choice(others, size=args.catalogue - args.queries, replace=False))
    groups = np.array([twin.get(i, i) for i in ids])
    catalogue_files = [DATASET / "images" / f"{i}.jpg" for i in ids]
    squashed = [DATASET / "queries-224" / f"{i}.jpg" for i in query_ids]
    phone = [user_photo(DATASET / "images" / f"{i}.jpg", rng) for i in query_ids]
    embedder = KerasEmbedder(Weights("random", 0))
    rows = []
    for name, policy in POLICIES.items():
        started = time.time()
        catalogue = l2_normalize(embed(embedder, catalogue_files, policy))
        targets = list(range(len(query_ids)))
        r224 = recall(embed(embedder, squashed, policy), targets, catalogue, groups)
        rphone = recall(embed(embedder, phone, policy), targets, catalogue, groups)
        rows.append({"policy": name, "queries-224 recall@1": r224[0], "queries-224 recall@5": r224[1],
                     "aspect-kept recall@1": rphone[0], "aspect-kept recall@5": rphone[1],
                     "seconds": round(time.time() - started)})
        print(rows[-1], flush=True)
    return {"resize": {"rows": rows, "catalogue": len(ids), "queries": len(query_ids)}}

