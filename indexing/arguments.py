"""The `fashion-index` command line: its subcommands and their options (indexing/cli.py runs them)."""

from __future__ import annotations

import argparse

from indexing.about import package_version
from indexing.extract.extractor import RUNTIMES
from indexing.finder.finders import FINDERS

PROG = "fashion-index"


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_embedding_options(command: argparse.ArgumentParser, counted: str) -> None:
    """The options of a command that embeds a catalogue with checkpoints (build, sync)."""
    command.add_argument("--batch-size", type=positive, default=8)
    command.add_argument("--checkpoint-every", type=positive, default=256, metavar="N",
                         help=f"save progress every N {counted} (default 256); a rerun resumes from there")
    command.add_argument("--quiet", action="store_true", help="no progress bars")


def add_no_wait(command: argparse.ArgumentParser) -> None:
    command.add_argument("--no-wait", action="store_true",
                         help="fail at once if another command is writing the index (default: wait for it)")


def add_build(sub: argparse._SubParsersAction) -> None:
    build = sub.add_parser("build", help="embed a folder of product photos, or a product feed, into a new index")
    source = build.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", nargs="+", help="folder(s) of <id>.jpg photos")
    source.add_argument("--feed", metavar="FILE_OR_URL", help="a Google Merchant Center feed (TSV, CSV or XML)")
    build.add_argument("--columns", metavar="ATTR=COLUMN,...", help="map a CSV's columns, e.g. id=ID,title=Name")
    build.add_argument("--metadata", help="CSV with an 'id' column (e.g. styles.csv), with --images")
    build.add_argument("--store", metavar="milvus://HOST:PORT/NAME | FILE.db",
                       help="keep vectors and products in Milvus (or a Milvus Lite file); --out keeps the rest")
    build.add_argument("--milvus-index", metavar="TYPE[:KEY=N,...]",
                       help="with a Milvus --store: FLAT, HNSW, IVF_FLAT or IVF_SQ8, and search parameters "
                       "(e.g. HNSW:ef=256); default: FLAT (exact) below 100k photos, HNSW above")
    build.add_argument("--shard", metavar="I/N", help="with a Milvus --store: embed one Nth of the catalogue (or "
                       "feed); N jobs fill one collection, the last to finish commits the index")
    build.add_argument("--out", required=True, help="index folder to create")
    build.add_argument("--weights", default="imagenet", help="imagenet (default), random[:SEED] or a .h5 file")
    build.add_argument("--limit", type=positive, help="index only the first N images (by id)")
    build.add_argument("--copy-images", action="store_true", help="copy photos into the index folder")
    build.add_argument("--overwrite", action="store_true", help="replace an existing index")
    build.add_argument("--ann", choices=("auto", "on", "off"), default="auto",
                       help="approximate search graph for large catalogues (auto: from 100k products)")
    build.add_argument("--no-export", action="store_true",
                       help="skip the ONNX export (the bot then serves with TensorFlow)")
    add_embedding_options(build, "images")
    add_no_wait(build)


def add_sync(sub: argparse._SubParsersAction) -> None:
    sync = sub.add_parser("sync", help="make a feed-built index follow its feed: add, remove, re-embed what changed")
    sync.add_argument("--index", required=True)
    sync.add_argument("--feed", required=True, metavar="FILE_OR_URL")
    sync.add_argument("--columns", metavar="ATTR=COLUMN,...", help="map a CSV's columns, e.g. id=ID,title=Name")
    sync.add_argument("--json", action="store_true", help="print one JSON summary object")
    sync.add_argument("--workers", type=positive, default=8, help="parallel downloads (default 8)")
    sync.add_argument("--recheck-photos", action="store_true",
                      help="ask the shop's server about every photo, even those its cache headers say are fresh "
                      "(default: as HTTP caches do, and each at least daily)")
    add_embedding_options(sync, "photos embedded")
    add_no_wait(sync)


def add_add(sub: argparse._SubParsersAction) -> None:
    add = sub.add_parser("add", help="add (or replace) products in an index")
    add.add_argument("--index", required=True)
    add.add_argument("--images", nargs="+", required=True, help="folders or image files")
    add.add_argument("--metadata")
    add.add_argument("--batch-size", type=positive, default=8)
    add.add_argument("--quiet", action="store_true")
    add_no_wait(add)


def add_remove(sub: argparse._SubParsersAction) -> None:
    remove = sub.add_parser("remove", help="remove products by id")
    remove.add_argument("--index", required=True)
    remove.add_argument("ids", nargs="+")
    add_no_wait(remove)


