"""Handlers for /start, /help, /about and the admins' /stats."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.services import services

HELP = (
    "Send me a photo of a piece of clothing, shoes or an accessory, and I'll show you the {k} most "
    "similar products from the catalogue.\n\n"
    "Add words to the photo's caption to narrow it down, for example \"women red\" or \"men shoes\".\n\n"
    "Under each album: 🔎 #n finds more like that product, \"Show more\" gives the next matches, "
    "and 👍/👎 tells the shop what worked."
)


async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    k = services(context).settings.top_k
    await update.effective_message.reply_text("Hi! 👋 " + HELP.format(k=k))


async def on_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text(HELP.format(k=services(context).settings.top_k))


async def on_about(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    found = services(context)
    index = found.recommender.index
    weights = index.fingerprint.get("weights", "?")
    await update.effective_message.reply_text(
        f"Catalogue: {index.count:,} products.\n"
        f"Model: ResNet50 ({weights} weights), global max pooling, 2048-d vectors, "
        f"nearest neighbours by Euclidean distance; served with {found.recommender.embedder.runtime}."
    )


async def on_stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    found = services(context)
    user = update.effective_user
    if user is None or user.id not in found.settings.admin_user_ids:
        await update.effective_message.reply_text("Sorry, /stats is for the bot's admins.")
        return
    await update.effective_message.reply_text(found.stats.report())
