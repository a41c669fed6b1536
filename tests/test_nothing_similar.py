""""Nothing similar": the catalogue's own nearest-neighbour distances recorded at build, `fashion-index calibrate`
choosing a cut-off from photos of both kinds, and the bot saying so past it (with the nearest still one tap away)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from skimage import data as skimage_data

from indexing import Index, open_embedder
from indexing.extract.images import load_image
from indexing.finder.background import BorderFinder
from indexing.finder.first_cut import first_picture
from indexing.nearness import choose, judge
from indexing.store.files import read_manifest, update_manifest
from tests.test_bot import jpeg

USER = 6262
SKIMAGE = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "horse", "moon")


def other_photos(folder: Path) -> Path:
    """Photos that are not fashion: the samples scikit-image and scikit-learn ship."""
    from sklearn.datasets import load_sample_images  # here, not at collection: it takes a second to import

    folder.mkdir(parents=True, exist_ok=True)
    for name in SKIMAGE:
        Image.fromarray(getattr(skimage_data, name)()).convert("RGB").save(folder / f"{name}.jpg")
    for n, picture in enumerate(load_sample_images().images):
        Image.fromarray(picture).save(folder / f"sklearn-{n}.jpg")
    return folder


def renditions(catalogue_images: Path, folder: Path, count: int = 12) -> Path:
    """Catalogue products photographed again: turned, mirrored, enlarged and recompressed."""
    folder.mkdir(parents=True, exist_ok=True)
    for n, path in enumerate(sorted(catalogue_images.glob("*.jpg"))[:count]):
        image = Image.open(path).convert("RGB")
        image = ImageOps.mirror(image) if n % 2 else image.rotate(4, expand=True, fillcolor=(255, 255, 255))
        image.resize((image.width * 3, image.height * 3)).save(folder / path.name, quality=70)
    return folder


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "indexing", *args], capture_output=True, text=True, timeout=600)


def test_a_build_records_the_catalogues_nearest_neighbour_distances(built_index):
    neighbours = read_manifest(built_index)["neighbours"]
    assert neighbours["sample"] == 24  # every product of the small catalogue
    values = [neighbours["percentiles"][p] for p in ("1", "5", "10", "25", "50", "75", "90", "95", "99")]
    assert values == sorted(values) and values[0] >= 0 and values[-1] <= 2  # unit vectors: at most 2 apart


def test_the_chosen_cutoff_is_the_one_that_sorts_the_photos_best():
    near = np.array([0.05, 0.1, 0.12, 0.3])
    far = np.array([0.25, 0.4, 0.5])
    chosen = choose(near, far)
    assert 0.3 <= chosen.cutoff < 0.4 and chosen.precision == 1.0 and chosen.recall == pytest.approx(2 / 3)
    # 0.2 would catch every photo that is not fashion, but turn away a shopper's real garment for it: the
    # chosen cut-off weighs precision over recall.
    worse = judge(0.2, near, far)
    assert worse.recall == 1.0 and worse.answered == 0.75 and worse.f_half < chosen.f_half


def test_calibrate_prints_the_table_and_stores_the_cutoff(exported_index, catalogue, tmp_path):
    index_copy = tmp_path / "idx"  # exported, as `fashion-index build` leaves it: calibrate runs ONNX Runtime
    shutil.copytree(exported_index, index_copy)
    queries = renditions(catalogue[0], tmp_path / "queries")
    others = other_photos(tmp_path / "others")
    done = cli("calibrate", "--index", str(index_copy), "--queries", str(queries), "--others", str(others),
               "--finder", "border", "--quiet", "--json", str(tmp_path / "calibration.json"))
    assert done.returncode == 0, done.stderr
    assert "precision" in done.stdout and "← chosen" in done.stdout and "random weights" in done.stdout
    stored = read_manifest(index_copy)["calibration"]
    figures = json.loads((tmp_path / "calibration.json").read_text())
    assert stored["cutoff"] == figures["cutoff"] and stored["queries"] == 12 and stored["others"] == 10
    # The stored figures are those of the photos' distances as the bot measures them: recompute them here.
    index = Index.load(index_copy)
    embedder = open_embedder(index)

    def best(folder: Path) -> np.ndarray:
        pictures = np.stack([first_picture(BorderFinder(), p.read_bytes()) for p in sorted(folder.iterdir())])
        return np.array([hits[0].distance for hits in index.search_many(embedder.embed(pictures), 1)])

    again = judge(stored["cutoff"], best(queries), best(others))
    assert (again.precision, again.recall, again.answered) == pytest.approx(
        (stored["precision"], stored["recall"], stored["answered"]), abs=1e-3)

    few = {}  # a cut-off given is stored as given: two photos of each kind do
    for kind, folder in (("queries", queries), ("others", others)):
        few[kind] = tmp_path / f"few-{kind}"
        few[kind].mkdir()
        for photo in sorted(folder.iterdir())[:2]:
            shutil.copy(photo, few[kind])
    fixed = cli("calibrate", "--index", str(index_copy), "--queries", str(few["queries"]), "--others",
                str(few["others"]), "--finder", "border", "--quiet", "--cutoff", "0.5")
    assert fixed.returncode == 0 and read_manifest(index_copy)["calibration"]["cutoff"] == 0.5


def test_calibrate_without_photos_of_one_kind_says_so(index_copy, tmp_path):
    (tmp_path / "empty").mkdir()
    done = cli("calibrate", "--index", str(index_copy), "--queries", str(tmp_path / "empty"),
               "--others", str(tmp_path / "empty"), "--quiet")
    assert done.returncode == 1 and done.stderr.startswith("fashion-index: error: no images in")
    assert "calibration" not in read_manifest(index_copy)


def test_a_photo_past_the_cutoff_gets_nothing_similar_and_the_nearest_on_a_tap(fake, start_bot, exported_index,
                                                                               tmp_path, embedder, catalogue):
    index_dir = tmp_path / "served"
    shutil.copytree(exported_index, index_dir)
    bot = start_bot(index_dir=index_dir, reload_seconds=1)
    astronaut = jpeg(Image.fromarray(skimage_data.astronaut()))
    fake.send_photo(USER, astronaut, width=512, height=512)
    assert len(fake.wait_for("sendMediaGroup", chat_id=USER)[0].album()) == 5  # not calibrated: as ever

    # Calibrated while the bot runs: a cut-off between a catalogue photo's distance (0) and the astronaut's.
    far = Index.load(index_dir).search(embedder.embed(load_image(astronaut)[None])[0], 1)[0].distance
    update_manifest(index_dir, calibration={"cutoff": far / 2})
    deadline = time.monotonic() + 10
    while "calibration" not in bot.services.index.manifest:  # followed without a restart
        assert time.monotonic() < deadline
        time.sleep(0.05)
    fake.send_photo(USER + 1, astronaut, width=512, height=512)
    reply = fake.wait_for("sendMessage", chat_id=USER + 1)[0]
    assert reply.text.startswith("I found nothing similar in the catalogue")
    assert not fake.seen("sendMediaGroup", chat_id=USER + 1)
    (button,) = [b for row in reply.params["reply_markup"]["inline_keyboard"] for b in row]
    assert button["text"] == "Show the nearest anyway"
    fake.press(USER + 1, reply.response, button["callback_data"])
    album = fake.wait_for("sendMediaGroup", chat_id=USER + 1)[0]
    assert len(album.album()) == 5
    assert fake.wait_for("sendMessage", count=2, chat_id=USER + 1)[1].text.startswith("The nearest 5 products")

    photo = next(iter(sorted(catalogue[0].glob("*.jpg")))).read_bytes()  # a catalogue product: answered as ever
    fake.send_photo(USER + 2, photo, width=60, height=80)
    assert len(fake.wait_for("sendMediaGroup", chat_id=USER + 2)[0].album()) == 5
