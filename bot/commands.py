"""Handlers for /start, /help, /about and the admins' /stats."""

from __future__ import annotations

from datetime import datetime, timezone

from telegram import Update
from telegram.ext import ContextTypes

from bot.services import get_services
from indexing import Index

HELP = (
    "Send me a photo of a piece of clothing, shoes or an accessory, and I'll show you the {k} most "
    "similar products from the catalogue. A photo of someone wearing it, or a screenshot of a shop or a "
    "post, works too: I find the outfit or the picture in it.\n\n"
    "Add words to the photo's caption to narrow it down, for example \"women red\" or \"men shoes\".\n\n"
    "Under each album: 🔎 #n finds more like that product, \"Show more\" gives the next matches, "
    "and 👍/👎 tells the shop what worked."
)


async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    k = get_services(context).settings.top_k
    await update.effective_message.reply_text("Hi! 👋 " + HELP.format(k=k))


async def on_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text(HELP.format(k=get_services(context).settings.top_k))


async def on_about(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    services = get_services(context)
    index = services.index
    weights = index.fingerprint.get("weights", "?")
    await update.effective_message.reply_text(
        f"{catalogue_line(index)}\n"
        f"Model: ResNet50 ({weights} weights), global max pooling, 2048-d vectors, "
        f"nearest neighbours by Euclidean distance; served with {services.recommender.embedder.runtime}."
    )


def catalogue_line(index: Index) -> str:
    """How big the catalogue is, when it last followed the shop's feed, and how far a first build has come."""
    line = f"Catalogue: {index.product_count:,} products"
    if index.count > index.product_count:
        line += f" ({index.count:,} photos)"
    if index.shown_count < index.product_count:
        line += f", {index.shown_count:,} in stock"
    building = index.manifest.get("building")
    if isinstance(building, dict):
        line += (f". Still indexing: {building.get('done', 0):,} of {building.get('total', 0):,} products so far; "
                 "more appear as they are ready")
    elif index.manifest.get("synced"):
        line += f", last synced {when(index.manifest['synced'])}"
    return line + "."


def when(stamp: str) -> str:
    """An ISO time as `2026-11-27 08:15 UTC`."""
    try:
        return datetime.fromisoformat(stamp).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return stamp


async def on_stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    services = get_services(context)
    user = update.effective_user
    if user is None or user.id not in services.settings.admin_user_ids:
        await update.effective_message.reply_text("Sorry, /stats is for the bot's admins.")
        return
    await update.effective_message.reply_text(services.stats.report())
