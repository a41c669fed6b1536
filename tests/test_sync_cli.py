"""`fashion-index build --feed` and `sync` as a shop owner runs them: catalogue products served on loopback,
the feed changed, a sync killed with -9 and rerun."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import numpy as np
import pytest

from indexing import Index, load_image
from testbed.drawing import draw_product
from testbed.shop import catalogue_shop
from tests.conftest import ROOT, wait_for_file

pytestmark = pytest.mark.slow


def fashion_index(*argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "indexing", *argv], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    return out


@pytest.mark.usefixtures("exported_index")  # the session's export is in the machine's cache: the build copies it
def test_build_change_sync_and_kill_9_mid_sync(server, shared_catalogue, tmp_path, embedder):
    shop = catalogue_shop(server, shared_catalogue, 24)  # 12 of them with two more photos: 48 photos
    out = tmp_path / "idx"
    # Exported, as a shop would build it: the syncs then embed with ONNX Runtime and never load TensorFlow.
    built = finished(fashion_index("build", "--feed", shop.feed(), "--out", str(out), "--weights", "random:0",
                                   "--quiet"))
    assert "24 products in the index: 24 added" in built and "48 embedded" in built
    assert "oneDNN" not in built

    # 6 added, 6 removed, 3 photos changed, 8 prices changed
    ids = list(shop.products)
    for pid in ids[:6]:
        del shop.products[pid]
    extra = sorted((shared_catalogue / "images").glob("*.jpg"), key=lambda p: int(p.stem))[24:54]
    from PIL import Image
    for path in extra[:6]:
        with Image.open(path) as image:
            shop.add(path.stem, image.convert("RGB"))
    for i, pid in enumerate(ids[7:13:2]):  # products with a single photo
        shop.replace_photo(pid, draw_product("Red", "Shoes", seed=i))
    for pid in ids[14:22]:
        shop.products[pid].attributes["price"] = "499.00 INR"
    summary = json.loads(finished(fashion_index("sync", "--index", str(out), "--feed", shop.feed(), "--json")))
    assert summary == {"added": 6, "removed": 6, "updated": 11, "embedded": 9, "unchanged": 7, "failed": 0}

    # 24 more products; the sync is killed after its second checkpoint, then run again
    for path in extra[6:]:
        with Image.open(path) as image:
            shop.add(path.stem, image.convert("RGB"))
    feed = shop.feed()
    victim = fashion_index("sync", "--index", str(out), "--feed", feed, "--checkpoint-every", "6", "--quiet")
    wait_for_file(out / ".partial-sync", "chunk-000002.json", victim)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert Index.load(out).product_count == 24  # the old generation, whole
    downloads = server.downloads()
    summary = json.loads(finished(fashion_index("sync", "--index", str(out), "--feed", feed, "--json")))
    assert summary["added"] == 24 and summary["embedded"] == 24 and summary["removed"] == 0
    assert server.downloads() - downloads < 24  # what the killed run fetched stays cached
    index = Index.load(out)
    assert index.product_count == 48 and not (out / ".partial-sync").exists()
    newest = extra[-1]
    found = index.search(embedder.embed(load_image(newest)[None])[0], 1)[0]
    assert found.id == newest.stem and found.meta["title"] == f"Product {newest.stem}"
    assert np.isfinite(np.asarray(index.store.vectors)).all()
