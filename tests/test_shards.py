"""`fashion-index build --shard I/N`: two processes fill one Milvus collection, and the result equals one build."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from indexing import Index
from indexing.sources.feed_shards import build_feed_shard
from indexing.sources.options import BuildOptions
from indexing.sources.sync import build_from_feed
from testbed.shop import generated_shop
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


# The session's export is in the machine's cache (exported_index): the shards' commands copy it, as the second
# and later builds on a shop's machine do, rather than load TensorFlow.
def test_two_shards_as_two_processes_equal_one_unsharded_build(milvus, catalogue, built_index, exported_index,
                                                               tmp_path):
    images, styles = catalogue
    out = tmp_path / "sharded"
    jobs = [subprocess.Popen([sys.executable, "-m", "indexing", "build", "--images", str(images), "--metadata",
                              str(styles), "--out", str(out), "--weights", "random:0", "--quiet",
                              "--store", milvus.spec, "--shard", shard, "--checkpoint-every", "4"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for shard in ("1/2", "2/2")]
    outputs = [job.communicate(timeout=300) for job in jobs]
    assert all(job.returncode == 0 for job in jobs), outputs
    said = " ".join(stdout for stdout, _ in outputs)
    assert "12 embedded" in said and "24 products in the index" in said

    sharded, single = Index.load(out), Index.load(built_index)
    assert sorted(sharded.ids) == sorted(single.ids) and sharded.count == 24
    assert [sharded.product(pid) for pid in single.ids] == [single.product(pid) for pid in single.ids]
    assert max(np.abs(sharded.vector(pid) - single.vector(pid)).max() for pid in single.ids) < 1e-5
    query = single.vector("1009")
    assert [h.id for h in sharded.search(query, 5)] == [h.id for h in single.search(query, 5)]


def test_a_feed_in_two_shards_equals_one_feed_build(milvus, server, embedder, exported_index, tmp_path):
    shop = generated_shop(server, 12, extra_every=3)  # 1000, 1003, 1006, 1009 have three photos
    feed = shop.feed()
    out = tmp_path / "sharded"  # one folder for both jobs: the photos the bot sends are all in feed-images
    # One after the other (the test above runs shards as processes, at once).
    options = BuildOptions(export=False, progress=False, store=milvus.spec, checkpoint_every=4)
    first = build_feed_shard(feed, out, (1, 2), embedder=embedder, options=options)
    assert first.indexed == 0 and "other shards are still running" in first.exported
    # The last shard as a shop runs it: the command, in a process of its own. (In this process, the CLI's logging
    # set-up would outlive the test's captured output, and pymilvus logs into it.)
    job = subprocess.run([sys.executable, "-m", "indexing", "build", "--feed", feed, "--out", str(out), "--weights",
                          "random:0", "--quiet", "--store", milvus.spec, "--shard", "2/2",
                          "--checkpoint-every", "4"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert job.returncode == 0, job.stderr
    said = job.stdout
    assert f"{20 - first.added} embedded" in said and "20 photos of products in the index" in said

    single = tmp_path / "single"
    build_from_feed(feed, single, embedder=embedder, options=BuildOptions(export=False, progress=False))
    sharded, one = Index.load(out), Index.load(single)
    assert sorted(sharded.ids) == sorted(one.ids) and sharded.count == one.count == 20  # a row per photo
    assert [sharded.product(pid) for pid in one.ids] == [one.product(pid) for pid in one.ids]  # main photo first
    photos = {(r["id"], r["photo"]): r for r in one.store.records()}
    assert sorted(photos) == sorted((r["id"], r["photo"]) for r in sharded.store.records())
    found = sharded.store.photo_vectors(photo for _, photo in photos)
    assert max(np.abs(found[photo] - vector).max() for photo, vector in one.store.photo_vectors(
        photo for _, photo in photos).items()) < 1e-5
    assert all((out / sharded.product(pid)["image"]).is_file() for pid in one.ids)
    query = one.vector("1006")
    assert [h.id for h in sharded.search(query, 5)] == [h.id for h in one.search(query, 5)]
