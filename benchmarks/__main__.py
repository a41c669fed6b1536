"""`python -m benchmarks NAME [options]`: run one benchmark (or `all`: build, latency, search, memory, bot),
write each of its results to benchmarks/results/<name>.json and rebuild benchmarks/results/README.md.

Random weights throughout: times and memory are real, no figure here measures recommendation quality.
`python -m benchmarks NAME --help` lists a benchmark's options.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time

from benchmarks.common import DATASET, RESULTS, machine
from benchmarks.report import write_report

# name on the command line -> module; each module has run(argv) -> {result name: result}
BENCHES = {
    "build": "build", "latency": "latency", "search": "search", "memory": "memory", "bot": "bot_latency",
    "bot-scaled": "bot_scaled", "ann": "ann_scale", "milvus": "milvus_scale", "feed": "feed_sync",
    "first-run": "first_run", "commands": "commands", "items": "items", "outlines": "outlines",
    "resize": "resize_policy", "shop-transcript": "shop_transcript", "calibration": "calibration", "alerts": "alerts",
    "state-month": "state_month", "soak": "soak",
}
ALL = ("build", "latency", "search", "memory", "bot")


def main(argv: list[str]) -> int:
    # The benchmarks' feeds and photos are served on loopback, which a real index refuses unless allowed.
    os.environ.setdefault("FEED_ALLOWED_NETWORKS", "127.0.0.1")
    if not argv or argv[0] not in (*BENCHES, "all"):
        print(__doc__.strip() + "\n\nbenchmarks: " + ", ".join(BENCHES), file=sys.stderr)
        return 2
    if not (DATASET / "images").is_dir():
        print(f"the catalogue is not at {DATASET}; set FASHION_DATASET", file=sys.stderr)
        return 1
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in ALL if argv[0] == "all" else argv[:1]:
        print(f"== {name}", flush=True)
        options = [] if argv[0] == "all" else argv[1:]
        results = importlib.import_module(f"benchmarks.{BENCHES[name]}").run(options)
        for stem, result in results.items():
            if isinstance(result, dict):
                result.update({"machine": machine(), "when": time.strftime("%Y-%m-%d %H:%M:%S"),
                               "command": " ".join(["python -m benchmarks", name, *options])})
            (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
            print(json.dumps(result, indent=2, ensure_ascii=False)[:4000], flush=True)
    write_report(RESULTS)
    print(f"peak RSS of this benchmark process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB")
    return 0


sys.exit(main(sys.argv[1:]))
