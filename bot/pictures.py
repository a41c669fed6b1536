"""The small copies of users' recent photos that the buttons message outlines, kept in this process's memory
(a few MB) rather than in the state: a photo is a third of a month's state otherwise. A copy that is not here (after
a restart, on another replica, or pushed out) is made again from the photo, downloaded from Telegram by file_id."""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from telegram import Bot

from bot.recommender import KEPT_SIDE, reduced
from bot.state import Look
from indexing.extract.images import encode, open_photo

KEPT = 256  # recent photos (about 30 KB each)


def small_copy(data: bytes) -> bytes:
    """The copy a photo is outlined on: upright, its long side at most KEPT_SIDE, as a JPEG (blocking)."""
    image, _size = open_photo(data)
    return encode(reduced(image, KEPT_SIDE), quality=85)


class Pictures:
    """The newest KEPT photos' small copies, by look id."""

    def __init__(self, kept: int = KEPT):
        self.kept = kept
        self._copies: OrderedDict[str, bytes] = OrderedDict()

    def keep(self, look_id: str, copy: bytes) -> None:
        self._copies[look_id] = copy
        self._copies.move_to_end(look_id)
        while len(self._copies) > self.kept:
            self._copies.popitem(last=False)

    async def of(self, bot: Bot, look: Look) -> bytes:
        """The look's photo to outline: stored with it (a look kept before copies moved out of the state), kept
        here, or downloaded again."""
        if look.thumbnail:
            return look.thumbnail
        if look.id in self._copies:
            self._copies.move_to_end(look.id)
            return self._copies[look.id]
        telegram_file = await bot.get_file(look.file_id)
        data = bytes(await telegram_file.download_as_bytearray())
        copy = await asyncio.to_thread(small_copy, data)
        self.keep(look.id, copy)
        return copy
