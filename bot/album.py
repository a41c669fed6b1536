"""Albums of results: captions, and sending catalogue photos once, then by their cached file_id."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from telegram import Bot, InputMediaPhoto, Message
from telegram.error import BadRequest

from bot.captions import caption
from bot.state import Store
from indexing import Hit, Index

log = logging.getLogger(__name__)


def photo_key(hit: Hit) -> str:
    return str(hit.product.get("photo") or hit.id)


def media_for(hits: Sequence[Hit], index: Index, store: Store, use_cache: bool) -> list[InputMediaPhoto]:
    media = []
    for hit in hits:
        cached = store.file_id(photo_key(hit)) if use_cache else None
        source: str | bytes = cached or index.hit_path(hit).read_bytes()
        media.append(InputMediaPhoto(source, caption=caption(hit)))
    return media


async def send_album(bot: Bot, chat_id: int, hits: Sequence[Hit], index: Index, store: Store,
                     reply_to: int | None = None) -> Sequence[Message]:
    """Send the hits as one album; each catalogue photo is uploaded once, then reused by file_id."""
    available = [h for h in hits if store.file_id(photo_key(h)) or index.hit_path(h).is_file()]
    if len(available) < len(hits):
        missing = sorted({h.id for h in hits} - {h.id for h in available})
        log.warning("catalogue photos missing on disk for products %s: left out of the album", missing)
    hits = available
    if not hits:
        return ()
    for use_cache in (True, False):
        media = media_for(hits, index, store, use_cache)
        try:
            if len(media) == 1:  # an album needs two items
                message = await bot.send_photo(chat_id, media[0].media, caption=media[0].caption,
                                               reply_to_message_id=reply_to)
                messages: Sequence[Message] = (message,)
            else:
                messages = await bot.send_media_group(chat_id, media, reply_to_message_id=reply_to)
            break
        except BadRequest as exc:
            # A file_id can stop working (bot token changed, file purged): upload afresh once.
            if not use_cache or "file" not in str(exc).lower():
                raise
            log.warning("cached file_ids refused (%s); uploading the photos again", exc)
            store.forget_uploads([photo_key(h) for h in hits])
    for hit, message in zip(hits, messages, strict=False):
        if message.photo:
            store.remember_upload(photo_key(hit), message.photo[-1].file_id)
    return messages
