"""Replies for everything that is not a photo, and the global error handler."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Update
from telegram.ext import ContextTypes

from bot.i18n import N_, Language, language, normalise
from bot.language_menu import user_language
from indexing.errors import StoreUnavailableError

log = logging.getLogger(__name__)

SEND_A_PHOTO = N_("Send me a photo of clothing and I'll find similar products. /help explains more.")
NOT_AN_IMAGE = N_("That file isn't an image I can use. Please send a photo (JPEG, PNG or WebP).")
UNSUPPORTED = N_("I can only work with photos. Please send a picture of the clothing you're looking for.")
UNKNOWN_COMMAND = N_("I don't know that command. Try /help.")
SORRY = N_("Sorry, something went wrong on my side. Please try again in a moment.")
CATALOGUE_DOWN = N_("The catalogue can't be searched right now. Please try again in a few minutes.")


def replying(text: str) -> Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]:
    """A handler that answers with one fixed line."""
    async def reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text((await user_language(update, context))(text))

    return reply


on_text = replying(SEND_A_PHOTO)  # text that is not a command
on_other_document = replying(NOT_AN_IMAGE)  # a file that is not an image
on_unsupported = replying(UNSUPPORTED)  # stickers, voice, video, locations, ...: one pointer back to photos
on_unknown_command = replying(UNKNOWN_COMMAND)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the traceback for the operator; tell the user, without details, that it failed. A catalogue that cannot
    be searched (its Milvus restarting) is one line in the log, and the user is told to come back in minutes."""
    if isinstance(context.error, StoreUnavailableError):
        log.warning("an update not answered, the catalogue cannot be searched: %s", context.error)
        kind, text = "catalogue_unavailable", CATALOGUE_DOWN
    else:
        log.error("unhandled error while handling an update", exc_info=context.error)
        kind, text = "unhandled", SORRY
    services = context.application.bot_data.get("services")
    if services:
        if services.metrics:
            services.metrics.error(kind)
        try:
            await services.stats.failed()
        except Exception as exc:  # the state may be what failed (PostgreSQL restarting): the user is told anyway
            log.warning("could not count the error in the state: %s", exc)
    if not isinstance(update, Update):
        return
    try:
        sorry = (await language_anyway(update, context))(text)
        if update.callback_query:
            await update.callback_query.answer(sorry, show_alert=True)
        elif update.effective_chat:
            await context.bot.send_message(update.effective_chat.id, sorry)
    except Exception:  # the API itself may be what failed; the log already has the cause
        log.warning("could not tell the user about the error", exc_info=True)


async def language_anyway(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Language:
    """The user's language; their Telegram app's where the state that keeps their choice cannot be read."""
    try:
        return await user_language(update, context)
    except Exception:
        user = update.effective_user
        return language((normalise(user.language_code) if user else None) or "en")
