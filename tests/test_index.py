"""The on-disk format (atomic, tamper-evident, no pickle) and exact search."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from indexing.errors import FashionIndexError, IndexFormatError
from indexing.extract.embedder import l2_normalize
from indexing.store import files as files_module
from indexing.store import folder_writer, scan
from indexing.store.files import change_index, write_index
from indexing.store.index import Index
from indexing.store.vector_store import Change

FINGERPRINT = {"weights": "random:0"}


def products_for(n: int, photo_every: int = 0) -> list[dict]:
    return [
        {
            "id": str(i),
            "image": f"/nowhere/{i}.jpg",
            "photo": f"dup{i // 2}" if photo_every and i < photo_every else f"p{i}",
            "meta": {"gender": ["Men", "Women"][i % 2], "articleType": ["Shirts", "Shoes", "Watches"][i % 3]},
        }
        for i in range(n)
    ]


def make(directory, n=200, dim=16, seed=0, photo_every=0):
    vectors = l2_normalize(np.random.default_rng(seed).normal(size=(n, dim)))
    write_index(directory, vectors=vectors, products=products_for(n, photo_every),
                fingerprint=FINGERPRINT, probe=np.zeros((2, dim)))
    return vectors


def test_search_is_exact_euclidean(tmp_path):
    vectors = make(tmp_path / "i")
    index = Index.load(tmp_path / "i")
    rng = np.random.default_rng(1)
    for _ in range(20):
        q = l2_normalize(rng.normal(size=16))
        expected = np.argsort(np.linalg.norm(vectors - q, axis=1))[:5]
        hits = index.search(q, 5)
        assert [h.id for h in hits] == [str(i) for i in expected]
        assert hits[0].distance == pytest.approx(np.linalg.norm(vectors[expected[0]] - q), abs=1e-5)
        assert [h.rank for h in hits] == [1, 2, 3, 4, 5]


def test_search_excludes_ids_and_filters(tmp_path):
    vectors = make(tmp_path / "i")
    index = Index.load(tmp_path / "i")
    first = index.search(vectors[7], 5)
    assert first[0].id == "7" and first[0].score == pytest.approx(1.0)
    page2 = index.search(vectors[7], 5, exclude=[h.id for h in first])
    assert not {h.id for h in page2} & {h.id for h in first}
    women_shoes = index.search(vectors[7], 10, filters={"gender": ["women"], "articleType": ["Shoes"]})
    assert len(women_shoes) == 10
    assert all(h.meta["gender"] == "Women" and h.meta["articleType"] == "Shoes" for h in women_shoes)
    with pytest.raises(FashionIndexError, match="cannot filter on 'colour'"):
        index.search(vectors[7], 5, filters={"colour": ["Red"]})


def test_byte_identical_photos_are_collapsed(tmp_path):
    vectors = make(tmp_path / "i", photo_every=20)  # ids 0-19 share photos pairwise: (0,1), (2,3)...
    index = Index.load(tmp_path / "i")
    hits = index.search(vectors[0], 5)
    photos = [index.product(h.id)["photo"] for h in hits]
    assert len(hits) == 5 and len(set(photos)) == 5
    assert len(index.search(vectors[0], 5, collapse_duplicates=False)) == 5
    assert index.same_photo("0", "1") and not index.same_photo("0", "2")


def test_fewer_matches_than_k_returns_what_there_is(tmp_path):
    make(tmp_path / "i", n=6)
    index = Index.load(tmp_path / "i")
    assert len(index.search(np.ones(16), 10)) == 6
    assert index.search(np.ones(16), 5, exclude=[str(i) for i in range(6)]) == []


def test_missing_index_has_a_clear_message(tmp_path):
    with pytest.raises(IndexFormatError, match=r"no index at .*build one"):
        Index.load(tmp_path / "nothing")


def test_corrupt_manifest(tmp_path):
    make(tmp_path / "i")
    (tmp_path / "i" / "manifest.json").write_text("{ not json")
    with pytest.raises(IndexFormatError, match="not valid JSON"):
        Index.load(tmp_path / "i")


def test_tampered_manifest_count(tmp_path):
    make(tmp_path / "i")
    path = tmp_path / "i" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["count"] = 150
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="the manifest says"):
        Index.load(tmp_path / "i")


def test_planted_pickle_never_runs(tmp_path):
    make(tmp_path / "i")
    directory = tmp_path / "i"
    manifest = json.loads((directory / "manifest.json").read_text())
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    # A pickle in place of the vectors, with a checksum that matches: np.load must still refuse it.
    target = directory / manifest["files"]["vectors"]["name"]
    np.save(target, np.array([Exploit()], dtype=object), allow_pickle=True)
    manifest["files"]["vectors"]["bytes"] = target.stat().st_size
    manifest["files"]["vectors"]["sha256"] = files_module.sha256_file(target)
    (directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="no plain numeric array"):
        Index.load(directory)
    # A raw pickle in place of the products file is refused by its checksum.
    (directory / manifest["files"]["products"]["name"]).write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(IndexFormatError):
        Index.load(directory)
    assert not marker.exists()


def test_changed_vectors_fail_the_checksum(tmp_path):
    make(tmp_path / "i")
    directory = tmp_path / "i"
    name = json.loads((directory / "manifest.json").read_text())["files"]["vectors"]["name"]
    data = bytearray((directory / name).read_bytes())
    data[-1] ^= 0xFF
    (directory / name).write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match="checksum"):
        Index.load(directory)


def test_crash_while_writing_keeps_the_previous_index(tmp_path, monkeypatch):
    old = make(tmp_path / "i", n=50)
    real = files_module.atomic_write

    def crash_on_manifest(path, data):
        if path.name == "manifest.json":
            raise KeyboardInterrupt("power cut")
        real(path, data)

    monkeypatch.setattr(files_module, "atomic_write", crash_on_manifest)
    with pytest.raises(KeyboardInterrupt):
        make(tmp_path / "i", n=80, seed=5)
    monkeypatch.undo()
    index = Index.load(tmp_path / "i")
    assert index.count == 50
    assert np.allclose(np.asarray(index.store.vectors), old)


# The crash at: the segment's vectors, products or ids, the change file, or the manifest.
@pytest.mark.parametrize("crash_at", [1, 2, 3, 4, 5])
def test_a_crash_at_any_point_of_a_change_keeps_the_last_commit(tmp_path, monkeypatch, crash_at):
    old = make(tmp_path / "i", n=50)
    real, writes = files_module.atomic_write, []

    def crashing(path, data):
        writes.append(path.name)
        if len(writes) == crash_at:
            raise KeyboardInterrupt("power cut")
        real(path, data)

    monkeypatch.setattr(files_module, "atomic_write", crashing)
    monkeypatch.setattr(folder_writer, "atomic_write", crashing)
    change = Change(removed=frozenset({"3"}), added=[{"id": "new", "image": "new.jpg"}], vectors=old[[3]],
                    updated={"4": {"price": "1.00"}})
    with pytest.raises(KeyboardInterrupt):
        change_index(tmp_path / "i", change)
    monkeypatch.undo()
    index = Index.load(tmp_path / "i")
    assert index.count == 50 and "new" not in index and index.search(old[3], 1)[0].id == "3"
    change_index(tmp_path / "i", change)  # the same change again, whole: nothing left over is in the way
    index = Index.load(tmp_path / "i")
    assert index.count == 50 and index.search(old[3], 1)[0].id == "new" and index.product("4")["meta"]["price"]
    assert len(list((tmp_path / "i").glob("vectors-*.npy"))) == 2  # the base and one segment: no stray file


def clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Vectors in tight clusters around a shared direction, like real image embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n // 20, dim)) + 3.0
    return l2_normalize(centres[rng.integers(0, len(centres), n)] + 0.3 * rng.normal(size=(n, dim)))


def test_approximate_search_agrees_with_exact(tmp_path):
    vectors = clustered(3000, 64)
    products = products_for(3000)
    write_index(tmp_path / "ann", vectors=vectors, products=products, fingerprint=FINGERPRINT,
                probe=np.zeros((2, 64)), ann="on")
    write_index(tmp_path / "exact", vectors=vectors, products=products, fingerprint=FINGERPRINT,
                probe=np.zeros((2, 64)), ann="off")
    fast, exact = Index.load(tmp_path / "ann"), Index.load(tmp_path / "exact")
    assert fast.store.graph is not None and exact.store.graph is None
    assert fast.manifest["files"]["ann"]["name"].startswith("ann-")
    queries = clustered(100, 64, seed=9)
    overlap = [len({h.id for h in fast.search(q, 5)} & {h.id for h in exact.search(q, 5)}) / 5 for q in queries]
    assert np.mean(overlap) >= 0.95
    # scores are exact even when the candidates come from the graph
    q = queries[0]
    for hit in fast.search(q, 5):
        assert hit.score == pytest.approx(float(vectors[int(hit.id)] @ q), abs=1e-5)
    hits = fast.search(q, 5, filters={"gender": ["Women"], "articleType": ["Watches"]})
    assert len(hits) == 5 and all(h.meta["gender"] == "Women" and h.meta["articleType"] == "Watches" for h in hits)
    first = fast.search(q, 5)
    assert not {h.id for h in fast.search(q, 5, exclude=[h.id for h in first])} & {h.id for h in first}


def test_a_change_keeps_the_graph_until_compaction_rebuilds_it_checksummed(tmp_path):
    vectors = clustered(600, 32)
    write_index(tmp_path / "i", vectors=vectors, products=products_for(600), fingerprint=FINGERPRINT,
                probe=np.zeros((2, 32)), ann="on")
    graph_file = Index.load(tmp_path / "i").manifest["files"]["ann"]["name"]
    change_index(tmp_path / "i", Change(removed=frozenset(str(i) for i in range(100)), added=products_for(3)[:1],
                                        vectors=vectors[[7]] * -1))
    smaller = Index.load(tmp_path / "i")
    assert smaller.count == 501 and smaller.manifest["files"]["ann"]["name"] == graph_file
    assert smaller.search(vectors[150], 1)[0].id == "150" and smaller.search(vectors[50], 3)[0].id != "50"
    assert smaller.search(-vectors[7], 1)[0].id == "0"  # an appended row is a candidate, though not in the graph
    change_index(tmp_path / "i", Change(), compact=True)
    compacted = Index.load(tmp_path / "i")
    assert compacted.count == 501 and compacted.manifest["files"]["ann"]["name"] != graph_file
    assert compacted.search(vectors[150], 1)[0].id == "150" and "segments" not in compacted.manifest
    assert len(list((tmp_path / "i").glob("ann-*.faiss"))) == 1
    graph = tmp_path / "i" / compacted.manifest["files"]["ann"]["name"]
    graph.write_bytes(graph.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(IndexFormatError, match="checksum"):
        Index.load(tmp_path / "i")


def test_search_many_equals_one_by_one(tmp_path):
    vectors = make(tmp_path / "i", n=300)
    index = Index.load(tmp_path / "i")
    queries = vectors[[3, 50, 51, 200]] + 0.01
    excludes = [["3"], [], ["51", "7"], []]
    filters = [None, {"gender": ["Men"]}, None, {"articleType": ["Shoes", "Watches"]}]
    together = index.search_many(queries, 5, excludes=excludes, filters=filters)
    alone = [index.search(q, 5, exclude=e, filters=f) for q, e, f in zip(queries, excludes, filters, strict=True)]
    assert [[h.id for h in hits] for hits in together] == [[h.id for h in hits] for hits in alone]
    assert [h.score for h in together[2]] == pytest.approx([h.score for h in alone[2]], abs=1e-6)


def test_products_keep_their_fields_in_the_compact_table(tmp_path):
    records = [{"id": "a", "image": "a.jpg", "photo": "x", "meta": {"gender": "Men", "name": "Blue shirt"}},
               {"id": "b", "image": "b.jpg", "photo": "y", "meta": {"gender": "Women"}}]
    write_index(tmp_path / "i", vectors=np.eye(2, 4), products=records, fingerprint=FINGERPRINT,
                probe=np.zeros((2, 4)))
    index = Index.load(tmp_path / "i")
    assert [index.product(pid) for pid in ("a", "b")] == records  # a missing column stays missing
    assert index.facets() == {"gender": ["Men", "Women"], "name": ["Blue shirt"]}


def test_ids_and_text_survive_packing_and_are_found_by_value():
    from indexing.store.products import Strings

    values = ["12", "ünï\u00e7ode 👗", None, "", "12", "a" * 300]
    packed = Strings(values)
    assert list(packed) == values and packed[-1] == "a" * 300 and packed[1:3] == values[1:3]
    assert packed.position("12") == 0 and packed.position("") == 3 and packed.position("13") is None
    assert "ünï\u00e7ode 👗" in packed and None not in packed and 12 not in packed


def mapped_kb(path) -> int:
    """How much of a file this process holds mapped in memory (its RSS share), from /proc/self/smaps."""
    total, current = 0, None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5:
            current = fields[5] if len(fields) > 5 else None
        elif fields[0] == "Rss:" and current == str(path):
            total += int(fields[1])
    return total


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="reads Linux's /proc/self/smaps")
def test_a_full_scan_is_exact_and_leaves_no_vectors_resident(tmp_path, monkeypatch):
    monkeypatch.setattr(scan, "CHUNK_ROWS", 64)  # many chunks, and a query's best rows in different ones
    vectors = make(tmp_path / "i", n=1000, dim=512)
    index = Index.load(tmp_path / "i")
    queries = vectors[[5, 63, 64, 999]] + 0.01
    together = index.search_many(queries, 5)
    for q, hits in zip(queries, together, strict=True):
        expected = np.argsort(np.linalg.norm(vectors - l2_normalize(q), axis=1))[:5]
        assert [h.id for h in hits] == [str(i) for i in expected]
        assert [h.id for h in index.search(q, 5)] == [h.id for h in hits]
    mapped = index.store.vectors.arrays[0]
    file_kb = mapped.nbytes // 1024
    assert mapped_kb(mapped.filename) < file_kb // 8  # the whole 2 MB was read; almost none kept
    np.asarray(mapped).sum()  # touching the map directly keeps it resident: the measure sees that
    assert mapped_kb(mapped.filename) > file_kb // 2
