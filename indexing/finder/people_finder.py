"""The finder for photos of people: the outfit, and its garments between body points, before anything else."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PIL import Image
from scipy import ndimage

from indexing.finder.items import MAX_ITEMS, Finding, Item, ItemFinder, mask_box, scale_box
from indexing.finder.people import ANKLES, CORE, HEELS, HIPS, KNEES, SHOULDERS, TOES, PeopleModel, Person, person_box

# A catalogue in which at least this share of the photos show a person (measured at build time, see
# indexing/sources/catalogue_people.py) photographs products worn: a worn outfit is searched whole. Below it the
# catalogue is packshots, and the garment is searched on its own.
OUTFIT_FIRST = 0.2
MIN_PART = 0.04  # a garment region smaller than this share of its person is a sliver, not a garment
INSIDE = 0.5  # another item with at least this share of its area on a person's mask is part of that person
HELD = 0.8  # a quiet surface's items holding this share of what the model is sure is a person outline them


def band(person: Person, size: tuple[int, int], top: float, bottom: float) -> np.ndarray:
    """The person's mask between two heights of the photo (its pixels)."""
    gh = person.mask.shape[0]
    y0, y1 = max(0, int(top * gh / size[1])), min(gh, int(np.ceil(bottom * gh / size[1])))
    part = np.zeros_like(person.mask)
    part[y0:y1] = person.mask[y0:y1]
    return part


def region(person: Person, size: tuple[int, int], kind: str, top: float, bottom: float) -> Item | None:
    mask = band(person, size, top, bottom)
    solid = mask > 0.5
    if solid.sum() < MIN_PART * (person.mask > 0.5).sum():
        return None
    return Item(mask_box(solid, size), mask, person.score, cue="person", kind=kind)


def person_items(person: Person, size: tuple[int, int]) -> list[Item]:
    """The outfit, then the top (shoulders to hips), the bottom (hips to ankles, or to the knees where the
    ankles are out of sight) and the shoes (below the ankles), each where its body points are in view."""
    items = [Item(person.box, person.mask, person.score, cue="person", kind="outfit")]
    if person.seen(SHOULDERS, size) and not person.seen(HIPS, size):  # a portrait: the top runs out of the frame
        shoulders = person.level(SHOULDERS)
        width = abs(float(person.points[SHOULDERS[0], 0] - person.points[SHOULDERS[1], 0]))
        items.append(region(person, size, "top", shoulders - 0.3 * width, size[1]))
    if person.seen(SHOULDERS, size) and person.seen(HIPS, size):
        shoulders, hips = person.level(SHOULDERS), person.level(HIPS)
        torso = hips - shoulders
        # The collar sits above the shoulder points, a top's hem a little below the hips.
        items.append(region(person, size, "top", shoulders - 0.2 * torso, hips + 0.12 * torso))
        legs_end = ANKLES if person.seen(ANKLES, size) else KNEES if person.seen(KNEES, size) else None
        if legs_end is not None:
            items.append(region(person, size, "bottom", hips - 0.08 * torso, person.level(legs_end) + 0.05 * torso))
    if person.seen(ANKLES, size) and person.seen(KNEES, size):
        shin = person.level(ANKLES) - person.level(KNEES)
        feet = max(person.level(HEELS), person.level(TOES))
        items.append(region(person, size, "shoes", person.level(ANKLES) - 0.25 * shin, feet + 0.15 * shin))
    return [item for item in items if item is not None]


def part_of(item: Item, body_mask: np.ndarray) -> bool:
    """The item lies mostly on the person (their shirt, their face): the garments already offer it. A bag held
    beside the body, or a product in front of someone, is not covered by their mask and stays."""
    solid = item.mask > 0.5
    if not solid.any():
        return False
    return bool(on_mask(body_mask, solid.shape)[solid].mean() >= INSIDE)


def on_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A mask's solid pixels at another scale."""
    resized = Image.fromarray(mask.astype(np.float32)).resize(shape[::-1], Image.Resampling.BILINEAR)
    return np.asarray(resized) > 0.5


def within_items(person: Person, found: Finding, size: tuple[int, int]) -> Person:
    """The person ending where a quiet surface's items end. The pose model carries a body on past what the
    photo shows (legs below a model shot's cut); on a quiet surface, the surface knows where things end. Only
    the extent is cut, not the mask inside it: a white shirt before a white wall is explained by the wall and is
    still the person. And only where the surface's items hold most of what the model is sure of, so that both
    see the same person."""
    if not found.quiet:
        return person
    unexplained = np.zeros(person.mask.shape, bool)
    for item in found.items:
        unexplained |= on_mask(item.mask, person.mask.shape)
    unexplained = ndimage.binary_dilation(unexplained, iterations=2)
    core = person.mask > CORE
    if (core & unexplained).sum() < HELD * core.sum():
        return person
    box = person_box(person.mask * unexplained, size)
    gh, gw = person.mask.shape
    x0, y0, x1, y1 = scale_box(box, gw / size[0], gh / size[1], (gw, gh))
    extent = np.zeros(person.mask.shape, bool)
    extent[y0:y1, x0:x1] = True
    return replace(person, box=box, mask=person.mask * extent)


def first_searched(items: list[Item], outfit_first: bool) -> int:
    """The outfit for a catalogue of model shots; else the first garment found, top before bottom before shoes."""
    order = ("outfit",) if outfit_first else ("top", "bottom", "shoes", "outfit")
    for kind in order:
        for n, item in enumerate(items):
            if item.kind == kind:
                return n
    return 0


class PeopleFinder:
    """People first, from MediaPipe's pose models; the other finder's items that no person holds after them.
    Packshots pass through untouched, without running the people model."""

    name = "people"

    def __init__(self, base: ItemFinder, model: PeopleModel, outfit_first: bool):
        self.base, self.model, self.outfit_first = base, model, outfit_first

    def find(self, photo: Image.Image, size: tuple[int, int] | None = None, *, busy_cues: bool = True) -> Finding:
        size = size or photo.size
        found = self.base.find(photo, size, busy_cues=busy_cues)
        if found.packshot:
            return found
        people = self.model.find(photo, size)
        if not people:
            return found
        worn = [item for person in people for item in person_items(within_items(person, found, size), size)]
        others = [item for item in found.items if not any(part_of(item, person.mask) for person in people)]
        items = (worn + others)[:MAX_ITEMS]
        return Finding(size, items, first_searched(items, self.outfit_first), surface=found.surface,
                       quiet=found.quiet)

    def refine(self, photo: Image.Image, finding: Finding, n: int) -> Item:
        if finding.items[n].cue == "person":  # the person model's mask is already drawn at the photo's detail
            return finding.items[n]
        return self.base.refine(photo, finding, n)
