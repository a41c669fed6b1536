"""Handlers for photos and image files: download, embed, search, reply with an album."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, PhotoSize, Update
from telegram.constants import ChatAction
from telegram.ext import ContextTypes

from bot import callbacks
from bot.album import send_album
from bot.filter_words import CaptionFilters
from bot.i18n import N_, Language
from bot.language_menu import user_language
from bot.recommender import Busy, Recommendation
from bot.results import EXPIRED, item_title, jpeg_bytes, send_buttons, send_page
from bot.services import Services, get_services
from indexing.errors import ImageError, ImageTooLargeError
from indexing.extract.images import CUT_SIDE, MAX_PIXELS
from indexing.nearness import cutoff_of

log = logging.getLogger(__name__)

DOWNLOAD_LIMIT = 20 * 1024 * 1024  # the Bot API serves files up to 20 MB to bots
TOO_BIG = N_("That file is over 20 MB, more than Telegram lets me download. Please send it as a photo instead.")
TOO_MANY_PIXELS = N_("That image is too large for me to process. Please send a smaller photo.")
UNREADABLE = N_("I couldn't read that image. Please send a JPEG, PNG, WebP or HEIC photo of the clothing.")
BUSY = N_("I'm busy with a lot of photos right now. Please try again in a moment.")
NOTHING_SIMILAR = N_("I found nothing similar in the catalogue: this doesn't look like anything the shop sells. "
                     "Send a photo of clothing, shoes or an accessory, or see the nearest products anyway.")
BUTTONS_WAIT = 3.0  # seconds the buttons message may wait for the other users' albums in a burst


def photo_size(sizes: Sequence[PhotoSize]) -> PhotoSize:
    """The smallest size Telegram offers that still serves the item finder, else the largest there is."""
    enough = [s for s in sizes if min(s.width, s.height) >= CUT_SIDE]
    if enough:
        return min(enough, key=lambda s: s.width * s.height)
    return max(sizes, key=lambda s: s.width * s.height)


def note_error(services: Services, kind: str) -> None:
    if services.metrics:
        services.metrics.error(kind)


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
    """Take the photo, answer with the album, then offer the photo's items to search instead."""
    started = time.monotonic()
    services = get_services(context)
    message, chat, user = update.effective_message, update.effective_chat, update.effective_user
    assert message is not None and chat is not None
    _ = await user_language(update, context)
    data = await take_photo(context, services, message, file_id, file_size, pixels, _)
    if data is None:
        return
    downloaded = time.monotonic()
    caption = services.vocabulary.find(message.caption)
    recommendation = await recommend(services, message, data, caption, _)
    if recommendation is None:
        return
    searched = time.monotonic()
    if far(services, recommendation):
        await say_nothing_similar(context, services, message, user.id if user else None, recommendation, caption, _)
        await services.stats.served(user.id if user else None, time.monotonic() - started)
        return
    await send_album(context.bot, chat.id, recommendation.hits, services.index, services.state, _,
                     reply_to=message.message_id)
    answered = time.monotonic()
    await offer_items(context, services, chat.id, user.id if user else None, file_id, recommendation, caption, _)
    await services.stats.served(user.id if user else None, answered - started)
    if services.metrics:
        services.metrics.served(answered - started)
    log.debug("photo answered in %.0f ms: download %.0f, decode+find+embed+search %.0f, album %.0f; "
              "buttons after %.0f ms", 1000 * (answered - started), 1000 * (downloaded - started),
              1000 * (searched - downloaded), 1000 * (answered - searched), 1000 * (time.monotonic() - started))


async def take_photo(context: ContextTypes.DEFAULT_TYPE, services: Services, message: Message, file_id: str,
                     file_size: int | None, pixels: int | None, _: Language) -> bytes | None:
    """The photo's bytes from Telegram; None when it is refused (too big, or the bot is busy), said so."""
    if file_size and file_size > DOWNLOAD_LIMIT:
        await message.reply_text(_(TOO_BIG))
        return None
    if pixels and pixels > MAX_PIXELS:
        await message.reply_text(_(TOO_MANY_PIXELS))
        return None
    if services.recommender.busy:  # say so now rather than after a download we could not use
        note_error(services, "busy")
        await message.reply_text(_(BUSY))
        return None
    # The chat action and getFile are independent: one round trip to Telegram instead of two.
    _action, telegram_file = await asyncio.gather(
        context.bot.send_chat_action(message.chat.id, ChatAction.UPLOAD_PHOTO), context.bot.get_file(file_id)
    )
    if telegram_file.file_size and telegram_file.file_size > DOWNLOAD_LIMIT:
        await message.reply_text(_(TOO_BIG))
        return None
    return bytes(await telegram_file.download_as_bytearray())


