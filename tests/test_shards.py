"""`fashion-index build --shard I/N`: two processes fill one Milvus collection, and the result equals one build."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from indexing import Index
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_two_shards_as_two_processes_equal_one_unsharded_build(milvus, catalogue, built_index, tmp_path):
    images, styles = catalogue
    out = tmp_path / "sharded"
    jobs = [subprocess.Popen([sys.executable, "-m", "indexing", "build", "--images", str(images), "--metadata",
                              str(styles), "--out", str(out), "--weights", "random:0", "--no-export", "--quiet",
                              "--store", milvus.spec, "--shard", shard, "--checkpoint-every", "4"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for shard in ("1/2", "2/2")]
    outputs = [job.communicate(timeout=300) for job in jobs]
    assert all(job.returncode == 0 for job in jobs), outputs
    said = " ".join(stdout for stdout, _ in outputs)
    assert "12 embedded" in said and "24 products in the index" in said

    sharded, single = Index.load(out), Index.load(built_index)
    assert list(sharded.ids) == list(single.ids) and sharded.count == 24
    assert [sharded.product(pid) for pid in single.ids] == [single.product(pid) for pid in single.ids]
    assert np.abs(np.asarray(sharded.vectors) - np.asarray(single.vectors)).max() < 1e-5
    query = single.vector("1009")
    assert [h.id for h in sharded.search(query, 5)] == [h.id for h in single.search(query, 5)]
