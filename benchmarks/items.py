"""The item finder on composites with known answers: flat-lays of 2-3 products, single products in photos,
small products (watches, sunglasses, jewellery) on plain surfaces, catalogue model shots standing in a room or
a scene (people), and phone screenshots of a shop's product page or a social post showing a product.

Reports, per kind of photo: found (share of placed products with an offered box of IoU >= 0.5), first
right (the searched box is a product), how closely the found items' cut-out masks follow the products
(median IoU, and the surface they take in as a share of the product's area), and how often the product's
own id is in the top 5 when searching the offered item, the whole photo, or the ground-truth cut-out. Also
checks that catalogue renditions (queries-224) still pass through unchanged.

    python -m benchmarks items                      # 2,000-product index, 100 photos of each kind
    python -m benchmarks items --photos 40 --seed 7 # other photos (held-out backgrounds: --held-out)

For people, "first right" is "the searched box is the person", and the ground-truth cut-out is the person cut
out on white; for screenshots, it is "the searched box is the product's photo", and the ground truth is that
photo cut from the screenshot. The held-out split is by background (surfaces, scenes, screenshot themes).

Random weights: the top-5 figures compare the three ways of searching with one another; none of them
measures real recommendation quality.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import DATASET
from indexing import KerasEmbedder, Weights, build_index
from indexing.extract.extractor import open_embedder
from indexing.extract.images import encode, load_image
from indexing.finder.finders import FINDERS, open_finder
from indexing.finder.items import Item, ItemFinder, box_area, box_iou, box_overlap, item_pixels, offered
from indexing.sources.build import export_extractor
from indexing.sources.catalogue_people import measure_people
from indexing.sources.options import BuildOptions
from indexing.store.index import Index
from testbed.composites import (
    SCENES,
    SURFACES,
    Composite,
    Placed,
    busy,
    flatlay,
    mask_fit,
    product_cutout,
    small,
    worn,
)
from testbed.screenshots import HELD_OUT_THEMES, TUNING_THEMES, screenshot

# Never looked at while tuning the finder. The first three of each were held out from the start; the others
# were added later, and measured once with the finder as it then stood, before any further change.
HELD_OUT_SCENES = ("motorcycle_left", "camera", "coins", "page", "hubble_deep_field", "retina", "ihc")
HELD_OUT_SURFACES = ("gravel", "terrazzo", "moon", "marble", "speckle")
# People stand in a plain room or before a scene photo (none with a person of its own in it).
PEOPLE_SCENES = ("room", "china", "coffee", "chelsea", "motorcycle_right")
HELD_OUT_PEOPLE_SCENES = ("rocket", "flower", "clock_motion")
SMALL_TYPES = {"Watches", "Sunglasses", "Earrings", "Ring", "Bracelet", "Necklace and Chains", "Pendant",
               "Jewellery Set", "Cufflinks"}
KINDS = ("flatlay", "busy", "small", "people", "screenshot")


def catalogue_sample(n: int, seed: int) -> list[Path]:
    files = sorted((DATASET / "images").glob("*.jpg"))
    rng = np.random.default_rng(seed)
    return [files[i] for i in sorted(rng.choice(len(files), n, replace=False))]


def split(names, held: tuple[str, ...], held_out: bool) -> list[str]:
    return [name for name in names if (name in held) == held_out]


def composites(files: list[Path], count: int, seed: int, held_out: bool) -> list[Composite]:
    rng = np.random.default_rng(seed)
    products = [(f.stem, cut) for f in files if (cut := product_cutout(f)) is not None]
    surfaces = split(SURFACES, HELD_OUT_SURFACES, held_out)
    scenes = split(SCENES, HELD_OUT_SCENES, held_out)
    made = []
    for i in range(count):
        chosen = [products[j] for j in rng.choice(len(products), int(rng.integers(2, 4)), replace=False)]
        size = (1280, 960) if i % 2 == 0 else (960, 1280)
        made.append(flatlay(chosen, rng, size, surface=surfaces[i % len(surfaces)]))
    for i in range(count):
        size = (960, 1280) if i % 2 == 0 else (1280, 960)
        made.append(busy(products[rng.integers(len(products))], rng, size, scene=scenes[i % len(scenes)]))
    types = {row["id"]: row.get("articleType", "") for row in csv_rows()}
    smalls = [p for p in products if types.get(p[0]) in SMALL_TYPES]
    for _ in range(count if smalls else 0):
        made.append(small([smalls[j] for j in rng.choice(len(smalls), int(rng.integers(1, 3)), replace=False)], rng))
    shots = model_shots(files)
    people_scenes = HELD_OUT_PEOPLE_SCENES if held_out else PEOPLE_SCENES
    for i in range(count if shots else 0):
        made.append(worn(shots[rng.integers(len(shots))], rng, scene=people_scenes[i % len(people_scenes)]))
    photos = [(f.stem, Image.open(f).convert("RGB")) for f in files[:400]]
    themes = HELD_OUT_THEMES if held_out else TUNING_THEMES
    for i in range(count):
        chosen = [photos[j] for j in rng.choice(len(photos), 4, replace=False)]
        shot = screenshot(chosen, rng, ("shop", "social")[i % 2], themes[i % len(themes)])
        mask = np.zeros(shot.image.size[::-1], bool)
        mask[shot.box[1]:shot.box[3], shot.box[0]:shot.box[2]] = True
        made.append(Composite(shot.image, "screenshot", f"{shot.kind}-{shot.theme}", [Placed(shot.id, shot.box, mask)]))
    return made


def csv_rows() -> list[dict]:
    import csv

    with open(DATASET / "styles.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def model_shots(files: list[Path]) -> list[tuple[str, Image.Image]]:
    """Catalogue photos of a person wearing the product (the people model finds one in the catalogue photo
    itself), cut out of their white background."""
    from indexing.finder.people import SURE, PeopleModel
    from indexing.finder.people_models import models_dir

    model = PeopleModel(models_dir())
    shots = []
    for f in files:
        photo = Image.open(f).convert("RGB")
        if model.find(photo, min_score=SURE) and (cut := product_cutout(f)) is not None:
            shots.append((f.stem, cut))
    return shots


def truth_item(placed, kind: str) -> Item:
    """The ground truth as the finder would offer it: the product cut out on white, or the screenshot's photo."""
    return Item(placed.box, placed.mask.astype(np.float32), kind="photo" if kind == "screenshot" else "item")


