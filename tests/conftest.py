"""Shared fixtures: the real ResNet50 with seeded random weights, generated and real catalogues."""

from __future__ import annotations

import csv
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from indexing import KerasEmbedder, Weights, build_index
from indexing.build import export_extractor
from tests.fake_telegram import FakeTelegram
from tests.feed_server import FeedServer
from tests.harness import RunningBot, settings_for
from tests.milvus_server import MilvusLiteServer
from tests.postgres import Postgres, binaries

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FASHION_DATASET", ROOT.parent / "shared" / "datasets" / "fashion-small"))

COLOURS = ["Red", "Blue", "Green", "Black", "White", "Yellow"]
RGB = {"Red": (200, 30, 30), "Blue": (30, 50, 200), "Green": (30, 160, 60), "Black": (20, 20, 20),
       "White": (245, 245, 245), "Yellow": (230, 210, 40)}
SHAPES = ["Tshirts", "Shoes", "Watches", "Jeans"]
GENDERS = ["Men", "Women"]


def draw_product(colour: str, shape: str, size: tuple[int, int] = (60, 80), seed: int = 0) -> Image.Image:
    """A small catalogue-like photo: a coloured shape on white, with a little seeded texture."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    w, h = size
    fill = RGB[colour]
    if shape == "Tshirts":
        draw.rectangle([w * 0.25, h * 0.2, w * 0.75, h * 0.85], fill=fill)
        draw.rectangle([w * 0.05, h * 0.2, w * 0.95, h * 0.35], fill=fill)
    elif shape == "Shoes":
        draw.ellipse([w * 0.1, h * 0.55, w * 0.9, h * 0.8], fill=fill)
    elif shape == "Watches":
        draw.ellipse([w * 0.3, h * 0.35, w * 0.7, h * 0.65], outline=fill, width=max(2, w // 12))
        draw.rectangle([w * 0.45, h * 0.05, w * 0.55, h * 0.95], fill=fill)
    else:
        draw.polygon([(w * 0.3, h * 0.1), (w * 0.7, h * 0.1), (w * 0.8, h * 0.95), (w * 0.55, h * 0.95),
                      (w * 0.5, h * 0.4), (w * 0.45, h * 0.95), (w * 0.2, h * 0.95)], fill=fill)
    rng = np.random.default_rng(seed)
    pixels = np.asarray(image, dtype=np.int16) + rng.integers(-6, 7, size=(h, w, 3))
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def make_catalogue(folder: Path, count: int = 24, start_id: int = 1000) -> Path:
    """count generated products as <id>.jpg plus styles.csv; returns the CSV path."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        pid = start_id + i
        colour, shape, gender = COLOURS[i % 6], SHAPES[(i // 6) % 4], GENDERS[i % 2]
        draw_product(colour, shape, seed=pid).save(folder / f"{pid}.jpg", quality=92)
        rows.append({"id": pid, "gender": gender, "articleType": shape, "baseColour": colour,
                     "productDisplayName": f"{gender} {colour} {shape} {pid}"})
    styles = folder.parent / f"{folder.name}-styles.csv"
    with open(styles, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return styles


@pytest.fixture(scope="session")
def embedder() -> KerasEmbedder:
    return KerasEmbedder(Weights("random", seed=0))


@pytest.fixture(scope="session")
def catalogue(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("catalogue") / "images"
    return folder, make_catalogue(folder)


@pytest.fixture(scope="session")
def built_index(tmp_path_factory, catalogue, embedder) -> Path:
    """A read-only index of the generated catalogue; copy it before changing it."""
    images, styles = catalogue
    out = tmp_path_factory.mktemp("index") / "idx"
    build_index([images], out, metadata=styles, embedder=embedder, batch_size=8, export=False, progress=False)
    return out


@pytest.fixture(scope="session")
def exported_index(tmp_path_factory, built_index, embedder) -> Path:
    """The same index with its extractor exported to ONNX, as `fashion-index build` leaves it."""
    target = tmp_path_factory.mktemp("exported") / "idx"
    shutil.copytree(built_index, target)
    export_extractor(target, embedder)
    return target


@pytest.fixture
def index_copy(built_index, tmp_path) -> Path:
    target = tmp_path / "idx"
    shutil.copytree(built_index, target)
    return target


@pytest.fixture(scope="session")
def shared_catalogue() -> Path:
    if not (SHARED / "images").is_dir():
        pytest.skip(f"the fashion-small data set is not at {SHARED} (set FASHION_DATASET)")
    return SHARED


@pytest.fixture
def server():
    """A shop's web server on loopback, for feeds and their images."""
    running = FeedServer().start()
    yield running
    running.stop()


@pytest.fixture
def milvus():
    """A Milvus Lite server on loopback, which several processes can share (a Lite file cannot be)."""
    server = MilvusLiteServer().start()
    yield server
    server.stop()


def wait_for_file(folder: Path, name: str, process, timeout: float = 300) -> None:
    """Until folder/name exists, while process runs (to kill it at that point)."""
    deadline = time.monotonic() + timeout
    while not (folder / name).exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL server for the session; in CI (CI=true) its absence fails the tests instead of skipping."""
    bin_dir = binaries()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed: .ci/run installs Debian's postgresql package")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    server = Postgres(bin_dir).start()
    yield server.url
    server.stop()


# -- the bot against the fake Bot API --------------------------------------------------------------------
@pytest.fixture
def fake():
    server = FakeTelegram().start()
    yield server
    server.stop()


@pytest.fixture
def start_bot(fake, exported_index, tmp_path):
    running: list[RunningBot] = []

    def start(**overrides) -> RunningBot:
        overrides.setdefault("state_dir", tmp_path / "state")
        bot = RunningBot(settings_for(fake, exported_index, **overrides)).start()
        running.append(bot)
        return bot

    yield start
    for bot in running:
        if bot.thread.is_alive():
            bot.stop()


@pytest.fixture
def bot(start_bot):
    return start_bot()
