"""Catalogue indexing: the shared ResNet50 extractor, the on-disk index and its search."""

from indexing.build import add_to_index, build_index, remove_from_index
from indexing.embedder import Embedder, KerasEmbedder, Weights
from indexing.errors import FashionIndexError
from indexing.extractor import open_embedder, verify_embedder
from indexing.images import load_image
from indexing.index import Hit, Index

__all__ = [
    "Embedder", "FashionIndexError", "Hit", "Index", "KerasEmbedder", "Weights",
    "add_to_index", "build_index", "load_image", "open_embedder", "remove_from_index", "verify_embedder",
]
