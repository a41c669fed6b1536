"""The catalogue follower under every way of failing: the bot keeps serving the last good generation, /healthz says
why at the next look, and the repair is picked up at the look after it, with no restart."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bot import reload
from bot.filter_words import Vocabulary
from bot.health import Health
from bot.state_sqlite import SqliteStore
from bot.state_thread import StateThread
from indexing import Index
from indexing.extract.embedder import l2_normalize
from indexing.store import milvus
from indexing.store.files import change_index, read_manifest
from indexing.store.vector_store import Change

PERIOD = 0.05


def add_product(directory: Path, pid: str) -> dict:
    vector = l2_normalize(np.random.default_rng(len(pid)).normal(size=(1, 2048)).astype(np.float32))
    row = {"id": pid, "image": "x.jpg", "photo": pid, "meta": {"price": "10.00 INR"}}
    return change_index(directory, Change(added=[row], vectors=vector))


class Follower:
    """follow_index running on a real index and state, with its looks at the manifest counted."""

    def __init__(self, directory: Path, state: Path, monkeypatch):
        index = Index.load(directory)
        self.services = SimpleNamespace(
            settings=SimpleNamespace(index_dir=directory, store_uri=None), health=Health(),
            recommender=SimpleNamespace(index=index), vocabulary=Vocabulary(index.facets()),
            store=SqliteStore(state))
        self.services.state = StateThread(self.services.store)
        self.services.index = index
        self.looks = 0
        real = reload.stamp

        def counted(folder: Path):
            self.looks += 1
            return real(folder)

        monkeypatch.setattr(reload, "stamp", counted)
        self.switch = reload.switch
        monkeypatch.setattr(reload, "switch", self._switch)

    def _switch(self, services, fresh) -> None:
        self.switch(services, fresh)
        services.index = fresh

    async def looks_until(self, wanted) -> int:
        """How many looks at the manifest until wanted() holds (a minute at most)."""
        start = self.looks
        for _ in range(int(60 / PERIOD)):
            if wanted():
                return self.looks - start
            await asyncio.sleep(PERIOD / 5)
        raise AssertionError("never happened")

    def degraded(self) -> str:
        return self.services.health.problems.get("catalogue", "")

    async def fault_and_repair(self, fault, repair, kept: bool = True) -> tuple[int, int, str, int]:
        """Looks until degraded after the fault, its reason, looks until ok after the repair, and the generation
        served at the end. kept: the fault leaves the last good generation serving."""
        task = asyncio.create_task(reload.follow_index(self.services, PERIOD))
        await asyncio.sleep(3 * PERIOD)
        generation = self.services.index.manifest["generation"]
        fault()
        to_degraded = await self.looks_until(self.degraded)
        reason = self.degraded()
        assert not kept or self.services.index.manifest["generation"] == generation
        repair()
        to_ok = await self.looks_until(lambda: not self.degraded())
        await asyncio.sleep(3 * PERIOD)
        task.cancel()
        return to_degraded, to_ok, reason, self.services.index.manifest["generation"]


@pytest.fixture
def follower(index_copy, tmp_path, monkeypatch) -> Follower:
    return Follower(index_copy, tmp_path / "state", monkeypatch)


def test_a_torn_manifest(follower, index_copy):
    manifest = (index_copy / "manifest.json").read_bytes()
    generation = json.loads(manifest)["generation"]
    outcome = asyncio.run(follower.fault_and_repair(lambda: (index_copy / "manifest.json").write_text("{ torn"),
                                                    lambda: (index_copy / "manifest.json").write_bytes(manifest)))
    assert outcome[:2] <= (1, 2) and "not valid JSON" in outcome[2] and outcome[3] == generation


def test_a_segment_deleted_under_the_load(follower, index_copy, tmp_path):
    def fault():
        manifest = add_product(index_copy, "new1")
        segment = index_copy / manifest["segments"][-1]["vectors"]["name"]
        shutil.move(segment, tmp_path / segment.name)
        fault.moved = (tmp_path / segment.name, segment)

    to_degraded, to_ok, reason, generation = asyncio.run(
        follower.fault_and_repair(fault, lambda: shutil.move(*fault.moved)))
    assert to_degraded <= 1 and to_ok <= 2
    assert "cannot be served" in reason and ".npy" in reason
    assert generation == read_manifest(index_copy)["generation"] and "new1" in follower.services.index


def test_an_error_nobody_foresaw(follower, index_copy, monkeypatch):
    load = Index.load

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug in a dependency")

    to_degraded, to_ok, reason, _generation = asyncio.run(follower.fault_and_repair(
        lambda: (monkeypatch.setattr(Index, "load", broken), add_product(index_copy, "new2")),
        lambda: monkeypatch.setattr(Index, "load", load)))
    assert to_degraded <= 1 and to_ok <= 2 and "ZeroDivisionError: a bug in a dependency" in reason
    assert "new2" in follower.services.index


def test_milvus_unreachable(follower, index_copy, monkeypatch):
    """A new generation whose rows are in a Milvus that does not answer (nothing listens on its port)."""
    monkeypatch.setattr(milvus, "CONNECT_TIMEOUT", 0.5)
    path = index_copy / "manifest.json"
    good = path.read_bytes()

    def fault():
        manifest = json.loads(good)
        manifest["generation"] += 1
        manifest["store"] = {"kind": "milvus", "uri": "http://127.0.0.1:9", "collection": "fashion"}
        path.write_text(json.dumps(manifest))

    to_degraded, to_ok, reason, _generation = asyncio.run(
        follower.fault_and_repair(fault, lambda: path.write_bytes(good)))
    assert to_degraded <= 1 and to_ok <= 2 and "Milvus" in reason


def test_the_state_failing_while_saved_products_are_compared(follower, index_copy, monkeypatch):
    store = follower.services.store
    store.save_product(7, "new3", "10.00 INR", False)  # saved while it was not in the catalogue
    store.save_product(7, "1000", "1.00 INR", True)
    reads = store.saved_after

    def gone(*args):
        raise OSError("disk I/O error")

    to_degraded, to_ok, reason, _generation = asyncio.run(follower.fault_and_repair(
        lambda: (monkeypatch.setattr(store, "saved_after", gone), add_product(index_copy, "new3")),
        lambda: monkeypatch.setattr(store, "saved_after", reads), kept=False))
    assert to_degraded <= 1 and to_ok <= 2 and "saved products cannot be compared" in reason
    assert [alert.product for alert in store.waiting_alerts(10)] == ["new3"]  # back in stock: queued after all