def add_compact(sub: argparse._SubParsersAction) -> None:
    compact = sub.add_parser("compact", help="fold the changes that add, remove and sync wrote in place into one "
                             "fresh base (it also happens by itself once they pass a quarter of the catalogue)")
    compact.add_argument("--index", required=True)
    add_no_wait(compact)


def add_query(sub: argparse._SubParsersAction) -> None:
    query = sub.add_parser("query", help="the products most similar to a photo")
    query.add_argument("--index", required=True)
    query.add_argument("photo")
    query.add_argument("-k", type=positive, default=5)
    query.add_argument("--filter", action="append", metavar="COLUMN=VALUE", help="e.g. gender=Women")
    query.add_argument("--json", action="store_true", help="print JSON")
    query.add_argument("--sheet", metavar="OUT.png", help="write a contact sheet (with --items: outlines too)")
    query.add_argument("--items", action="store_true",
                       help="find the garments in the photo and search each one cut out on white")
    query.add_argument("--finder", choices=FINDERS, default="auto", help="with --items: auto (screenshots, people, "
                       "items), border (items on a surface only) or scda (ImageNet weights: see docs/item-finder.md)")
    query.add_argument("--weights", help="the local weights file, for an index built with one")
    query.add_argument("--runtime", choices=RUNTIMES, default="auto", help="auto: ONNX Runtime if exported")


def add_export(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser("export", help="(re)export the index's extractor to ONNX for fast serving")
    export.add_argument("--index", required=True)
    export.add_argument("--int8", action="store_true", help="also make an int8 model (opt-in, see README)")
    export.add_argument("--calibration-images", type=positive, default=200)


def add_fetch_models(sub: argparse._SubParsersAction) -> None:
    fetch = sub.add_parser("fetch-models", help="take MediaPipe's pose models out of its wheel (once, at setup)")
    fetch.add_argument("--dir", help="where to keep them (default: PEOPLE_MODELS, else the user's cache folder)")


def add_info(sub: argparse._SubParsersAction) -> None:
    info = sub.add_parser("info", help="print an index's manifest and counts")
    info.add_argument("--index", required=True)


def add_eval(sub: argparse._SubParsersAction) -> None:
    evaluate = sub.add_parser("eval", help="recall@1/@5 on query photos and category precision@5")
    evaluate.add_argument("--index", required=True)
    evaluate.add_argument("--queries", required=True, help="folder of <id>.jpg query photos")
    evaluate.add_argument("--limit", type=positive, help="use at most N query photos")
    evaluate.add_argument("--sample", type=positive, default=500, help="products for leave-one-out")
    evaluate.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    evaluate.add_argument("--weights", help="the local weights file, for an index built with one")
    evaluate.add_argument("--runtime", choices=RUNTIMES, default="auto", help="auto: ONNX Runtime if exported")
    evaluate.add_argument("--quiet", action="store_true")


def add_calibrate(sub: argparse._SubParsersAction) -> None:
    calibrate = sub.add_parser("calibrate", help="choose the distance past which the bot says \"nothing similar\", "
                               "from photos of catalogue products and photos that are not fashion")
    calibrate.add_argument("--index", required=True)
    calibrate.add_argument("--queries", required=True, help="folder of photos of products that the catalogue sells "
                           "(not its own files: photos taken or rendered otherwise)")
    calibrate.add_argument("--others", required=True, help="folder of photos that are not fashion (pets, food, ...)")
    calibrate.add_argument("--cutoff", type=float, help="judge and store this cut-off instead of choosing one")
    calibrate.add_argument("--finder", choices=FINDERS, default="auto", help="as the bot's ITEM_FINDER")
    calibrate.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    calibrate.add_argument("--weights", help="the local weights file, for an index built with one")
    calibrate.add_argument("--runtime", choices=RUNTIMES, default="auto", help="auto: ONNX Runtime if exported")
    calibrate.add_argument("--quiet", action="store_true")


def parser() -> argparse.ArgumentParser:
    """Every subcommand; args.command names the one given."""
    top = argparse.ArgumentParser(prog=PROG, description="Build and query a visual fashion index.")
    top.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    top.add_argument("--version", action="version", version=f"{PROG} {package_version()}")
    sub = top.add_subparsers(dest="command", required=True)
    add_build(sub)
    add_sync(sub)
    add_add(sub)
    add_remove(sub)
    add_compact(sub)
    add_query(sub)
    add_export(sub)
    add_fetch_models(sub)
    add_info(sub)
    add_eval(sub)
    add_calibrate(sub)
    return top
