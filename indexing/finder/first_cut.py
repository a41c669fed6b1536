"""What is searched in a photo first: its most prominent item cut out, or the whole photo when none stands out.

The bot and `fashion-index calibrate` both search this, so that a calibrated distance is the one the bot sees.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from indexing.extract.images import load_image, open_photo
from indexing.finder.items import Finding, ItemFinder, item_pixels

WHOLE = -1  # the item number that stands for the whole photo


def find_first(finder: ItemFinder, data: bytes) -> tuple[Image.Image, tuple[int, int], Finding]:
    """The decoded photo, its size as sent, and the items that the quick cues find in it."""
    image, size = open_photo(data)
    return image, size, finder.find(image, size, busy_cues=False)


def first_item(finding: Finding) -> int:
    """The item searched first: the most prominent one, or WHOLE if none stands out."""
    return WHOLE if finding.searched is None else finding.searched


def item_picture(finder: ItemFinder, data: bytes, image: Image.Image, size: tuple[int, int], finding: Finding,
                 item: int) -> np.ndarray:
    """What the model sees for an item (or WHOLE): a packshot-like cut-out, or the photo as it is (decoded again
    from its bytes, exactly as before items existed, so packshots keep their vectors)."""
    if item == WHOLE:
        return load_image(data)
    return item_pixels(image, finder.refine(image, finding, item).as_kept(), size)


def first_picture(finder: ItemFinder, data: bytes) -> np.ndarray:
    """The pixels of what is searched first in the photo."""
    image, size, finding = find_first(finder, data)
    return item_picture(finder, data, image, size, finding, first_item(finding))