async def recommend(services: Services, message: Message, data: bytes, caption: CaptionFilters, _: Language
                    ) -> Recommendation | None:
    """The first item's (or the whole photo's) nearest products; None when there are none to show, said so."""
    try:
        recommendation = await services.recommender.recommend(data, services.settings.top_k,
                                                              filters=caption.filters)
    except Busy:
        note_error(services, "busy")
        await message.reply_text(_(BUSY))
        return None
    except ImageTooLargeError:
        note_error(services, "image_too_large")
        await message.reply_text(_(TOO_MANY_PIXELS))
        return None
    except ImageError as exc:
        note_error(services, "unreadable_image")
        log.info("unreadable photo from user %s: %s", message.from_user.id if message.from_user else "?", exc)
        await message.reply_text(_(UNREADABLE))
        return None
    if not recommendation.hits:
        await message.reply_text(_("Nothing in the catalogue matches {words}. Try again without those words in the "
                                   "caption.", words=_.quote(", ".join(caption.words))))
        return None
    return recommendation


async def offer_items(context: ContextTypes.DEFAULT_TYPE, services: Services, chat_id: int, user_id: int | None,
                      file_id: str, recommendation: Recommendation, caption: CaptionFilters, _: Language) -> None:
    """The buttons message: the photo with its items outlined, kept (a look) so that a tap searches them."""
    await services.recommender.until_idle(BUTTONS_WAIT)
    # Only now, and only where no item stood out (busy photos), the slower proposals: the album did not
    # wait for them, and photos whose items the surface already explains do not pay for them at all.
    photo = recommendation.photo
    if photo.finding.searched is None and not photo.finding.packshot:
        photo = await services.recommender.complete(photo)
    thumbnail = await asyncio.to_thread(jpeg_bytes, photo.image)
    items = await asyncio.to_thread(services.recommender.outlined, photo)
    finding = photo.finding
    look = await services.state.new_look(file_id, photo.size, [item.to_record() for item in items],
                                         finding.searched, finding.packshot, caption.filters)
    services.pictures.keep(look.id, thumbnail)
    hits = recommendation.hits  # the query keeps the searched item's vector as the look's, for later taps
    query = await services.state.new_query(user_id, recommendation.vector, caption.filters, [],
                                           [h.id for h in hits], look.id, photo.first)
    await send_buttons(context, chat_id, query, 0, len(hits), item_title(query, look, len(hits), _), _, look)


def far(services: Services, recommendation: Recommendation) -> bool:
    """Whether the best match is past the index's calibrated cut-off (never, for an index not calibrated)."""
    cutoff = cutoff_of(services.index.manifest)
    return cutoff is not None and bool(recommendation.hits) and recommendation.hits[0].distance > cutoff


async def say_nothing_similar(context: ContextTypes.DEFAULT_TYPE, services: Services, message: Message,
                              user_id: int | None, recommendation: Recommendation, caption: CaptionFilters,
                              _: Language) -> None:
    """Nothing similar: say so, with the nearest products one tap away (the query is kept for that tap)."""
    hits = recommendation.hits  # the query keeps the searched item's vector as the look's, for later taps
    query = await services.state.new_query(user_id, recommendation.vector, caption.filters, [], [h.id for h in hits])
    button = InlineKeyboardButton(_.button(_("Show the nearest anyway")), callback_data=callbacks.nearest(query.id))
    await message.reply_text(_(NOTHING_SIMILAR), reply_markup=InlineKeyboardMarkup([[button]]))


async def on_nearest(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """near|<query>: the products nearest to a photo that had nothing similar, as any page of results."""
    services = get_services(context)
    callback = update.callback_query
    assert callback is not None and callback.message is not None
    _ = await user_language(update, context)
    query = await services.state.query(callbacks.fields(callback.data)[0])
    if query is None:
        await callback.answer(_(EXPIRED), show_alert=True)
        return
    await callback.answer()
    hits = await services.recommender.search(query.vector, services.settings.top_k, filters=query.filters)
    await send_page(context, callback.message.chat.id, query, 0, hits,
                    _("The nearest {count} products, though none is much like your photo.", count=len(hits)), _)