def own_in_top5(index: Index, embedder, pixels: list[np.ndarray], owners: list[str]) -> list[bool]:
    if not pixels:
        return []
    results = index.search_many(embedder.embed(np.stack(pixels)), 5)
    return [any(index.same_photo(owner, h.id) for h in hits) for owner, hits in zip(owners, results, strict=True)]


@dataclass
class Tally:
    """One kind of photo's counts, added up photo by photo."""

    photos: int = 0
    products: int = 0
    found: int = 0
    first_right: int = 0
    searched: int = 0
    nested: int = 0
    seconds: list[float] = field(default_factory=list)
    fits: list[tuple[float, float]] = field(default_factory=list)
    by_background: dict[str, list[bool]] = field(default_factory=dict)
    top5: dict[str, list[bool]] = field(default_factory=lambda: {
        "first album": [], "offered item": [], "whole photo": [], "ground-truth cut-out": []})

    def row(self, searched_index: bool) -> dict:
        n = max(self.photos, 1)
        return {
            "photos": self.photos,
            "products": self.products,
            "found": round(self.found / max(self.products, 1), 3),
            "first_right": round(self.first_right / max(self.searched, 1), 3),
            "first_right_of_all_photos": round(self.first_right / n, 3),
            "searched_an_item": round(self.searched / n, 3),
            "photos_with_nested_boxes": self.nested,
            "finder_ms_p50": round(float(np.median(self.seconds)) * 1000, 1) if self.seconds else None,
            "mask_iou_median": round(float(np.median([f[0] for f in self.fits])), 3) if self.fits else None,
            "mask_surface_taken_median": round(float(np.median([f[1] for f in self.fits])), 4) if self.fits else None,
            "found_by_background": {k: f"{sum(v)}/{len(v)}" for k, v in sorted(self.by_background.items())},
            **({f"top5_{name.replace(' ', '_').replace('-', '_')}": round(float(np.mean(v)), 3) if v else None
                for name, v in self.top5.items()} if searched_index else {}),
        }


def nested(items: list[Item]) -> bool:
    """An item's box inside another's, where neither is part of a person (a person's garments are, on purpose)."""
    boxes = [item.box for item in items if item.cue != "person"]
    return any(i != j and box_overlap(a, b) >= 0.9 * box_area(a) for i, a in enumerate(boxes)
               for j, b in enumerate(boxes))


