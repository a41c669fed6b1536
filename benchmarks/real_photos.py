"""The item finder on real photos (shared/datasets/real-photos): single garments photographed at home, and people in
the street, each split into a tuning part and a held-out part (every fourth photo) that no tuning looks at.

Garments at home: the searched box is the garment (IoU >= 0.5 with the box drawn for it, benchmarks/data), the
whole photo searched, the screenshot path taken. People: an item of the person (outfit, top, bottom, shoes)
searched first, and the stricter count of a first box that is the person's or one of their garments' (IoU >= 0.5);
each garment covering at least 5% of the photo offered as an item (IoU >= 0.5), by group. And the finder's time.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmarks.common import ROOT
from indexing.finder.finders import open_finder
from indexing.finder.items import Finding, ItemFinder, box_iou, offered

REAL = Path(os.environ.get("FASHION_REAL_PHOTOS", ROOT.parent / "shared" / "datasets" / "real-photos"))
BOXES = ROOT / "benchmarks" / "data" / "garment-boxes.json"
HELD_OUT_EVERY = 4  # photo numbers 3, 7, 11, ...: the held-out part
RIGHT = 0.5  # IoU that makes a box the garment's
VISIBLE = 0.05  # a person's garment counted: at least this share of the photo's pixels
GROUPS = ("top", "outer", "dress", "bottom", "legwear", "shoes", "bag")


def held_out(photo: str) -> bool:
    return int(Path(photo).stem) % HELD_OUT_EVERY == HELD_OUT_EVERY - 1


def timed_find(finder: ItemFinder, path: Path) -> tuple[Finding, float]:
    with Image.open(path) as image:
        photo = image.convert("RGB")
    started = time.perf_counter()
    finding = offered(finder, photo)
    return finding, time.perf_counter() - started


def share(flags: Iterable[bool]) -> dict[str, Any]:
    values = list(flags)
    return {"share": round(sum(values) / len(values), 3) if values else None, "of": len(values)}


def garment_rows(finder: ItemFinder, part: bool) -> list[dict[str, Any]]:
    labels = {entry["photo"]: entry["label"] for entry in json.loads((REAL / "garments.json").read_text())}
    rows = []
    for entry in json.loads(BOXES.read_text())["boxes"]:
        if held_out(entry["photo"]) != part:
            continue
        finding, seconds = timed_find(finder, REAL / entry["photo"])
        truth = tuple(entry["box"])
        ious = [box_iou(item.box, truth) for item in finding.items]
        searched = finding.searched
        rows.append({"photo": entry["photo"], "label": labels[entry["photo"]], "seconds": seconds,
                     "whole": searched is None, "screen": any(item.kind == "photo" for item in finding.items),
                     "right": searched is not None and ious[searched] >= RIGHT,
                     "offered": any(iou >= RIGHT for iou in ious),
                     "searched_box": list(finding.items[searched].box) if searched is not None else None})
    return rows


def garment_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_label = defaultdict(list)
    for row in rows:
        by_label[row["label"]].append(row["right"])
    return {"photos": len(rows), "searched_box_right": share(r["right"] for r in rows),
            "whole_photo_searched": share(r["whole"] for r in rows),
            "screenshot_path": share(r["screen"] for r in rows),
            "some_item_right": share(r["offered"] for r in rows),
            "right_by_class": {label: f"{sum(v)}/{len(v)}" for label, v in sorted(by_label.items())},
            "finder_ms": times(rows), "wrong": [r["photo"] for r in rows if not r["right"]]}


@functools.cache
def label_ids() -> dict[str, int]:
    """The pixel value of each label in the people's masks."""
    return {name: int(i) for i, name in json.loads((REAL / "people" / "masks" / "labels.json").read_text()).items()}


def visible_garments(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The photo's garments in the groups counted, each covering at least VISIBLE of the photo."""
    with Image.open(REAL / entry["mask"]) as png:
        mask = np.asarray(png)
    names = label_ids()
    kept = []
    for garment in entry["garments"]:
        if garment["group"] in GROUPS and (mask == names[garment["label"]]).mean() >= VISIBLE:
            kept.append(garment)
    return kept


def people_rows(finder: ItemFinder, part: bool) -> list[dict[str, Any]]:
    rows = []
    for entry in json.loads((REAL / "people.json").read_text()):
        if held_out(entry["photo"]) != part:
            continue
        finding, seconds = timed_find(finder, REAL / entry["photo"])
        truths = [tuple(entry["person_box"])] + [tuple(g["box"]) for g in entry["garments"]]
        first = finding.items[finding.searched] if finding.searched is not None else None
        garments = [{"group": g["group"], "offered": any(box_iou(item.box, tuple(g["box"])) >= RIGHT
                                                          for item in finding.items)}
                    for g in visible_garments(entry)]
        rows.append({"photo": entry["photo"], "seconds": seconds, "garments": garments,
                     "person_first": first is not None and first.cue == "person",
                     "first_right": first is not None and any(box_iou(first.box, t) >= RIGHT for t in truths),
                     "kinds": [item.kind for item in finding.items]})
    return rows


def people_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    garments = [g for row in rows for g in row["garments"]]
    by_group = {group: [g["offered"] for g in garments if g["group"] == group] for group in GROUPS}
    return {"photos": len(rows), "a_person_item_first": share(r["person_first"] for r in rows),
            "person_or_garment_first": share(r["first_right"] for r in rows),
            "garments_offered": share(g["offered"] for g in garments),
            "offered_by_group": {group: f"{sum(v)}/{len(v)}" for group, v in by_group.items() if v},
            "finder_ms": times(rows)}


def times(rows: list[dict[str, Any]]) -> dict[str, float]:
    ms = np.array([row["seconds"] for row in rows]) * 1000
    return {"p50": round(float(np.percentile(ms, 50)), 1), "p95": round(float(np.percentile(ms, 95)), 1)}


def evaluate(finder_name: str = "auto") -> dict[str, Any]:
    finder = open_finder(finder_name, None, {})
    results: dict[str, Any] = {"finder": finder_name, "held_out": f"every {HELD_OUT_EVERY}th photo (numbers 3, 7, ...)"}
    table = []
    for part, name in ((False, "tuning"), (True, "held_out")):
        garments, people = garment_summary(garment_rows(finder, part)), people_summary(people_rows(finder, part))
        results[name] = {"garments_at_home": garments, "people": people}
        table.append({"photos": f"garments at home, {name}", "count": garments["photos"],
                      "searched box right": garments["searched_box_right"]["share"],
                      "whole photo": garments["whole_photo_searched"]["share"],
                      "screenshot path": garments["screenshot_path"]["share"],
                      "finder ms p50/p95": f"{garments['finder_ms']['p50']} / {garments['finder_ms']['p95']}"})
        table.append({"photos": f"people, {name}", "count": people["photos"],
                      "a person's item first": people["a_person_item_first"]["share"],
                      "person or garment box first": people["person_or_garment_first"]["share"],
                      "garments offered": people["garments_offered"]["share"],
                      "by group": ", ".join(f"{g} {v}" for g, v in people["offered_by_group"].items()),
                      "finder ms p50/p95": f"{people['finder_ms']['p50']} / {people['finder_ms']['p95']}"})
    return {**results, "rows": table}


def run_real(finder_name: str) -> dict[str, Any]:
    if not (REAL / "garments.json").is_file():
        raise SystemExit(f"the real photos are not at {REAL} (set FASHION_REAL_PHOTOS)")
    return {"items-real": evaluate(finder_name)}
