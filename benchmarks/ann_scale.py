"""Approximate search at 100k and 1M products, from vectors of real catalogue photos.

The real vectors come from an index built on the catalogue (`--real-index DIR`). Each is copied with
Gaussian noise scaled so that a copy lies about as far from its source as the source's nearest real
neighbour does: the scaled-up catalogue keeps the real one's structure instead of being uniform noise.
Queries are fresh noisy copies that are not in the index. Recall@5 is against exact search.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, p
from indexing.extract.embedder import l2_normalize
from indexing.store.files import write_index
from indexing.store.index import Index

QUERIES = 200

# argv: index folder, queries .npy, how many of the queries to time again with an exact scan.
MEASURE = """
import json, re, sys, time
import numpy as np
t0 = time.perf_counter()
from indexing.store.index import Index
index = Index.load(sys.argv[1])
load_s = time.perf_counter() - t0
queries = np.load(sys.argv[2])
found, times = [], []
for q in queries:
    started = time.perf_counter()
    found.append([h.id for h in index.search(q, 5, collapse_duplicates=False)])
    times.append(time.perf_counter() - started)
# Memory as served: before the exact scans below page every vector in.
status = open("/proc/self/status").read()
peak = int(re.search(r"VmHWM:\\s+(\\d+)", status).group(1)) // 1024
index.store.graph = None
exact_times = []
for q in queries[:int(sys.argv[3])]:
    started = time.perf_counter()
    index.search(q, 5, collapse_duplicates=False)
    exact_times.append(time.perf_counter() - started)
print(json.dumps({"load_s": load_s, "times": times, "exact_times": exact_times, "found": found, "peak_mb": peak}))
"""


def perturbed(base: np.ndarray, n: int, sigma: float, seed: int, out: np.ndarray | None = None) -> np.ndarray:
    """n unit vectors, each a real one plus noise; out: where to write them (a memory-mapped file at 1M)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, base.shape[1]), np.float32) if out is None else out
    for start in range(0, n, 50_000):
        stop = min(n, start + 50_000)
        noise = rng.standard_normal((stop - start, base.shape[1]), dtype=np.float32) * sigma
        out[start:stop] = l2_normalize(base[np.arange(start, stop) % len(base)] + noise)
    return out


def exact_top5(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    best = np.full((len(queries), 5), -1)
    scores = np.full((len(queries), 5), -np.inf, np.float32)
    for start in range(0, len(vectors), 100_000):
        sims = queries @ vectors[start : start + 100_000].T
        merged = np.concatenate([scores, sims], axis=1)
        ids = np.concatenate([best, np.arange(start, start + sims.shape[1])[None].repeat(len(queries), 0)], 1)
        order = np.argsort(-merged, axis=1)[:, :5]
        scores, best = np.take_along_axis(merged, order, 1), np.take_along_axis(ids, order, 1)
    return best


def nearest_distances(base: np.ndarray, block: int = 2048) -> np.ndarray:
    """Each vector's squared distance to its nearest other vector, a block of rows at a time: the whole
    similarity matrix of the 44k catalogue (7.8 GB) crashed the benchmark."""
    out = np.empty(len(base), np.float32)
    for start in range(0, len(base), block):
        sims = base[start : start + block] @ base.T
        rows = np.arange(sims.shape[0])
        sims[rows, start + rows] = -np.inf  # not itself
        out[start : start + block] = 2 - 2 * sims.max(axis=1)
    return out


def bench_ann(real_index: Path, sizes: tuple[int, ...] = (100_000, 1_000_000)) -> dict:
    base = np.asarray(Index.load(real_index).store.vectors, dtype=np.float32)
    nearest = nearest_distances(base)
    sigma = float(np.sqrt(np.median(np.maximum(nearest, 0))) / np.sqrt(base.shape[1]))
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            vectors = perturbed(base, n, sigma, seed=n)
            queries = perturbed(base, QUERIES, sigma, seed=1)
            truth = exact_top5(vectors, queries)
            products = [{"id": str(i), "image": f"{i % len(base)}.jpg"} for i in range(n)]
            started = time.perf_counter()
            write_index(Path(tmp) / "idx", vectors=vectors, products=products, fingerprint={"weights": "random:0"},
                        probe=np.zeros((2, base.shape[1])), ann="on")
            build_s = time.perf_counter() - started
            del vectors, products
            np.save(Path(tmp) / "q.npy", queries)
            done = subprocess.run([sys.executable, "-c", MEASURE, f"{tmp}/idx", f"{tmp}/q.npy", "10"], cwd=ROOT,
                                  capture_output=True, text=True, check=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            recall = np.mean([len(set(f) & {str(i) for i in t}) / 5
                              for f, t in zip(result["found"], truth, strict=True)])
            graph = next(Path(tmp, "idx").glob("ann-*.faiss")).stat().st_size
            rows.append({
                "products": n, "real_vectors": len(base), "recall@5_vs_exact": round(float(recall), 4),
                "ann_p50_ms": round(p(result["times"]), 2), "ann_p95_ms": round(p(result["times"], 95), 2),
                "exact_p50_ms": round(p(result["exact_times"]), 1), "build_s": round(build_s),
                "graph_mb": round(graph / 2**20), "load_s": round(result["load_s"], 1),
                "serving_peak_rss_mb": result["peak_mb"],
            })
            print(rows[-1], flush=True)
    return {"rows": rows, "sigma": sigma, "queries": QUERIES,
            "note": "products carry only id and image here; per-product metadata adds to memory"}


def run(argv: Sequence[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks ann")
    parser.add_argument("--real-index", required=True, help="an index of real catalogue photos to scale up")
    return {"ann": bench_ann(Path(parser.parse_args(argv).real_index))}
