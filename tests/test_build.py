"""Building with the real ResNet50 (random weights): round trip, resume after kill -9, add, remove."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytest

from indexing import Index, KerasEmbedder, Weights, add_to_index, build_index, open_embedder, remove_from_index
from indexing.errors import BuildError, ExtractorMismatchError, IndexExistsError, WeightsError
from indexing.extract.extractor import verify_embedder
from indexing.extract.images import load_image
from indexing.sources.options import BuildOptions
from testbed.drawing import draw_product, make_catalogue
from tests.conftest import ROOT, wait_for_file


def test_round_trip_photo_of_a_product_finds_it_first(built_index, catalogue, embedder):
    images, _ = catalogue
    index = Index.load(built_index)
    assert index.count == 24
    assert index.product("1007")["meta"]["articleType"] == "Shoes"
    for pid in ("1000", "1009", "1017"):
        vector = embedder.embed(load_image(images / f"{pid}.jpg")[None])[0]
        hits = index.search(vector, 5)
        assert hits[0].id == pid and hits[0].score > 0.9999
        assert len({h.id for h in hits}) == 5


def test_build_reports_unreadable_files_and_missing_metadata(tmp_path, embedder):
    images = tmp_path / "imgs"
    styles = make_catalogue(images, count=6)
    (images / "9998.jpg").write_bytes(b"not a jpeg at all")
    (images / "9999.png").write_bytes(b"")
    draw_product("Red", "Shoes").save(images / "5555.jpg")  # no metadata row
    report = build_index([images], tmp_path / "idx", metadata=styles, embedder=embedder,
                         options=BuildOptions(export=False, progress=False))
    assert report.indexed == 7
    assert sorted(os.path.basename(f) for f, _ in report.skipped) == ["9998.jpg", "9999.png"]
    assert report.without_metadata == ["5555"]
    written = json.loads((tmp_path / "idx" / "build-report.json").read_text())
    assert {item["file"].rsplit("/", 1)[-1] for item in written["skipped"]} == {"9998.jpg", "9999.png"}
    assert "2 unreadable skipped" in report.summary() and "1 without metadata" in report.summary()


def test_build_refuses_to_overwrite_and_rejects_empty_folders(built_index, catalogue, embedder, tmp_path):
    with pytest.raises(IndexExistsError, match="already holds an index"):
        build_index([catalogue[0]], built_index, embedder=embedder,
                    options=BuildOptions(export=False, progress=False))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BuildError, match="no images"):
        build_index([tmp_path / "empty"], tmp_path / "x", embedder=embedder,
                    options=BuildOptions(export=False, progress=False))


def run_build(images, styles, out, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "indexing", "build", "--images", str(images), "--metadata", str(styles),
         "--out", str(out), "--weights", "random:0", "--batch-size", "4", "--checkpoint-every", "8",
         "--quiet", *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.usefixtures("exported_index")  # the session's export is in the machine's cache: the command copies it
def test_kill_9_mid_build_then_rerun_equals_an_uninterrupted_build(tmp_path):
    images, styles = tmp_path / "imgs", None
    styles = make_catalogue(images, count=32)
    reference = tmp_path / "reference"  # as the command builds it, here: no second start-up
    build_index([images], reference, metadata=styles,
                options=BuildOptions(weights=Weights("random", seed=0), batch_size=4, progress=False))

    out = tmp_path / "crashed"
    victim = run_build(images, styles, out)
    wait_for_file(out / ".partial", "chunk-000002.json", victim)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    saved = len(list((out / ".partial").glob("chunk-*.json")))
    if (out / "manifest.json").exists():  # a generation published for a bot to serve meanwhile: incomplete
        assert Index.load(out).manifest["building"]["total"] == 32
    assert 2 <= saved < 4  # 32 images, 8 per checkpoint: killed part-way

    resumed = run_build(images, styles, out)
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    assert f"{saved * 8} reused from an interrupted run" in stdout
    a, b = Index.load(reference), Index.load(out)
    assert list(a.ids) == list(b.ids) and len(a.ids) == 32
    assert np.abs(np.asarray(a.store.vectors) - np.asarray(b.store.vectors)).max() < 1e-5
    assert not (out / ".partial").exists()


def test_resume_with_other_settings_is_refused(tmp_path, catalogue, embedder):
    out = tmp_path / "idx"
    (out / ".partial").mkdir(parents=True)
    (out / ".partial" / "spec.json").write_text(json.dumps({"extractor": {"weights": "random:9"}}))
    with pytest.raises(BuildError, match="interrupted build with other settings"):
        build_index([catalogue[0]], out, embedder=embedder, options=BuildOptions(export=False, progress=False))


def test_add_and_remove_write_only_what_changed_and_compact_folds_it(index_copy, embedder, tmp_path):
    base = {f: (f.stat().st_ino, f.stat().st_mtime_ns) for f in index_copy.glob("vectors-*.npy")}
    more = tmp_path / "more"
    styles = make_catalogue(more, count=3, start_id=5000)
    report = add_to_index(index_copy, [more], metadata=styles, embedder=embedder, progress=False)
    index = Index.load(index_copy)
    assert report.added == 3 and index.count == 27
    appended = index_copy / index.manifest["segments"][0]["vectors"]["name"]
    assert appended.stat().st_size < 3 * 2048 * 4 + 200  # the 3 new rows only
    vector = embedder.embed(load_image(more / "5001.jpg")[None])[0]
    assert index.search(vector, 1)[0].id == "5001"
    assert index.product("5001")["meta"]["productDisplayName"].endswith("5001")

    removed, missing = remove_from_index(index_copy, ["5001", "1003", "nope"])
    assert removed == ["1003", "5001"] and missing == ["nope"]
    index = Index.load(index_copy)
    assert index.count == 25 and "5001" not in index and "1003" not in index
    assert index.search(vector, 1)[0].id != "5001"
    assert {f: (f.stat().st_ino, f.stat().st_mtime_ns) for f in base} == base  # the base was never rewritten
    assert sorted(index_copy.glob("vectors-*.npy")) == sorted([*base, appended])  # a removal writes no vectors

    done = subprocess.run([sys.executable, "-m", "indexing", "compact", "--index", str(index_copy)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "25 photos in one base" in done.stdout, done.stderr
    compacted = Index.load(index_copy)
    assert len(list(index_copy.glob("vectors-*.npy"))) == 1 and "segments" not in compacted.manifest
    assert [h.id for h in compacted.search(vector, 5)] == [h.id for h in index.search(vector, 5)]


def test_copy_images_makes_a_self_contained_index(tmp_path, embedder):
    images = tmp_path / "imgs"
    styles = make_catalogue(images, count=5)
    build_index([images], tmp_path / "idx", metadata=styles, embedder=embedder,
                options=BuildOptions(copy_images=True, export=False, progress=False))
    moved = tmp_path / "moved"
    shutil.move(tmp_path / "idx", moved)
    shutil.rmtree(images)
    index = Index.load(moved)
    assert index.image_path("1002").is_file() and index.image_path("1002").parent == moved / "images"
    remove_from_index(moved, ["1002"])
    assert not (moved / "images" / "1002.jpg").exists()


def test_serving_with_another_extractor_is_refused(built_index):
    index = Index.load(built_index)
    with pytest.raises(ExtractorMismatchError, match=r"random:0.*random:1"):
        verify_embedder(KerasEmbedder(Weights("random", seed=1)), index)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("weights", "random:3", "does not reproduce"),  # caught by the probe vectors
        ("pooling", "GlobalAveragePooling2D", "pooling"),  # caught by the recipe
    ],
)
def test_tampered_extractor_fingerprint_is_refused(index_copy, key, value, message):
    manifest_path = index_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["extractor"][key] = value
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ExtractorMismatchError, match=message):
        open_embedder(Index.load(index_copy))


def test_real_catalogue_sample(tmp_path, shared_catalogue, embedder):
    images = tmp_path / "sample"
    images.mkdir()
    ids = sorted((p.stem for p in (shared_catalogue / "queries-224").glob("*.jpg")), key=int)[:16]
    for pid in ids:
        os.symlink(shared_catalogue / "images" / f"{pid}.jpg", images / f"{pid}.jpg")
    report = build_index([images], tmp_path / "idx", metadata=shared_catalogue / "styles.csv", embedder=embedder,
                         options=BuildOptions(batch_size=8, export=False, progress=False))
    assert report.indexed == 16 and not report.skipped and not report.without_metadata
    index = Index.load(tmp_path / "idx")
    assert set(index.facets()["gender"]) <= {"Men", "Women", "Boys", "Girls", "Unisex"}
    vector = embedder.embed(load_image(images / f"{ids[3]}.jpg")[None])[0]
    assert index.search(vector, 5)[0].id == ids[3]


def test_local_weights_file_for_offline_servers(tmp_path, catalogue, embedder):
    weights_file = tmp_path / "resnet50_notop.weights.h5"
    embedder.model.save_weights(weights_file)
    local = KerasEmbedder(Weights.parse(str(weights_file)))
    assert local.fingerprint["weights"].startswith("sha256:")
    images = tmp_path / "imgs"
    make_catalogue(images, count=4)
    build_index([images], tmp_path / "idx", embedder=local, options=BuildOptions(export=False, progress=False))
    index = Index.load(tmp_path / "idx")
    assert open_embedder(index).fingerprint["weights"] == local.fingerprint["weights"]
    moved = tmp_path / "elsewhere.weights.h5"
    weights_file.rename(moved)
    with pytest.raises(WeightsError, match="WEIGHTS_PATH"):
        open_embedder(index)
    assert open_embedder(index, weights_path=moved).runtime == "tensorflow"
    other = tmp_path / "other.weights.h5"  # the same layers with one kernel changed: another valid weights file
    shutil.copyfile(moved, other)
    with h5py.File(other, "r+") as weights:
        kernels: list[h5py.Dataset] = []
        weights.visititems(lambda _, node: kernels.append(node) if getattr(node, "ndim", 0) == 4 else None)
        kernels[0][...] = kernels[0][...] + 1
    with pytest.raises(WeightsError, match="WEIGHTS_PATH"):
        open_embedder(index, weights_path=other)  # a different file is not taken for the right one


def test_a_build_publishes_the_products_embedded_so_far_for_a_bot_to_serve(tmp_path, embedder):
    images = tmp_path / "imgs"
    make_catalogue(images, count=40)
    seen = []

    def look(done: int) -> None:
        if (tmp_path / "idx" / "manifest.json").exists():
            index = Index.load(tmp_path / "idx")
            seen.append((index.count, index.manifest.get("building")))

    options = BuildOptions(batch_size=4, checkpoint_every=4, export=False, progress=False, on_checkpoint=look)
    build_index([images], tmp_path / "idx", embedder=embedder, options=options)
    # published at 4, 8, 16 and 32 products (doubling), each generation whole and searchable
    assert [count for count, _ in seen] == [4, 8, 8, 16, 16, 16, 16, 32, 32]
    assert seen[-1][1] == {"done": 32, "total": 40}
    final = Index.load(tmp_path / "idx")
    assert final.count == 40 and "building" not in final.manifest
