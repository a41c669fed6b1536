"""One suite for every store: the index folder, a Milvus Lite file, a Milvus Lite server, and Milvus standalone.

The standalone server (the `milvus` package's Milvus 2.3) listens on every interface, so its part of the suite
runs in a network namespace that has only loopback: test_the_suite_passes_on_a_milvus_2_3_server starts it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

from indexing import Index
from indexing.errors import FashionIndexError
from indexing.store.files import change_index, write_index
from indexing.store.milvus import client, parse_store
from indexing.store.vector_store import Change
from testbed.milvus_standalone import INSIDE, MilvusStandalone, available, namespaced
from tests.conftest import ROOT

STORES = ["standalone"] if os.environ.get(INSIDE) else ["folder", "lite-file", "lite-server"]
QUERIES = ("1000", "1007", "1013")
REFERENCE = "FASHION_REFERENCE_INDEX"
OPTIONS = ({}, {"filters": {"gender": ["men"]}, "exclude": ["1002"]}, {"collapse_duplicates": False})


# A test server's clocks, shortened: a flush waits out the segment's row assignments (2 s by default) and its
# checks poll every second; a shop's server keeps the defaults.
QUICK = {"dataCoord.segment.assignmentExpiration": "100", "queryCoord.checkInterval": "100",
         "queryCoord.distPullInterval": "50", "queryNode.stats.publishInterval": "100", "proxy.timeTickInterval": "50"}


@pytest.fixture(scope="session")
def standalone():
    server = MilvusStandalone(QUICK).start()
    yield server
    server.stop()


def spec_for(kind: str, request, tmp_path) -> str | None:
    """Where a test keeps its catalogue: None for the folder, else a --store of its own."""
    name = f"t{uuid.uuid4().hex[:12]}"
    if kind == "folder":
        return None
    if kind == "lite-file":
        return str(tmp_path / f"catalogue.db#{name}")
    server = request.getfixturevalue("milvus" if kind == "lite-server" else "standalone")
    return server.spec.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def reference(request) -> Index:
    """The generated catalogue's folder index (in the namespace: the one the outer run built, not built again)."""
    return Index.load(os.environ.get(REFERENCE) or request.getfixturevalue("built_index"))


def store_copy(reference: Index, target, spec: str | None):
    """The reference catalogue's rows written into a store (spec), with the reference's extractor (and its ONNX
    export, if it has one)."""
    target.mkdir(parents=True)
    if "extractor" in reference.manifest["files"]:
        shutil.copyfile(reference.directory / reference.manifest["files"]["extractor"]["name"],
                        target / reference.manifest["files"]["extractor"]["name"])
    records = list(reference.store.records())
    write_index(target, vectors=np.asarray(reference.store.vectors), products=records,
                fingerprint=reference.fingerprint, probe=reference.probe, store=parse_store(spec) if spec else None,
                keep_files={k: v for k, v in reference.manifest["files"].items() if k == "extractor"})
    return target


@pytest.fixture(params=STORES)
def stored(request, reference, tmp_path):
    return store_copy(reference, tmp_path / "idx", spec_for(request.param, request, tmp_path))


def answers(index: Index, reference: Index) -> list[list[tuple[str, float]]]:
    """The index's results for a few of the reference's products' vectors, with and without filters."""
    return [[(h.id, round(h.score, 4)) for h in index.search(reference.vector(pid), 5, **options)]
            for pid in QUERIES for options in OPTIONS]


def test_a_store_answers_like_the_folder(stored, reference):
    there = Index.load(stored)
    assert there.count == reference.count == 24 and there.product_count == there.shown_count == 24
    assert there.facets() == reference.facets()
    assert answers(there, reference) == answers(reference, reference)
    assert all(len(found) == 5 for found in answers(there, reference))
    assert there.product("1013") == reference.product("1013") and "1013" in there and "nope" not in there
    assert np.allclose(there.vector("1013"), reference.vector("1013"), atol=1e-6)
    assert there.ids_with_photo("1013") == ["1013"]