def score(composite: Composite, finder: ItemFinder, index: Index | None, embedder, tally: Tally) -> None:
    started = time.perf_counter()
    finding = offered(finder, composite.image)
    tally.seconds.append(time.perf_counter() - started)
    tally.photos += 1
    tally.nested += nested(finding.items)
    boxes = [item.box for item in finding.items]
    if finding.searched is not None:
        tally.searched += 1
        tally.first_right += any(box_iou(boxes[finding.searched], p.box) >= 0.5 for p in composite.placed)
    cutouts, truth, owners = [], [], []
    for placed in composite.placed:
        tally.products += 1
        scores = [box_iou(box, placed.box) for box in boxes]
        best = int(np.argmax(scores)) if scores else -1
        hit = best >= 0 and scores[best] >= 0.5
        tally.found += hit
        tally.by_background.setdefault(composite.background, []).append(bool(hit))
        refined = finder.refine(composite.image, finding, best) if hit else None
        if refined is not None and composite.kind != "screenshot":
            tally.fits.append(mask_fit(refined.mask, placed.mask))
        owners.append(placed.id)
        truth.append(item_pixels(composite.image, truth_item(placed, composite.kind)))
        cutouts.append(item_pixels(composite.image, refined) if refined is not None else None)
    if index is None:
        return
    whole = load_image(encode(composite.image))
    first = whole if finding.searched is None else item_pixels(
        composite.image, finder.refine(composite.image, finding, finding.searched))
    first_hits = index.search_many(embedder.embed(first[None]), 5)[0]
    tally.top5["first album"].append(any(index.same_photo(o, h.id) for o in owners for h in first_hits))
    tally.top5["ground-truth cut-out"] += own_in_top5(index, embedder, truth, owners)
    hits = iter(own_in_top5(index, embedder, [p for p in cutouts if p is not None],
                            [o for o, p in zip(owners, cutouts, strict=True) if p is not None]))
    tally.top5["offered item"] += [next(hits) if p is not None else False for p in cutouts]
    whole_hits = index.search_many(embedder.embed(whole[None]), 5)[0]
    tally.top5["whole photo"] += [any(index.same_photo(o, h.id) for h in whole_hits) for o in owners]


def evaluate(photos: list[Composite], index: Index | None, embedder, finder: ItemFinder) -> dict:
    tallies = {kind: Tally() for kind in KINDS}
    for composite in photos:
        score(composite, finder, index, embedder, tallies[composite.kind])
    return {kind: tally.row(index is not None) for kind, tally in tallies.items() if tally.photos}


def packshots(limit: int, finder: ItemFinder) -> dict:
    """Catalogue renditions must pass through unchanged: the finder calls them packshots."""
    files = sorted((DATASET / "queries-224").glob("*.jpg"))[:limit]
    catalogue = sorted((DATASET / "images").glob("*.jpg"))[:: max(1, 44_000 // limit)][:limit]
    passed = sum(finder.find(Image.open(f).convert("RGB")).packshot for f in files)
    own = sum(finder.find(Image.open(f).convert("RGB")).packshot for f in catalogue)
    return {"queries_224": len(files), "queries_224_passed_through": passed,
            "catalogue_photos": len(catalogue), "catalogue_passed_through": own}


def run(argv: Sequence[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks items", description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--photos", type=int, default=100, help="photos of each kind")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--held-out", action="store_true", help="only backgrounds never used for tuning")
    parser.add_argument("--no-search", action="store_true", help="finder figures only, no index")
    parser.add_argument("--index", help="reuse an index of the same products built earlier (a folder)")
    parser.add_argument("--finder", choices=FINDERS, default="auto",
                        help="scda: the model's activation map picks the item (needs an index; ImageNet weights)")
    parser.add_argument("--real", action="store_true",
                        help="real photos instead (shared/datasets/real-photos): garments at home and people")
    args = parser.parse_args(argv)
    if args.real:
        if args.finder == "scda":
            parser.error("--real runs the finder alone, without an index: --finder scda needs the index's model")
        from benchmarks.real_photos import run_real

        return run_real(args.finder)
    if args.finder == "scda" and args.no_search:
        parser.error(f"--finder {args.finder} runs the model: it needs the index, not --no-search")
    files = catalogue_sample(args.products, seed=0)
    photos = composites(files, args.photos, args.seed, args.held_out)
    index = embedder = None
    tmp = tempfile.TemporaryDirectory()
    if not args.no_search:
        folder = Path(args.index or Path(tmp.name) / "idx")
        if not (folder / "manifest.json").exists():
            images = Path(tmp.name) / "images"
            images.mkdir()
            for f in files:
                (images / f.name).symlink_to(f)
            keras = KerasEmbedder(Weights("random", 0))
            build_index([images], folder, embedder=keras, metadata=DATASET / "styles.csv",
                        options=BuildOptions(export=False, progress=True))
            export_extractor(folder, keras)
        index = Index.load(folder)
        embedder = open_embedder(index)
    manifest = index.manifest if index is not None else {"people": measure_people(files)}
    finder = open_finder(args.finder, embedder, manifest)
    results = {"products_in_index": args.products, "seed": args.seed, "held_out": args.held_out,
               "finder": args.finder, "catalogue_people": manifest.get("people"),
               "kinds": evaluate(photos, index, embedder, finder),
               "packshots": packshots(500, finder)}
    name = "items" + ("-held-out" if args.held_out else "") + ("" if args.finder == "auto" else f"-{args.finder}")
    if args.no_search:  # finder figures only: shown, not kept as the results
        print(json.dumps(results, indent=2))
        return {}
    return {name: results}
