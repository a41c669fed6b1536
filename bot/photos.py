"""Handlers for photos and image files: download, embed, search, reply with an album."""

from __future__ import annotations

import asyncio
import logging
import time

from telegram import Update
from telegram.constants import ChatAction
from telegram.ext import ContextTypes

from bot.recommender import Busy
from bot.results import send_page
from bot.services import services
from indexing.errors import ImageError, ImageTooLargeError
from indexing.images import MAX_PIXELS

log = logging.getLogger(__name__)

DOWNLOAD_LIMIT = 20 * 1024 * 1024  # the Bot API serves files up to 20 MB to bots
TOO_BIG = "That file is over 20 MB, more than Telegram lets me download. Please send it as a photo instead."
TOO_MANY_PIXELS = "That image is too large for me to process. Please send a smaller photo."
UNREADABLE = "I couldn't read that image. Please send a JPEG, PNG or WebP photo of the clothing."
BUSY = "I'm busy with a lot of photos right now. Please try again in a moment."


async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None and message.photo
    largest = message.photo[-1]
    await answer_photo(update, context, largest.file_id, largest.file_size, largest.width * largest.height)


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
        vector, hits = await found.recommender.recommend(photo, k, filters=words.filters)
    except Busy:
        await message.reply_text(BUSY)
        return
    except ImageTooLargeError:
        await message.reply_text(TOO_MANY_PIXELS)
        return
    except ImageError as exc:
        log.info("unreadable photo from user %s: %s", user.id if user else "?", exc)
        await message.reply_text(UNREADABLE)
        return
    searched = time.monotonic()
    if not hits:
        await message.reply_text(f"Nothing in the catalogue matches {', '.join(words.words)}. "
                                 "Try again without those words in the caption.")
        return
    query = found.store.new_query(user.id if user else None, vector, words.filters, [], [h.id for h in hits])
    await send_page(context, chat.id, query, 0, hits, f"Top {len(hits)} matches for your photo.",
                    reply_to=message.message_id)
    done = time.monotonic()
    found.stats.served(user.id if user else None, done - started)
    log.debug("photo answered in %.0f ms: download %.0f, decode+embed+search %.0f, reply %.0f",
              1000 * (done - started), 1000 * (downloaded - started), 1000 * (searched - downloaded),
              1000 * (done - searched))
