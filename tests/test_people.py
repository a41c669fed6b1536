"""People in photos: MediaPipe's pose models find the person; the outfit and its garments become items."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from indexing.cli import main
from indexing.errors import FashionIndexError
from indexing.extract.images import open_photo
from indexing.finder.background import BorderFinder
from indexing.finder.finders import open_finder, outfit_first
from indexing.finder.items import box_iou
from indexing.finder.people import PeopleModel, person_box
from indexing.finder.people_finder import PeopleFinder, part_of
from indexing.finder.people_models import models_dir
from indexing.sources.catalogue_people import measure_people
from testbed.composites import flatlay, product_cutout, sample_photo, worn
from tests.test_items import generated_flatlay, generated_products, jpeg

DATASET = Path(os.environ.get("FASHION_DATASET", Path(__file__).resolve().parents[2] / "shared/datasets/fashion-small"))
MODEL_SHOTS = ("13886", "3088", "2334", "23035", "12947", "6128", "4844", "33555")  # men and women, head to thigh


@pytest.fixture(scope="session")
def people() -> PeopleModel:
    return PeopleModel(models_dir())


def model_shot(pid: str) -> tuple[str, Image.Image]:
    return pid, product_cutout(DATASET / "images" / f"{pid}.jpg")


def test_the_person_in_a_portrait_is_found_with_body_points_and_a_mask(people):
    astronaut = sample_photo("astronaut")  # scikit-image's portrait of Eileen Collins
    found = people.find(astronaut)
    assert len(found) == 1
    person = found[0]
    assert box_iou(person.box, (0, 10, 370, 512)) >= 0.8
    assert person.seen((11, 12), astronaut.size) and not person.seen((27, 28), astronaut.size)
    assert 0.3 < (person.mask > 0.5).mean() < 0.8  # her, not the whole frame


def test_a_portrait_offers_the_outfit_and_the_top_and_the_catalogue_decides_which_goes_first(people):
    astronaut = sample_photo("astronaut")
    worn_catalogue = PeopleFinder(BorderFinder(), people, outfit_first=True).find(astronaut)
    packshot_catalogue = PeopleFinder(BorderFinder(), people, outfit_first=False).find(astronaut)
    assert [item.kind for item in worn_catalogue.items][:2] == ["outfit", "top"]
    assert worn_catalogue.searched == 0 and packshot_catalogue.searched == 1
    top = worn_catalogue.items[1]
    assert top.box[1] > worn_catalogue.items[0].box[1] + 100  # below the head


def test_a_photo_without_people_keeps_the_surface_finders_items(people):
    composite = generated_flatlay()
    border = BorderFinder().find(composite.image)
    both = PeopleFinder(BorderFinder(), people, outfit_first=True).find(composite.image)
    assert [item.box for item in both.items] == [item.box for item in border.items]
    assert both.searched == border.searched and {item.kind for item in both.items} == {"item"}


def test_a_packshot_never_runs_the_people_model(catalogue):
    class Counting:
        calls = 0

        def find(self, *args):
            Counting.calls += 1
            return []

    image, size = open_photo((catalogue[0] / "1003.jpg").read_bytes())
    finding = PeopleFinder(BorderFinder(), Counting(), outfit_first=True).find(image, size)
    assert finding.packshot and Counting.calls == 0


@pytest.mark.skipif(not DATASET.is_dir(), reason="the fashion-small dataset is not here")
@pytest.mark.parametrize("scene", ["room", "rocket"])
def test_a_catalogue_model_shot_standing_in_a_scene_is_searched_as_the_person(people, scene):
    finder = PeopleFinder(BorderFinder(), people, outfit_first=True)
    hits = 0
    for seed, pid in enumerate(MODEL_SHOTS):
        composite = worn(model_shot(pid), np.random.default_rng(seed), scene=scene)
        photo, truth = composite.image, composite.placed[0].box
        finding = finder.find(photo)
        first = finding.items[finding.searched] if finding.searched is not None else None
        if first is None or first.kind != "outfit":
            continue
        hits += box_iou(first.box, truth) >= 0.5
        assert not any(part_of(item, first.mask) for item in finding.items if item.cue != "person"), \
            "a part of the person offered as an item"
    assert hits >= len(MODEL_SHOTS) - 1


@pytest.mark.skipif(not DATASET.is_dir(), reason="the fashion-small dataset is not here")
def test_a_model_shot_on_a_quiet_surface_ends_where_the_photo_does_not_where_the_legs_would(people):
    """A model shot cut at the thighs, laid on brick: the pose model carries the legs on over the bricks, the
    surface says nothing is there. Before: the outfit's box took in the imagined legs (IoU 0.59-0.76)."""
    finder = PeopleFinder(BorderFinder(), people, outfit_first=True)
    for seed, pid in enumerate(MODEL_SHOTS):
        composite = flatlay([model_shot(pid)], np.random.default_rng(seed), surface="brick")
        finding = finder.find(composite.image)
        outfit = finding.items[finding.searched]
        assert outfit.kind == "outfit" and box_iou(outfit.box, composite.placed[0].box) >= 0.85, pid


