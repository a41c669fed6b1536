"""Each `fashion-index` command as a shop owner runs it, with its wall time and peak RSS: a folder build of
400 catalogue photos (the machine's first: it makes the ONNX export), the export alone, `add` of three photos,
`compact`, `query`, a feed build of 400 products on loopback (which copies the export kept by the first build)
followed by a `sync` that changes 20 prices and adds 5 products, and the first build once more with the export kept.

The peak is the command's own (os.wait4's ru_maxrss, as `/usr/bin/time -v` reports it); a small server has
2-4 GB, so each must stay under 2 GB.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from benchmarks.common import DATASET, ROOT
from testbed.feed_server import FeedServer
from testbed.shop import catalogue_shop

BUDGET_MB = 2048


def measured(args: list[str], command: list[str] | None = None, cache: str = "off") -> dict:
    """Run one command, its exports kept in cache (EXPORT_CACHE); its wall time and peak RSS. A failure stops the
    benchmark with its output."""
    started = time.perf_counter()
    command = command or [str(Path(sys.executable).parent / "fashion-index"), *args]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "EXPORT_CACHE": cache})
    output = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"fashion-index {' '.join(args)} failed:\n{output}")
    peak = usage.ru_maxrss // 1024
    return {"command": "fashion-index " + " ".join(args[:1]), "seconds": round(time.perf_counter() - started, 1),
            "peak_rss_mb": peak, "within_2_gb": peak <= BUDGET_MB}


def bench_commands(photos: int = 400) -> dict:
    files = sorted((DATASET / "images").glob("*.jpg"), key=lambda p: int(p.stem))[: photos + 3]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder, extra = Path(tmp) / "photos", Path(tmp) / "more"
        folder.mkdir()
        extra.mkdir()
        for f in files[:photos]:
            (folder / f.name).symlink_to(f)
        for f in files[photos:]:
            (extra / f.name).symlink_to(f)
        index, cache = str(Path(tmp) / "index"), str(Path(tmp) / "exports")
        build = ["build", "--images", str(folder), "--metadata", str(DATASET / "styles.csv"), "--weights", "random:0",
                 "--quiet"]
        rows.append(measured([*build, "--out", index], cache=cache) | {"command": "fashion-index build (exports)"})
        rows.append(measured(["export", "--index", index]))
        rows.append(measured(["add", "--index", index, "--images", str(extra), "--quiet"]))
        rows.append(measured(["compact", "--index", index]))
        rows.append(measured(["query", "--index", index, str(files[0]), "--json"]))
        server = FeedServer().start()
        try:
            shop = catalogue_shop(server, DATASET, photos, extra_every=photos + 1)
            feed_index = str(Path(tmp) / "from-feed")
            rows.append(measured(["build", "--feed", shop.feed(), "--weights", "random:0", "--out", feed_index,
                                  "--quiet"], cache=cache) | {"command": "fashion-index build --feed (export kept)"})
            for product in list(shop.products.values())[:20]:
                product.attributes["price"] = "999.00 INR"
            for f in sorted((DATASET / "images").glob("*.jpg"), key=lambda p: int(p.stem))[photos:photos + 5]:
                with Image.open(f) as image:
                    shop.add(f.stem, image.convert("RGB"))
            rows.append(measured(["sync", "--index", feed_index, "--feed", shop.feed(), "--quiet"]))
        finally:
            server.stop()
        rows.append(measured([*build, "--out", str(Path(tmp) / "again")], cache=cache)
                    | {"command": "fashion-index build (export kept)"})
        rows.append(measured([], [sys.executable, "-m", "benchmarks.commands", str(Path(tmp) / "whole")])
                    | {"command": "build of the whole catalogue, random vectors in place of the model's"})
    return {"photos": photos, "rows": rows}


def build_whole_catalogue(out: Path) -> None:
    """A build of all 44k catalogue photos as `fashion-index build` runs it (TensorFlow and the Keras model
    loaded, the ONNX export made and open, every photo read and decoded, the people share measured, the
    checkpoints and the commit), but with random vectors in place of the model's 30 minutes of embedding: the
    commit's memory grows with the catalogue, the model's does not."""
    import numpy as np

    from indexing import KerasEmbedder, Weights, build_index
    from indexing.extract.embedder import DIM
    from indexing.sources.options import BuildOptions
    from indexing.sources.reference import choose_reference, serving_export

    keras = KerasEmbedder(Weights("random", 0))
    out.mkdir(parents=True)
    runner, _ = serving_export(choose_reference(keras, BuildOptions()), out / "model.onnx")

    class RandomVectors:
        runtime, fingerprint = runner.runtime, keras.fingerprint

        def embed(self, images: np.ndarray) -> np.ndarray:
            vectors = np.random.default_rng(len(images)).standard_normal((len(images), DIM), dtype=np.float32)
            return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    build_index([DATASET / "images"], out / "index", embedder=RandomVectors(), metadata=DATASET / "styles.csv",
                options=BuildOptions(export=False, progress=False))


def run(argv: Sequence[str]) -> dict:
    argparse.ArgumentParser(prog="python -m benchmarks commands", description=__doc__).parse_args(argv)
    return {"commands": bench_commands()}


if __name__ == "__main__":  # python -m benchmarks.commands OUT: the whole-catalogue build, measured by the bench
    build_whole_catalogue(Path(sys.argv[1]))
