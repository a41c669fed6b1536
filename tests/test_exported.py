"""The ONNX export serves the same vectors as TensorFlow, and is tied to its index."""

from __future__ import annotations

import re

import numpy as np
import pytest

from indexing import Index, open_embedder
from indexing.errors import FashionIndexError, IndexFormatError
from indexing.extract.embedder import l2_normalize
from indexing.extract.exported import OnnxEmbedder
from indexing.extract.images import load_image
from indexing.store.files import checked_file


def test_onnx_vectors_equal_tensorflow_and_rank_the_same(exported_index, catalogue, embedder):
    index = Index.load(exported_index)
    served = open_embedder(index)
    assert isinstance(served, OnnxEmbedder)
    photos = np.stack([load_image(p) for p in sorted(catalogue[0].glob("*.jpg"))])
    reference, fast = embedder.features(photos), served.features(photos)
    assert np.max(np.abs(fast - reference)) / np.max(np.abs(reference)) < 1e-4
    for a, b in zip(l2_normalize(reference), l2_normalize(fast), strict=True):  # what embed() returns
        assert [h.id for h in index.search(a, 5)] == [h.id for h in index.search(b, 5)]


def test_runtime_choice_and_manifest_entry(exported_index):
    index = Index.load(exported_index)
    entry = index.manifest["files"]["extractor"]
    assert entry["name"] == "extractor.onnx" and entry["max_relative_difference"] < 1e-4
    assert open_embedder(index, runtime="tensorflow").runtime == "tensorflow"


def test_swapped_onnx_file_is_refused(exported_index, tmp_path):
    import shutil

    copy = tmp_path / "idx"
    shutil.copytree(exported_index, copy)
    data = bytearray((copy / "extractor.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / "extractor.onnx").write_bytes(bytes(data))
    index = Index.load(copy)
    with pytest.raises(IndexFormatError, match="checksum"):
        checked_file(copy, index.manifest, "extractor")
    with pytest.raises(IndexFormatError, match="checksum"):
        open_embedder(index)


def test_int8_is_opt_in_and_eval_reports_its_agreement(exported_index, catalogue, tmp_path, capsys):
    import shutil

    from indexing.cli import main

    copy = tmp_path / "idx"
    shutil.copytree(exported_index, copy)
    assert open_embedder(Index.load(copy)).runtime == "onnxruntime"  # int8 is never chosen by itself
    with pytest.raises(FashionIndexError, match="export --int8"):
        open_embedder(Index.load(copy), runtime="onnxruntime-int8")
    assert main(["export", "--index", str(copy), "--int8", "--calibration-images", "16"]) == 0
    assert "EXTRACTOR_RUNTIME=onnxruntime-int8" in capsys.readouterr().out
    index = Index.load(copy)
    assert index.manifest["files"]["extractor_int8"]["calibration_images"] == 16
    assert open_embedder(index).runtime == "onnxruntime"
    assert open_embedder(index, runtime="onnxruntime-int8").runtime == "onnxruntime-int8"
    code = main(["eval", "--index", str(copy), "--queries", str(catalogue[0]), "--runtime", "onnxruntime-int8",
                 "--sample", "5", "--limit", "8", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "| top-5 overlap of int8 with fp32" in out
    assert re.search(r"\| query photos +\| 8 ", out)  # --limit 8 of the catalogue's 24