def test_the_outfits_box_ends_where_the_person_does_not_in_the_masks_soft_spill():
    """The mask's soft edge runs on into the floor below the feet: the box (and so the catalogue frame the
    outfit is cut into) is the person's own."""
    mask = np.zeros((320, 240), np.float32)
    mask[40:250, 80:160] = 1.0  # the person
    mask[250:310, 60:180] = 0.7  # a shadow on the floor, half believed
    assert person_box(mask, (960, 1280)) == (320, 160, 640, 1000)
    assert person_box(mask * 0.8, (960, 1280)) == (240, 160, 720, 1240)  # nothing sure: the mask as it is


def test_the_catalogue_share_of_model_shots_is_measured_and_decides(people, tmp_path):
    astronaut = sample_photo("astronaut")
    for i in range(3):
        astronaut.save(tmp_path / f"{i}.jpg")
    for i, (_, product) in enumerate(generated_products()):
        Image.alpha_composite(Image.new("RGBA", product.size, "white"), product).convert("RGB").save(
            tmp_path / f"p{i}.jpg")
    measured = measure_people(sorted(tmp_path.glob("*.jpg")), people)
    assert measured == {"share": 0.5, "sample": 6}
    assert outfit_first({"people": measured}) and not outfit_first({"people": {"share": 0.0}})
    assert not outfit_first({})  # an index from before: the garment first


def test_the_built_index_records_its_share_of_model_shots(built_index):
    manifest = json.loads((built_index / "manifest.json").read_text())
    assert manifest["people"]["share"] == 0.0 and manifest["people"]["sample"] > 0  # drawn products, no people


def test_missing_people_models_are_one_clear_error(tmp_path):
    with pytest.raises(FashionIndexError, match="fetch-models"):
        open_finder("auto", None, {}, tmp_path)


def test_query_items_json_names_the_outfit_and_the_top(exported_index, tmp_path, capsys):
    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(jpeg(sample_photo("astronaut")))
    sheet = tmp_path / "sheet.png"
    assert main(["query", "--index", str(exported_index), str(photo), "--items", "--json", "--sheet", str(sheet)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [item["kind"] for item in out["items"]][:2] == ["outfit", "top"]
    assert out["searched"] == 1  # the test catalogue is drawn packshots: the garment goes first
    assert Image.open(sheet).size[1] > 3 * 224


def test_photos_found_in_several_threads_at_once_get_their_own_people(people):
    from concurrent.futures import ThreadPoolExecutor

    photos = [sample_photo("astronaut").resize((s, s)) for s in (400, 512, 640, 700)] * 3
    alone = [[p.box for p in people.find(photo)] for photo in photos]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda photo: [p.box for p in people.find(photo)], photos))
    assert together == alone