def footprint(index: Index) -> object:
    """What a change must not rewrite: the folder's vector files, or Milvus's collections."""
    if "store" in index.manifest:
        return sorted(client(index.manifest["store"]["uri"]).list_collections())
    return {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in index.directory.glob("vectors-*.npy")}


def test_a_change_writes_only_its_rows_and_compaction_keeps_the_answers(stored, reference):
    index = Index.load(stored)
    before = footprint(index)
    new = [{**reference.product(pid), "id": f"9{pid}"} for pid in ("1005", "1006")]
    meta = {pid: reference.product(pid)["meta"] for pid in ("1010", "1011")}
    change_index(stored, Change(
        removed=frozenset({"1003", "1004"}), added=new,
        vectors=-np.stack([reference.vector("1005"), reference.vector("1006")]),
        updated={"1010": {**meta["1010"], "price": "1.00 INR"},
                 "1011": {**meta["1011"], "availability": "out of stock"}}))
    after = Index.load(stored)
    assert after.count == 24 and after.product_count == 24 and after.shown_count == 23
    assert "1003" not in after and "91005" in after
    assert after.search(-reference.vector("1005"), 1)[0].id == "91005"
    assert after.product("1010")["meta"]["price"] == "1.00 INR"
    assert np.allclose(after.vector("1010"), reference.vector("1010"), atol=1e-6)  # its vector stays as it was
    assert "1011" not in [h.id for h in after.search(reference.vector("1011"), 10)]  # out of stock: never shown
    if "store" in after.manifest:
        assert footprint(after) == before  # changed in place: no collection written
    else:
        assert {name: footprint(after)[name] for name in before} == before  # the base is never rewritten
        assert len(footprint(after)) == len(before) + 1  # one segment, the 2 rows added
        change_index(stored, Change(updated={"1012": {**reference.product("1012")["meta"], "price": "2.00 INR"}}))
        assert footprint(Index.load(stored)) == footprint(after)  # an attribute change writes no vector
    answered = answers(Index.load(stored), reference)
    change_index(stored, Change(), compact=True)
    compacted = Index.load(stored)
    assert answers(compacted, reference) == answered and compacted.count == 24 and compacted.shown_count == 23


def eventually(read, timeout: float = 180):
    """read(), once the server answers it (a restarted server takes a while to load what it holds)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return read()
        except FashionIndexError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


@pytest.mark.parametrize("kind", ["standalone"] if os.environ.get(INSIDE) else ["lite-server"])
def test_a_restarted_server_is_survived_by_a_bot_and_a_writer(kind, request, reference, tmp_path):
    """Last in this file: it restarts the session's server. A bot's index, opened before the restart, answers again
    once the server is back (the collection comes back released: the store loads it again); a writer commits on
    it; nothing is lost."""
    server = request.getfixturevalue("milvus" if kind == "lite-server" else "standalone")
    stored = store_copy(reference, tmp_path / "idx", spec_for(kind, request, tmp_path))
    serving = Index.load(stored)
    server.restart()
    assert eventually(lambda: answers(serving, reference)) == answers(reference, reference)
    eventually(lambda: change_index(stored, Change(removed=frozenset({"1000"}))))
    after = Index.load(stored)
    assert "1000" not in after and after.product_count == 23 and after.product("1013") == reference.product("1013")
    assert "1000" not in serving  # the bot's store, opened before the restart, reads the change at once


if not os.environ.get(INSIDE):
    def test_the_suite_passes_on_a_milvus_2_3_server(built_index):
        """This file's tests again, on the `milvus` package's standalone server, in a loopback-only namespace."""
        reason = available()
        if reason:
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", "tests/test_stores.py"]
        done = subprocess.run(namespaced(command, {REFERENCE: str(built_index)}), cwd=ROOT, capture_output=True,
                              text=True, timeout=600)
        last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
        assert done.returncode == 0 and last.startswith("3 passed in"), done.stdout[-3000:] + done.stderr[-3000:]
