"""Item finders by name: the bot's ITEM_FINDER setting and the CLI's --finder."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from indexing.errors import FashionIndexError
from indexing.extract.embedder import probe_images
from indexing.finder.background import BorderFinder
from indexing.finder.items import ItemFinder

FINDERS = ("auto", "border", "scda")


def outfit_first(manifest: Mapping[str, Any]) -> bool:
    """Whether the catalogue photographs its products worn (measured at build time): then a person's whole
    outfit is searched first. An index built before it was measured searches the garment first."""
    from indexing.finder.people_finder import OUTFIT_FIRST

    return float(manifest.get("people", {}).get("share", 0.0)) >= OUTFIT_FIRST


def open_finder(name: str, embedder: Any, manifest: Mapping[str, Any] | None = None, models: Path | None = None
                ) -> ItemFinder:
    """auto (the default): screenshots, then people (MediaPipe's pose models), then the surface model;
    border: the surface model alone (no model pass); scda: the extractor's activation map chooses the item to
    search first (meaningful with ImageNet weights only). manifest: the index's, which says whether its
    catalogue is worn; models: where the pose models are (default: models_dir()). Fails now, not on the first
    photo, where a model is missing."""
    if name == "auto":
        from indexing.finder.people import PeopleModel
        from indexing.finder.people_finder import PeopleFinder
        from indexing.finder.people_models import models_dir
        from indexing.finder.screens import ScreenFinder

        people = PeopleFinder(BorderFinder(), PeopleModel(models or models_dir()), outfit_first(manifest or {}))
        return ScreenFinder(people)
    if name == "border":
        return BorderFinder()
    if name == "scda":
        from indexing.finder.scda import ScdaFinder

        if not callable(getattr(embedder, "activation_maps", None)):
            raise FashionIndexError(f"the {embedder.runtime} extractor gives no activation map for SCDA")
        embedder.activation_maps(probe_images()[:1])  # an export from before SCDA says so here
        return ScdaFinder(embedder)
    raise FashionIndexError(f"unknown item finder {name!r}: choose one of {', '.join(FINDERS)}")
