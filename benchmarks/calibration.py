"""The "nothing similar" cut-off: calibrated on one half of the photos, judged on the other half, never tuned on.

    python -m benchmarks calibration                      # builds a 4,096-product index of the catalogue first
    python -m benchmarks calibration --index /tmp/real4k  # an index of the catalogue built before (copied)

Photos of catalogue products: each rendered as a phone would take or show it (a packshot enlarged, turned and
recompressed; the product laid on a textured surface; a shop page's or a social post's screenshot). Photos that
are not fashion: every sample picture scikit-image ships in its wheel (read from its folder: nothing is fetched)
and scikit-learn's two. Each kind is split in two by a fixed rule: the calibration half chooses the cut-off with
`fashion-index calibrate`'s code, the held-out half only measures it.

Random weights: the figures show the calibration doing its job on these photos, not how ImageNet's ResNet50
separates garments from cats.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from benchmarks.common import DATASET, catalogue_files
from indexing import Index, Weights, build_index, open_embedder
from indexing.calibrate import best_distances, calibrate, photos_in
from indexing.extract.images import encode
from indexing.finder.finders import open_finder
from indexing.nearness import judge
from indexing.sources.options import BuildOptions
from testbed.composites import flatlay, product_cutout
from testbed.screenshots import screenshot

STYLES = ("packshot", "surface", "shop", "social")


def render(pid: str, style: str, rng: np.random.Generator, others: list[str]) -> Image.Image:
    """Product pid as a shopper might send it."""
    photo = Image.open(DATASET / "images" / f"{pid}.jpg").convert("RGB")
    if style == "packshot":
        turned = photo.rotate(float(rng.uniform(-6, 6)), expand=True, fillcolor=(250, 250, 248))
        turned = ImageOps.mirror(turned) if rng.random() < 0.5 else turned
        return turned.resize((960, int(960 * turned.height / turned.width)), Image.Resampling.BICUBIC)
    if style == "surface":
        return flatlay([(pid, product_cutout(DATASET / "images" / f"{pid}.jpg"))], rng).image
    shown = [(pid, photo)] + [(o, Image.open(DATASET / "images" / f"{o}.jpg").convert("RGB")) for o in others]
    return screenshot(shown, rng, style, ("light", "dark")[int(rng.integers(2))]).image


def catalogue_renditions(index: Index, folder: Path, count: int, seed: int) -> tuple[Path, Path]:
    """count products of the index, rendered; even ones for calibration, odd ones held out."""
    rng = np.random.default_rng(seed)
    ids = sorted(set(index.ids), key=int)
    chosen = [ids[i] for i in sorted(rng.choice(len(ids), count, replace=False))]
    halves = folder / "catalogue-calibration", folder / "catalogue-held-out"
    for half in halves:
        half.mkdir(parents=True)
    for n, pid in enumerate(chosen):
        style = STYLES[(n // 2) % len(STYLES)]
        others = [ids[int(i)] for i in rng.choice(len(ids), 3, replace=False)]
        image = render(pid, style, rng, others)
        (halves[n % 2] / f"{pid}.jpg").write_bytes(encode(image, quality=int(rng.integers(70, 92))))
    return halves


def not_fashion(folder: Path) -> tuple[Path, Path]:
    """scikit-image's and scikit-learn's sample pictures, alternately into the two halves."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    pictures: list[tuple[str, Image.Image]] = []
    data = Path(skimage.data.__file__).parent
    for path in sorted(data.iterdir()):
        if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".gif") and "chessboard" not in path.name:
            with Image.open(path) as image:
                pictures.append((f"skimage-{path.stem}", image.convert("RGB")))
    pictures += [(f"sklearn-{n}", Image.fromarray(a)) for n, a in enumerate(load_sample_images().images)]
    halves = folder / "others-calibration", folder / "others-held-out"
    for half in halves:
        half.mkdir(parents=True)
    for n, (name, image) in enumerate(pictures):
        image.save(halves[n % 2] / f"{name}.jpg", quality=90)
    return halves


def run(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks calibration")
    parser.add_argument("--index", type=Path, help="an index of the catalogue to copy (default: build one)")
    parser.add_argument("--products", type=int, default=4096, help="products of a built index")
    parser.add_argument("--photos", type=int, default=120, help="catalogue products rendered (half held out)")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="fashion-calibration-"))
    try:
        index_dir = work / "index"
        if args.index:
            shutil.copytree(args.index, index_dir, ignore=shutil.ignore_patterns(".partial", "images"))
        else:
            build_index([f for f in catalogue_files(args.products)], index_dir,
                        metadata=DATASET / "styles.csv", options=BuildOptions(weights=Weights("random", seed=0)))
        index = Index.load(index_dir)
        queries, held_queries = catalogue_renditions(index, work, args.photos, args.seed)
        others, held_others = not_fashion(work)
        calibrated = calibrate(index_dir, queries, others, progress=False)
        index = Index.load(index_dir)
        embedder = open_embedder(index)
        finder = open_finder("auto", embedder, index.manifest)
        skipped: list[str] = []
        near = best_distances(index, embedder, finder, photos_in(held_queries), "held-out catalogue", False, skipped)
        far = best_distances(index, embedder, finder, photos_in(held_others), "held-out others", False, skipped)
        held = judge(calibrated.chosen.cutoff, near, far)
        return {"calibration": {
            "weights": index.fingerprint.get("weights"),
            "note": "random weights: the calibration at work on these photos, not ImageNet's separation",
            "products_in_index": index.product_count,
            "neighbours": index.manifest["neighbours"],
            "cutoff": round(calibrated.chosen.cutoff, 4),
            "rows": [{"photos": "calibration half (chose the cut-off)", **calibrated.chosen.to_dict(),
                      "catalogue photos": len(calibrated.near), "other photos": len(calibrated.far)},
                     {"photos": "held-out half (never tuned on)", **held.to_dict(), "catalogue photos": len(near),
                      "other photos": len(far)}],
            "cutoffs": [row.to_dict() for row in calibrated.rows()],
            "distances": {name: {"p5": round(float(np.percentile(d, 5)), 4), "median": round(float(np.median(d)), 4),
                                 "p95": round(float(np.percentile(d, 95)), 4)}
                          for name, d in (("catalogue, calibration", calibrated.near),
                                          ("others, calibration", calibrated.far),
                                          ("catalogue, held out", near), ("others, held out", far))},
            "skipped": skipped,
        }}
    finally:
        shutil.rmtree(work, ignore_errors=True)
