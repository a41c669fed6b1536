"""Turn benchmarks/results/*.json into one markdown table per section (benchmarks/results/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

TITLES = {
    "build": "Index build throughput (1000 catalogue images, 60x80 JPEG)",
    "latency": "Photo to top-5 ids, by stage (p50 over repeats; search over 44,072 vectors)",
    "search": "Search alone (random unit vectors; exact = full scan)",
    "memory": "Serving process: start to ready, peak RSS (44,072 products loaded, 5 queries)",
    "bot": "The bot (`python -m bot`) against the fake Bot API on loopback, 44,072 products",
    "ann": "Approximate search at scale (real-photo vectors, perturbed up to size)",
    "resize": "Resize policy (random weights: geometry agreement only, not recommendation quality)",
    "feed": "A product feed on loopback: 2,000 products built from the feed and from a folder of the same "
            "photos (same ONNX model), then a sync of the unchanged feed",
    "commands": "Each `fashion-index` command's wall time and peak RSS (400 catalogue photos; a feed of 400 on "
                "loopback, then a sync changing 20 prices and adding 5 products)",
    "items": "The item finder on composites with known answers, tuning backgrounds (2,000-product index)",
    "items-held-out": "The same on held-out backgrounds, never used for tuning",
    "items-real": "The item finder on real photos: garments at home (boxes drawn for them) and people in the "
                  "street, tuning and held-out parts",
    "first-run": "`make run` with no index: the bot serves while the full catalogue is indexed",
    "milvus": "Milvus (standalone, its index by size) against the index folder: write, search, a 1% change, a bot",
    "bot-scaled": "One bot replica on Milvus Lite + PostgreSQL against the default (folder + SQLite), same run",
    "calibration": "\"Nothing similar\": the cut-off chosen on half the photos, judged on the held-out half (RANDOM "
                   "weights: the calibration at work, not how ImageNet's model separates garments from cats)",
    "alerts": "Alerts on saved products through the fake Bot API: 429s injected, a restart in the middle",
    "alerts-replicas": "The same with two bot replicas sharing PostgreSQL; the one sending is restarted",
    "alerts-latency-150ms": "The same (one bot) with every Bot API answer taking 150 ms, as over the internet",
    "state-month-sqlite": "A month of a busy shop's state on SQLite: 200,000 photos, 20,000 users, 5,000 saves, 300 "
                          "syncs, on a simulated clock with the hourly clean-up",
    "state-month-postgresql": "The same month on PostgreSQL (a VACUUM at the end of each simulated day)",
    "soak": "Faults over time: steady traffic, a feed sync every 5 minutes with adds alongside, the bot killed "
            "with -9, PostgreSQL restarted",
    "soak-5min": "The same for 5 minutes, a sync every minute",
    "soak-milvus": "The same with the catalogue in a Milvus 2.3 standalone server, which is restarted too",
}


def table(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_report(results: Path) -> Path:
    parts = ["# Benchmark results", "",
             "Written by `python -m benchmarks NAME`. ResNet50 with random weights: times and memory are real, "
             "no figure here says anything about recommendation quality.", ""]
    others = sorted(p.stem for p in results.glob("bot-*.json") if p.stem not in ("bot-transcript", "bot-scaled"))
    titles = {**TITLES, **{name: f"The same, with the bot of another checkout (`--bot-code`): {name[4:]}"
                           for name in others}}
    for name in sorted(titles, key=lambda n: list(TITLES).index(n.split("-")[0]) if n.split("-")[0] in TITLES else 99):
        path = results / f"{name}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        rows = data.get("rows") or ([{"kind": kind, **figures} for kind, figures in data["kinds"].items()]
                                    if "kinds" in data else
                                    [{k: v for k, v in data.items() if k not in ("machine", "when", "command")
                                      and not isinstance(v, list)}])
        parts += [f"## {titles[name]}", "", f"`{data.get('command', '')}` at {data.get('when', '?')} on "
                  f"{data.get('machine', {}).get('cores', '?')} cores", "", table(rows), ""]
    out = results / "README.md"
    out.write_text("\n".join(parts))
    return out
