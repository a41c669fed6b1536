"""A garment that fills the frame is cut out on white; a bare surface gives no item; real garments at home too."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from benchmarks.real_photos import BOXES, REAL
from indexing.finder.background import BorderFinder
from indexing.finder.items import box_iou, offered
from testbed.composites import SURFACES, finish, paste, transformed
from tests.test_items import generated_products


def garment_filling_the_frame(surface: str, seed: int) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """A drawn shirt photographed close, on a bed or a floor: it covers most of the frame and runs off two sides.
    The shirt is laid on a wider stretch of the surface, and the photo is the middle of it."""
    rng = np.random.default_rng(seed)
    w, h, margin = 900, 1200, 400
    canvas = SURFACES[surface]((w + 2 * margin, h + 2 * margin), rng).astype(np.float32)
    shirt = transformed(generated_products()[0][1], 1350, rng)
    x, y = margin + (w - shirt.width) // 2, margin + (h - shirt.height) // 2 + 80
    mask = paste(canvas, shirt, x, y)[margin:margin + h, margin:margin + w]
    ys, xs = np.nonzero(mask)
    return finish(canvas[margin:margin + h, margin:margin + w], rng), (int(xs.min()), int(ys.min()),
                                                                      int(xs.max()) + 1, int(ys.max()) + 1)


@pytest.mark.parametrize("surface", ["plain", "wood", "carpet", "linen"])
def test_a_garment_running_off_the_frame_is_cut_out_not_searched_whole(surface):
    photo, truth = garment_filling_the_frame(surface, 5)
    assert (truth[0] == 0 or truth[2] == 900) and (truth[3] - truth[1]) * (truth[2] - truth[0]) > 0.4 * 900 * 1200
    finding = offered(BorderFinder(), photo)
    assert finding.searched is not None
    assert box_iou(finding.items[finding.searched].box, truth) >= 0.7


@pytest.mark.parametrize("surface", ["plain", "wood", "carpet", "linen", "tiles", "terrazzo"])
def test_a_bare_bed_or_floor_gives_no_item(surface):
    rng = np.random.default_rng(2)
    photo = finish(SURFACES[surface]((960, 1280), rng).astype(np.float32), rng)
    assert offered(BorderFinder(), photo).searched is None


def test_real_garments_at_home_are_cut_out_where_the_box_drawn_for_them_is():
    """Six tuning photos (never a held-out one) that the border alone searched whole: each garment covers 45-80% of
    the frame and touches its border."""
    if not (REAL / "garments.json").is_file():
        pytest.skip(f"the real photos are not at {REAL} (set FASHION_REAL_PHOTOS)")
    boxes = {row["photo"]: tuple(row["box"]) for row in json.loads(BOXES.read_text())["boxes"]}
    for name in ("012", "020", "022", "033", "050", "104"):
        with Image.open(REAL / "garments" / f"{name}.jpg") as image:
            finding = offered(BorderFinder(), image.convert("RGB"))
        assert finding.searched is not None, name
        assert box_iou(finding.items[finding.searched].box, boxes[f"garments/{name}.jpg"]) >= 0.5, name


def test_query_items_json_says_why_a_bare_floor_is_searched_whole(exported_index, tmp_path, capsys):
    from indexing.cli import main

    rng = np.random.default_rng(2)
    finish(SURFACES["wood"]((960, 1280), rng).astype(np.float32), rng).save(tmp_path / "floor.jpg", quality=90)
    assert main(["query", "--index", str(exported_index), str(tmp_path / "floor.jpg"), "--items", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["searched"] is None and out["whole_photo_first"] == "nothing stands out" and len(out["whole"]) == 5
