"""Search alone over random unit vectors: exact (a full scan), filtered, and the tutorial's NearestNeighbors
fitted per query.

    python -m benchmarks search"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.common import p, synthetic_index
from indexing.extract.embedder import DIM, l2_normalize


def bench_search(sizes: list[int]) -> dict:
    rows = []
    embedder = type("Fake", (), {"fingerprint": {"weights": "random:0"},
                                 "embed": staticmethod(lambda x: np.zeros((len(x), DIM), np.float32))})()
    rng = np.random.default_rng(1)
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            index = synthetic_index(Path(tmp) / "idx", n, embedder)
            queries = l2_normalize(rng.standard_normal((30, DIM), dtype=np.float32))
            index.search(queries[0], 5)
            times = []
            for q in queries:
                started = time.perf_counter()
                index.search(q, 5)
                times.append(time.perf_counter() - started)
            filtered = []
            for q in queries[:10]:
                started = time.perf_counter()
                index.search(q, 5, filters={"gender": ["Women"], "articleType": ["Tops", "Tshirts"]})
                filtered.append(time.perf_counter() - started)
            row = {"vectors": n, "exact_p50_ms": round(p(times), 1), "exact_p95_ms": round(p(times, 95), 1),
                   "filtered_p50_ms": round(p(filtered), 1)}
            if n <= 100_000:
                from sklearn.neighbors import NearestNeighbors

                matrix = np.asarray(index.store.vectors)
                sk = []
                for q in queries[:5]:
                    started = time.perf_counter()
                    NearestNeighbors(n_neighbors=5, algorithm="brute").fit(matrix).kneighbors(q[None])
                    sk.append(time.perf_counter() - started)
                row["tutorial_sklearn_fit_per_query_p50_ms"] = round(p(sk), 1)
            rows.append(row)
            print(row, flush=True)
            del index
    return {"rows": rows}


def run(argv: Sequence[str]) -> dict:
    argparse.ArgumentParser(prog="python -m benchmarks search", description=__doc__).parse_args(argv)
    return {"search": bench_search([44_072, 1_000_000])}
