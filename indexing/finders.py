"""Item finders by name: the bot's ITEM_FINDER setting and the CLI's --finder."""

from __future__ import annotations

from typing import Any

from indexing.background import BorderFinder
from indexing.embedder import probe_images
from indexing.errors import FashionIndexError
from indexing.items import ItemFinder

FINDERS = ("border", "scda")


def open_finder(name: str, embedder: Any) -> ItemFinder:
    """border: the surface model alone (the default, no model pass); scda: the extractor's activation map
    chooses the item to search first (meaningful with ImageNet weights only). Fails now, not on the first
    photo, where the extractor cannot give the map."""
    if name == "border":
        return BorderFinder()
    if name == "scda":
        from indexing.scda import ScdaFinder

        if not callable(getattr(embedder, "activation_maps", None)):
            raise FashionIndexError(f"the {embedder.runtime} extractor gives no activation map for SCDA")
        embedder.activation_maps(probe_images()[:1])  # an export from before SCDA says so here
        return ScdaFinder(embedder)
    raise FashionIndexError(f"unknown item finder {name!r}: choose one of {', '.join(FINDERS)}")
