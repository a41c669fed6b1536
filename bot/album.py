"""Albums of results: captions, and sending catalogue photos once, then by their cached file_id."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from telegram import Bot, InputMediaPhoto, Message
from telegram.error import BadRequest

from bot.captions import caption
from bot.i18n import Language
from bot.state_thread import StateThread
from indexing import Hit, Index

log = logging.getLogger(__name__)
T = TypeVar("T")


def photo_key(product: Mapping[str, Any]) -> str:
    """What a catalogue photo's upload is remembered by: its content hash, else its product's id."""
    return str(product.get("photo") or product["id"])


def media_for(hits: Sequence[Hit], index: Index, cached: Mapping[str, str], _: Language,
              similarity: bool) -> list[InputMediaPhoto]:
    """The album's items: each photo by its cached file_id, else read from disk (blocking: run in a thread)."""
    media = []
    for hit in hits:
        source: str | bytes = cached.get(photo_key(hit.product)) or index.hit_path(hit).read_bytes()
        media.append(InputMediaPhoto(source, caption=caption(hit, _, similarity)))
    return media


def on_disk(hits: Sequence[Hit], index: Index, cached: Mapping[str, str]) -> list[Hit]:
    """The hits whose photo can be sent: uploaded before, or in the catalogue's folder (blocking: in a thread)."""
    return [h for h in hits if photo_key(h.product) in cached or index.hit_path(h).is_file()]


async def with_uploads(state: StateThread, keys: Sequence[str], send: Callable[[bool], Awaitable[T]]) -> T:
    """send(use_cache=True), by the cached file_ids; if Telegram refuses them (bot token changed, file purged), the
    cache of these photos is forgotten and they are sent again as uploads, once."""
    try:
        return await send(True)
    except BadRequest as exc:
        if "file" not in str(exc).lower():
            raise
        log.warning("cached file_ids refused (%s); uploading the photos again", exc)
        await state.forget_uploads(list(keys))
        return await send(False)


async def send_album(bot: Bot, chat_id: int, hits: Sequence[Hit], index: Index, state: StateThread, _: Language,
                     reply_to: int | None = None, similarity: bool = True) -> Sequence[Message]:
    """Send the hits as one album, captioned in the user's language (similarity: with each one's score); each
    catalogue photo is uploaded once, then reused by file_id."""
    cached = await state.file_ids([photo_key(h.product) for h in hits])
    available = await asyncio.to_thread(on_disk, hits, index, cached)
    if len(available) < len(hits):
        missing = sorted({h.id for h in hits} - {h.id for h in available})
        log.warning("catalogue photos missing on disk for products %s: left out of the album", missing)
    hits = available
    if not hits:
        return ()

    async def send(use_cache: bool) -> Sequence[Message]:
        media = await asyncio.to_thread(media_for, hits, index, cached if use_cache else {}, _, similarity)
        if len(media) == 1:  # an album needs two items
            return (await bot.send_photo(chat_id, media[0].media, caption=media[0].caption,
                                         reply_to_message_id=reply_to),)
        return await bot.send_media_group(chat_id, media, reply_to_message_id=reply_to)

    messages = await with_uploads(state, [photo_key(h.product) for h in hits], send)
    uploads = {photo_key(hit.product): message.photo[-1].file_id
               for hit, message in zip(hits, messages, strict=False) if message.photo}
    await state.remember_uploads(uploads)
    return messages
