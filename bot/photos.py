"""Handlers for photos and image files: download, embed, search, reply with an album."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from telegram import PhotoSize, Update
from telegram.constants import ChatAction
from telegram.ext import ContextTypes

from bot.album import send_album
from bot.recommender import Busy
from bot.results import item_title, jpeg_bytes, send_buttons
from bot.services import Services, services
from indexing.errors import ImageError, ImageTooLargeError
from indexing.images import CUT_SIDE, MAX_PIXELS

log = logging.getLogger(__name__)

DOWNLOAD_LIMIT = 20 * 1024 * 1024  # the Bot API serves files up to 20 MB to bots
TOO_BIG = "That file is over 20 MB, more than Telegram lets me download. Please send it as a photo instead."
TOO_MANY_PIXELS = "That image is too large for me to process. Please send a smaller photo."
UNREADABLE = "I couldn't read that image. Please send a JPEG, PNG, WebP or HEIC photo of the clothing."
BUSY = "I'm busy with a lot of photos right now. Please try again in a moment."
BUTTONS_WAIT = 3.0  # seconds the buttons message may wait for the other users' albums in a burst


def photo_size(sizes: Sequence[PhotoSize]) -> PhotoSize:
    """The smallest size Telegram offers that still serves the item finder, else the largest there is."""
    enough = [s for s in sizes if min(s.width, s.height) >= CUT_SIDE]
    if enough:
        return min(enough, key=lambda s: s.width * s.height)
    return max(sizes, key=lambda s: s.width * s.height)


def note_error(found: Services, kind: str) -> None:
    if found.metrics:
        found.metrics.error(kind)


async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None and message.photo
    chosen = photo_size(message.photo)
    await answer_photo(update, context, chosen.file_id, chosen.file_size, chosen.width * chosen.height)


async def on_image_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None and message.document
    await answer_photo(update, context, message.document.file_id, message.document.file_size, None)


async def answer_photo(update: Update, context: ContextTypes.DEFAULT_TYPE, file_id: str,
                       file_size: int | None, pixels: int | None) -> None:
    started = time.monotonic()
    found = services(context)
    message, chat, user = update.effective_message, update.effective_chat, update.effective_user
    assert message is not None and chat is not None
    if file_size and file_size > DOWNLOAD_LIMIT:
        await message.reply_text(TOO_BIG)
        return
    if pixels and pixels > MAX_PIXELS:
        await message.reply_text(TOO_MANY_PIXELS)
        return
    if found.recommender.busy:  # say so now rather than after a download we could not use
        note_error(found, "busy")
        await message.reply_text(BUSY)
        return
    # The chat action and getFile are independent: one round trip to Telegram instead of two.
    _, telegram_file = await asyncio.gather(
        context.bot.send_chat_action(chat.id, ChatAction.UPLOAD_PHOTO), context.bot.get_file(file_id)
    )
    if telegram_file.file_size and telegram_file.file_size > DOWNLOAD_LIMIT:
        await message.reply_text(TOO_BIG)
        return
    photo = bytes(await telegram_file.download_as_bytearray())
    downloaded = time.monotonic()
    words = found.vocabulary.find(message.caption)
    k = found.settings.top_k
    try:
        found_first = await found.recommender.recommend(photo, k, filters=words.filters)
    except Busy:
        note_error(found, "busy")
        await message.reply_text(BUSY)
        return
    except ImageTooLargeError:
        note_error(found, "image_too_large")
        await message.reply_text(TOO_MANY_PIXELS)
        return
    except ImageError as exc:
        note_error(found, "unreadable_image")
        log.info("unreadable photo from user %s: %s", user.id if user else "?", exc)
        await message.reply_text(UNREADABLE)
        return
    searched = time.monotonic()
    hits = found_first.hits
    if not hits:
        await message.reply_text(f"Nothing in the catalogue matches {', '.join(words.words)}. "
                                 "Try again without those words in the caption.")
        return
    await send_album(context.bot, chat.id, hits, found.recommender.index, found.store, reply_to=message.message_id)
    answered = time.monotonic()
    await found.recommender.until_idle(BUTTONS_WAIT)
    # Only now, and only where no item stood out (busy photos), the slower proposals: the album did not
    # wait for them, and photos whose items the surface already explains do not pay for them at all.
    seen = found_first.photo
    if seen.finding.searched is None and not seen.finding.packshot:
        seen = await found.recommender.complete(seen)
    thumbnail = await asyncio.to_thread(jpeg_bytes, seen.image)
    items = await asyncio.to_thread(found.recommender.outlined, seen)
    finding = seen.finding
    look = found.store.new_look(file_id, seen.size, [item.to_record() for item in items], finding.searched,
                                finding.packshot, words.filters, thumbnail)
    found.store.remember_vector(look.id, seen.first, found_first.vector)
    query = found.store.new_query(user.id if user else None, found_first.vector, words.filters, [],
                                  [h.id for h in hits], look.id, seen.first)
    await send_buttons(context, chat.id, query, 0, len(hits), item_title(query, look, len(hits)))
    done = time.monotonic()
    found.stats.served(user.id if user else None, answered - started)
    if found.metrics:
        found.metrics.served(answered - started)
    log.debug("photo answered in %.0f ms: download %.0f, decode+find+embed+search %.0f, album %.0f; "
              "buttons after %.0f ms", 1000 * (answered - started), 1000 * (downloaded - started),
              1000 * (searched - downloaded), 1000 * (answered - searched), 1000 * (done - started))

