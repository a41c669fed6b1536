"""Checks that run before any handler: the allowlist, then the per-user rate limit."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.i18n import N_
from bot.language_menu import user_language
from bot.services import get_services

PRIVATE = N_("Sorry, this bot is private. Ask its owner to add your Telegram user id.")
SLOW_DOWN = N_("You're sending photos faster than I can look at them. Please wait a minute and try again.")


async def guard(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stop updates from users outside ALLOWED_USER_IDS, or over the rate limit, before any download."""
    services = get_services(context)
    user = update.effective_user
    if user is None:
        raise ApplicationHandlerStop
    allowed = services.settings.allowed_user_ids
    if allowed and user.id not in allowed:
        await reply(update, (await user_language(update, context))(PRIVATE))
        raise ApplicationHandlerStop
    if not services.limiter.allow(user.id):
        if services.limiter.should_warn(user.id):
            await reply(update, (await user_language(update, context))(SLOW_DOWN))
        elif update.callback_query:
            await update.callback_query.answer()
        raise ApplicationHandlerStop


async def reply(update: Update, text: str) -> None:
    if update.callback_query:
        await update.callback_query.answer(text, show_alert=True)
    elif update.effective_message:
        await update.effective_message.reply_text(text)
