"""SCDA: the extractor's own activation map, exported with the model, picks the item to search first."""

from __future__ import annotations

import json

import numpy as np
import pytest

from indexing import Index, open_embedder
from indexing.cli import main
from indexing.errors import FashionIndexError
from indexing.finder.background import BorderFinder
from indexing.finder.finders import open_finder
from indexing.finder.items import box_iou
from indexing.finder.scda import GRID, ScdaFinder, inside, region_in_photo, scda_region
from testbed.composites import flatlay
from tests.test_items import generated_flatlay, generated_products


def grid_over(box: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """A 7x7 map that is hot over box, as the padded square lays the photo out."""
    w, h = size
    side = max(w, h)
    cell = side / GRID
    ox, oy = (side - w) / 2, (side - h) / 2
    hot = np.zeros((GRID, GRID), np.float32)
    x0, y0, x1, y1 = box
    rows = slice(int((y0 + oy) // cell), int(np.ceil((y1 + oy) / cell)))
    hot[rows, int((x0 + ox) // cell): int(np.ceil((x1 + ox) / cell))] = 9
    return hot + np.random.default_rng(0).uniform(0, 1, hot.shape).astype(np.float32)


class Marks:
    """An extractor whose activation map marks a chosen box (what ImageNet weights would do for a garment)."""

    runtime = "stub"

    def __init__(self, box: tuple[int, int, int, int], size: tuple[int, int]):
        self.map = grid_over(box, size)

    def activation_maps(self, images: np.ndarray) -> np.ndarray:
        return np.repeat(self.map[None], len(images), 0)


def test_region_is_the_largest_connected_part_above_the_mean():
    activation = np.zeros((GRID, GRID))
    activation[1:4, 1:4] = 5  # 9 cells
    activation[5:7, 5:7] = 8  # 4 cells, hotter but smaller
    region = scda_region(activation)
    assert region.sum() == 9 and region[1:4, 1:4].all()
    assert not scda_region(np.ones((GRID, GRID))).any()  # a flat map marks nothing


def test_region_maps_to_the_photo_through_the_white_padding():
    size = (960, 1280)  # portrait: padded left and right
    region = np.zeros((GRID, GRID), bool)
    region[2:5, 3] = True  # the centre column, rows 2-4
    box, mask = region_in_photo(region, size)
    cell = 1280 / GRID
    assert abs((box[0] + box[2]) / 2 - 480) < cell / 2  # centred on the photo, not on the square
    assert abs(box[1] - 2 * cell) < cell / 2 and abs(box[3] - 5 * cell) < cell / 2
    assert mask.shape[1] / mask.shape[0] == pytest.approx(960 / 1280, rel=0.02)


def test_scda_chooses_which_found_item_is_searched_first():
    composite = generated_flatlay()
    border = BorderFinder().find(composite.image)
    assert border.searched == 0 and len(border.items) >= 2
    other = border.items[1]  # the border finder ranks it second; the map marks it
    finding = ScdaFinder(Marks(other.box, composite.image.size)).find(composite.image)
    assert finding.searched == 0 and finding.items[0].box == other.box
    assert {item.box for item in finding.items} == {item.box for item in border.items}


def test_scda_offers_its_own_region_where_the_surface_finds_nothing_there():
    composite = flatlay(generated_products()[:1], np.random.default_rng(4), surface="plain")
    w, h = composite.image.size
    empty_corner = (0, 0, w // 4, h // 4)
    assert all(box_iou(item.box, empty_corner) < 0.5 for item in BorderFinder().find(composite.image).items)
    finding = ScdaFinder(Marks(empty_corner, (w, h))).find(composite.image)
    first = finding.items[0]
    assert first.cue == "scda" and finding.searched == 0
    # A 7x7 grid over the padded square is coarse: the region holds the corner, and stays in its quarter-ish.
    assert inside(empty_corner, first.box) > 0.95 and first.box[2] < w / 2 and first.box[3] < h / 2


def test_exported_map_equals_tensorflow_and_drives_query_items(exported_index, embedder, tmp_path, capsys):
    served = open_embedder(Index.load(exported_index))
    photos = np.random.default_rng(1).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    ours, reference = served.activation_maps(photos), embedder.activation_maps(photos)
    assert ours.shape == (2, GRID, GRID)
    assert np.max(np.abs(ours - reference)) / np.max(np.abs(reference)) < 1e-4
    composite = generated_flatlay()
    photo = tmp_path / "flatlay.jpg"
    composite.image.save(photo, quality=92)
    assert main(["query", "--index", str(exported_index), str(photo), "--items", "--finder", "scda", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # Random weights mark noise, so which item goes first is not asserted; that one is searched and listed is.
    assert out["searched"] in (0, None) and all(len(item["hits"]) == 5 for item in out["items"])
    w, h = composite.image.size
    assert all(0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h for x0, y0, x1, y1 in (i["box"] for i in out["items"]))


def test_an_extractor_without_the_map_is_refused_at_once():
    class Plain:
        runtime = "stub"

    with pytest.raises(FashionIndexError, match="activation map"):
        open_finder("scda", Plain())
    with pytest.raises(FashionIndexError, match="choose one of auto, border, scda"):
        open_finder("magic", Plain())
