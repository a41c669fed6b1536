"""Shared fixtures: the real ResNet50 with seeded random weights, generated and real catalogues."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from indexing import KerasEmbedder, Weights, build_index
from indexing.sources.build import export_extractor
from indexing.sources.options import BuildOptions
from testbed.drawing import make_catalogue
from testbed.fake_telegram import FakeTelegram
from testbed.feed_server import FeedServer
from testbed.harness import RunningBot, settings_for
from testbed.milvus_server import MilvusLiteServer
from testbed.postgres import Postgres, binaries

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FASHION_DATASET", ROOT.parent / "shared" / "datasets" / "fashion-small"))


def run_folder(tmp_path_factory) -> Path:
    """The folder of the whole test run: the workers' (pytest-xdist) common parent, or the one session's."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once_per_run(tmp_path_factory, name: str, make: Callable[[Path], None]) -> Path:
    """run_folder/name, made by the first worker that needs it while the others wait, then shared read-only:
    the workers are processes, so a session fixture alone would be made once per worker."""
    folder = run_folder(tmp_path_factory) / name
    with open(folder.with_name(f"{name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = folder.with_name(f"{name}.done")
        if not done.exists():  # a worker that failed half-way left no mark: this one starts again
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            make(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session", autouse=True)
def loopback_feeds() -> None:
    """The feed and photo servers of the tests listen on 127.0.0.1, which a real index refuses by default."""
    os.environ["FEED_ALLOWED_NETWORKS"] = "127.0.0.0/8"


@pytest.fixture(scope="session", autouse=True)
def export_cache(tmp_path_factory) -> Path:
    """The session's export cache (EXPORT_CACHE), shared by the workers and every command they start: the first
    export of an extractor is kept there, later builds copy it. Never the user's own cache folder."""
    folder = run_folder(tmp_path_factory) / "exports"
    os.environ["EXPORT_CACHE"] = str(folder)
    return folder


class RememberingEmbedder(KerasEmbedder):
    """The real ResNet50 on TensorFlow, which computes each photo once per worker: test after test embeds the same
    generated catalogue and the same probe images, and a photo's vectors depend on its pixels alone."""

    def __init__(self, weights: Weights):
        super().__init__(weights)
        self.seen: dict[tuple[str, bytes], np.ndarray] = {}

    def remembered(self, kind: str, images: np.ndarray, compute: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        keys = [(kind, hashlib.sha1(f"{image.dtype}{image.shape}".encode() + image.tobytes()).digest())
                for image in np.ascontiguousarray(images)]
        new = [i for i, key in enumerate(keys) if key not in self.seen]
        if new:
            self.seen.update(zip([keys[i] for i in new], compute(images[new]), strict=True))
        return np.stack([self.seen[key] for key in keys])

    def features(self, images: np.ndarray) -> np.ndarray:
        return self.remembered("features", images, super().features)

    def activation_maps(self, images: np.ndarray) -> np.ndarray:
        return self.remembered("maps", images, super().activation_maps)


@pytest.fixture(scope="session")
def embedder() -> KerasEmbedder:
    return RememberingEmbedder(Weights("random", seed=0))


@pytest.fixture(scope="session")
def catalogue(tmp_path_factory) -> tuple[Path, Path]:
    folder = once_per_run(tmp_path_factory, "catalogue", lambda made: make_catalogue(made / "images"))
    return folder / "images", folder / "images-styles.csv"


@pytest.fixture(scope="session")
def built_index(tmp_path_factory, catalogue, request) -> Path:
    """A read-only index of the generated catalogue; copy it before changing it."""
    images, styles = catalogue

    def build(folder: Path) -> None:
        build_index([images], folder / "idx", metadata=styles, embedder=request.getfixturevalue("embedder"),
                    options=BuildOptions(batch_size=8, export=False, progress=False))

    return once_per_run(tmp_path_factory, "index", build) / "idx"


@pytest.fixture(scope="session")
def exported_index(tmp_path_factory, built_index, request) -> Path:
    """The same index with its extractor exported to ONNX, as `fashion-index build` leaves it."""

    def export(folder: Path) -> None:
        shutil.copytree(built_index, folder / "idx")
        export_extractor(folder / "idx", request.getfixturevalue("embedder"))

    return once_per_run(tmp_path_factory, "exported", export) / "idx"


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


def running(server):
    """A fixture's body for a test server: started for the test, stopped after it."""
    started = server.start()
    yield started
    started.stop()


@pytest.fixture
def server():
    """A shop's web server on loopback, for feeds and their images."""
    yield from running(FeedServer())


@pytest.fixture
def milvus():
    """A Milvus Lite server on loopback, which several processes can share (a Lite file cannot be)."""
    yield from running(MilvusLiteServer())


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
    yield from running(FakeTelegram())


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """ONNX Runtime's optimised model, made once for the run rather than by every bot's first start."""
    folder = run_folder(tmp_path_factory) / "models"
    folder.mkdir(exist_ok=True)  # the bots' state folders link to it; the first bot to start fills it
    return folder


def with_models(state_dir: Path, model_cache: Path) -> Path:
    """A bot's state folder whose ONNX Runtime model cache is the session's (see model_cache)."""
    models = state_dir / "models"
    if not models.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        models.symlink_to(model_cache, target_is_directory=True)
    return state_dir


@pytest.fixture
def start_bot(fake, exported_index, tmp_path, model_cache):
    running: list[RunningBot] = []

    def start(**overrides) -> RunningBot:
        overrides["state_dir"] = with_models(Path(overrides.get("state_dir", tmp_path / "state")), model_cache)
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
