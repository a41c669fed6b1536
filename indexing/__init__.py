"""Catalogue indexing: the shared ResNet50 extractor, the on-disk index and its search."""

from indexing.errors import FashionIndexError
from indexing.extract.embedder import Embedder, KerasEmbedder, Weights
from indexing.extract.extractor import open_embedder, verify_embedder
from indexing.extract.images import load_image
from indexing.sources.build import add_to_index, build_index, remove_from_index
from indexing.store.index import Hit, Index

__all__ = [
    "Embedder", "FashionIndexError", "Hit", "Index", "KerasEmbedder", "Weights",
    "add_to_index", "build_index", "load_image", "open_embedder", "remove_from_index", "verify_embedder",
]
