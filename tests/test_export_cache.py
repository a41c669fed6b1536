"""A machine exports an extractor once: the next build of the same weights copies the export and never loads
TensorFlow, and a damaged copy is never used."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from indexing import Index, Weights, build_index, open_embedder
from indexing.extract.embedder import sha256_file
from indexing.extract.export_cache import cache_dir, find_export
from indexing.extract.exported import export_onnx
from indexing.sources.options import BuildOptions
from testbed.drawing import make_catalogue
from tests.conftest import ROOT

# `fashion-index` as the console script runs it, saying at the end whether TensorFlow was imported.
COMMAND = "import sys; from indexing.cli import main; code = main(sys.argv[1:]); " \
          "print('TensorFlow imported:', 'tensorflow' in sys.modules); sys.exit(code)"


def test_a_second_build_on_the_machine_copies_the_export_and_never_loads_tensorflow(embedder, tmp_path, monkeypatch):
    monkeypatch.setenv("EXPORT_CACHE", str(tmp_path / "cache"))
    images = tmp_path / "imgs"
    styles = make_catalogue(images, count=6)
    build_index([images], tmp_path / "first", metadata=styles, embedder=embedder, options=BuildOptions(progress=False))
    assert sorted(p.suffix for p in (tmp_path / "cache").iterdir()) == [".json", ".onnx"]

    done = subprocess.run([sys.executable, "-c", COMMAND, "build", "--images", str(images), "--metadata",
                           str(styles), "--out", str(tmp_path / "second"), "--weights", "random:0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "TensorFlow imported: False" in done.stdout
    assert "using this machine's export of the random:0 extractor" in done.stdout + done.stderr
    first, second = Index.load(tmp_path / "first"), Index.load(tmp_path / "second")
    assert second.fingerprint == first.fingerprint and np.array_equal(second.probe, first.probe)
    assert second.manifest["files"]["extractor"]["sha256"] == first.manifest["files"]["extractor"]["sha256"]
    assert np.array_equal(np.asarray(second.store.vectors), np.asarray(first.store.vectors))
    assert open_embedder(second).runtime == "onnxruntime"  # the bot's check of the extractor passes


def test_exporting_an_index_copies_the_kept_export_without_tensorflow(built_index, exported_index, tmp_path):
    index = tmp_path / "idx"  # built with --no-export; exported_index left this machine's export in the cache
    shutil.copytree(built_index, index)
    done = subprocess.run([sys.executable, "-c", COMMAND, "export", "--index", str(index)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "exported" in done.stdout and "TensorFlow imported: False" in done.stdout
    entry = Index.load(index).manifest["files"]["extractor"]
    assert entry["sha256"] == Index.load(exported_index).manifest["files"]["extractor"]["sha256"]
    assert entry["name"] == "extractor.onnx" and entry["max_relative_difference"] < 1e-4
    assert open_embedder(Index.load(index)).runtime == "onnxruntime"


def test_a_damaged_cached_export_is_not_used_and_the_next_export_replaces_it(embedder, tmp_path, monkeypatch,
                                                                              caplog):
    monkeypatch.setenv("EXPORT_CACHE", str(tmp_path / "cache"))
    export_onnx(embedder, tmp_path / "made.onnx")
    assert find_export(Weights("random", seed=0)) is not None
    assert find_export(Weights("random", seed=1)) is None  # other weights are another export
    kept = next((tmp_path / "cache").glob("*.onnx"))
    data = bytearray(kept.read_bytes())
    data[len(data) // 2] ^= 0x01
    kept.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="indexing"):
        assert find_export(Weights("random", seed=0)) is None
        kept.with_suffix(".json").write_text("{")  # a record cut short, too
        assert find_export(Weights("random", seed=0)) is None
    assert [r.getMessage().endswith("is damaged or incomplete: exporting again") for r in caplog.records] == [True] * 2

    export_onnx(embedder, tmp_path / "again.onnx")  # exported anew, checked against TensorFlow, and kept
    cached = find_export(Weights("random", seed=0))
    assert cached is not None and sha256_file(cached.path) == sha256_file(tmp_path / "made.onnx")


def test_the_cache_folder_follows_the_environment():
    assert cache_dir({"EXPORT_CACHE": "off"}) is None
    assert cache_dir({"EXPORT_CACHE": "/srv/exports"}) == Path("/srv/exports")
    assert cache_dir({"XDG_CACHE_HOME": "/var/cache"}) == Path("/var/cache/fashion-recommender/exports")
