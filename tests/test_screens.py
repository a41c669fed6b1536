"""Screenshots: the product's picture is found and searched first; text, buttons and bars are never items."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from indexing.cli import main
from indexing.extract.images import fit_square
from indexing.finder.background import BorderFinder
from indexing.finder.items import box_iou, item_pixels
from indexing.finder.screens import ScreenFinder
from testbed.composites import flatlay
from testbed.drawing import draw_product
from testbed.screenshots import THEMES, screenshot
from tests.test_items import generated_products, jpeg


def products(seed: int) -> list[tuple[str, Image.Image]]:
    shapes = ["Tshirts", "Jeans", "Shoes", "Tshirts"]
    colours = ["Red", "Blue", "Green", "Black", "Yellow", "White"]
    rng = np.random.default_rng(seed)
    return [(str(2000 + i), draw_product(colours[rng.integers(len(colours))], shape, (120, 160), seed + i))
            for i, shape in enumerate(shapes)]


@pytest.mark.parametrize("theme", sorted(THEMES))
@pytest.mark.parametrize("kind", ["shop", "social"])
def test_the_product_photo_of_a_screenshot_is_searched_first(kind, theme):
    finder = ScreenFinder(BorderFinder())
    for seed in range(4):
        shot = screenshot(products(seed), np.random.default_rng(seed), kind, theme)
        finding = finder.find(shot.image)
        assert finding.searched == 0 and {item.kind for item in finding.items} == {"photo"}
        assert box_iou(finding.items[0].box, shot.box) >= 0.5, f"{kind} {theme} seed {seed}"


@pytest.mark.parametrize("kind", ["shop", "social"])
def test_a_photo_shown_on_its_own_fill_is_cut_exactly_on_a_black_page_or_a_tinted_card(kind):
    """On an OLED-black page a full-width photo's white covers more of the screen than the page does, and a
    post's avatar row may touch its card: the photo is still cut along its own edges, not the silhouette or
    the card."""
    finder = ScreenFinder(BorderFinder())
    for theme in ("black", "mist"):
        for seed in range(4):
            shot = screenshot(products(seed), np.random.default_rng(seed), kind, theme)
            assert box_iou(finder.find(shot.image).items[0].box, shot.box) >= 0.95, f"{kind} {theme} seed {seed}"


def test_the_shop_pages_row_of_other_products_comes_after_the_product_and_nothing_else_is_offered():
    shot = screenshot(products(1), np.random.default_rng(1), "shop", "light")
    items = ScreenFinder(BorderFinder()).find(shot.image).items
    main_photo, *others = [item.box for item in items]
    assert box_iou(main_photo, shot.box) >= 0.5
    below = shot.box[3] + 0.2 * shot.image.height  # past the title, price, button and description
    assert others and all(box[1] > below for box in others)  # only the thumbnails: never text or the button
    assert all((box[3] - box[1]) < 0.5 * (main_photo[3] - main_photo[1]) for box in others)


def test_the_photo_found_is_searched_as_the_picture_cut_from_the_screenshot():
    shot = screenshot(products(2), np.random.default_rng(2), "social", "light")
    item = ScreenFinder(BorderFinder()).find(shot.image).items[0]
    assert np.array_equal(item_pixels(shot.image, item), np.asarray(fit_square(shot.image.crop(item.box))))


@pytest.mark.parametrize("size", [(1280, 960), (960, 1280), (600, 1300)])
def test_photos_that_are_not_screenshots_go_to_the_surface_finder(size):
    composite = flatlay(generated_products(), np.random.default_rng(3), size=size, surface="carpet")
    screen = ScreenFinder(BorderFinder()).find(composite.image)
    border = BorderFinder().find(composite.image)
    assert [item.box for item in screen.items] == [item.box for item in border.items]


def test_query_items_json_gives_the_screenshots_photos_as_kind_photo(exported_index, tmp_path, capsys):
    shot = screenshot(products(3), np.random.default_rng(3), "shop", "light")
    photo = tmp_path / "screenshot.jpg"
    photo.write_bytes(jpeg(shot.image))
    assert main(["query", "--index", str(exported_index), str(photo), "--items", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["searched"] == 0 and out["items"][0]["kind"] == "photo"
    assert box_iou(out["items"][0]["box"], shot.box) >= 0.5


def test_a_tall_phone_photo_of_a_shirt_on_a_white_wall_is_not_taken_for_a_screenshot():
    """As flat as a screen after JPEG, status bar and all, but its light drifts across it: no page colour."""
    rng = np.random.default_rng(4)
    h, w = 1280, 720
    ys, xs = np.mgrid[0:h, 0:w]
    # A lamp up and to the left: no colour covers more than 6% of the wall (0.03-0.08 on real ones)
    light = (1 - 0.6 * np.hypot((xs - 0.3 * w) / w, (ys - 0.2 * h) / h))[..., None]
    wall = np.array([238, 236, 230], np.float32) * light + rng.normal(0, 0.6, (h, w, 3))
    wall[300:1000, 160:560] = np.array([150, 40, 45], np.float32) * light[300:1000, 160:560]  # the shirt
    photo = Image.open(io.BytesIO(jpeg(Image.fromarray(wall.clip(0, 255).astype(np.uint8)))))
    finding = ScreenFinder(BorderFinder()).find(photo.convert("RGB"))
    assert all(item.kind != "photo" for item in finding.items)
    assert finding.searched is not None and box_iou(finding.items[finding.searched].box, (160, 300, 560, 1000)) >= 0.8
