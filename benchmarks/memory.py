"""A serving process's start to ready and peak RSS with 44,072 products, on ONNX Runtime and on TensorFlow.

    python -m benchmarks memory"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import ROOT, big_jpeg, synthetic_index
from indexing import KerasEmbedder, Weights
from indexing.store.index import Index

SERVE_PROBE = """
import re, sys, time, json
from pathlib import Path
t0 = time.perf_counter()
from indexing import Index, load_image, open_embedder
index = Index.load(sys.argv[1])
embedder = open_embedder(index, runtime=sys.argv[2], cache_dir=Path(sys.argv[4]))  # as the bot does
ready = time.perf_counter() - t0
photo = open(sys.argv[3], "rb").read()
for _ in range(5):
    index.search(embedder.embed(load_image(photo)[None])[0], 5)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
status = open("/proc/self/status").read()
peak, now = (int(re.search(key + r":\\s+(\\d+)", status).group(1)) // 1024 for key in ("VmHWM", "VmRSS"))
print(json.dumps({"ready_s": round(ready, 2), "peak_rss_mb": peak, "rss_after_mb": now}))
"""


def bench_memory() -> dict:
    from indexing.extract.extractor import open_embedder
    from indexing.sources.build import export_extractor

    embedder = KerasEmbedder(Weights("random", 0))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        index = synthetic_index(Path(tmp) / "idx", 44_072, embedder)
        export_extractor(index.directory, embedder)
        index = Index.load(index.directory)
        photo = Path(tmp) / "photo.jpg"
        photo.write_bytes(big_jpeg((1280, 960)))
        for runtime in ("onnxruntime", "tensorflow"):
            cache = Path(tmp) / "models"
            if runtime == "onnxruntime":  # the optimised model is made once per machine: not timed here
                open_embedder(index, runtime=runtime, cache_dir=cache)
            done = subprocess.run([sys.executable, "-c", SERVE_PROBE, str(index.directory), runtime, str(photo),
                                   str(cache)],
                                  cwd=ROOT, capture_output=True, text=True, check=True)
            rows.append({"runtime": runtime, "products": 44_072, **json.loads(done.stdout.strip().splitlines()[-1])})
            print(rows[-1], flush=True)
    return {"rows": rows}


def run(argv: Sequence[str]) -> dict:
    argparse.ArgumentParser(prog="python -m benchmarks memory", description=__doc__).parse_args(argv)
    return {"memory": bench_memory()}
