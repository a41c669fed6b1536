"""Handlers for /start, /help, /about and the admins' /stats."""

from __future__ import annotations

from datetime import datetime, timezone

from telegram import Update
from telegram.ext import ContextTypes

from bot.i18n import Language
from bot.language_menu import user_language
from bot.services import get_services
from indexing import Index


def help_text(_: Language, k: int) -> str:
    paragraphs = [
        _("Send me a photo of a piece of clothing, shoes or an accessory, and I'll show you the {k} most similar "
          "products from the catalogue. A photo of someone wearing it, or a screenshot of a shop or a post, works "
          "too: I find the outfit or the picture in it.", k=_.number(k)),
        _("Add words to the photo's caption to narrow it down, for example \"women red\" or \"men shoes\"."),
        _("Under each album: 🔎 #n finds more like that product, ♡ #n saves it, \"Show more\" gives the next "
          "matches, and 👍/👎 tells the shop what worked."),
        _("/saved lists what you saved: I tell you when it gets cheaper or is back in stock (/alerts off stops "
          "that). /language changes my language."),
    ]
    return "\n\n".join(_.lines(paragraph) for paragraph in paragraphs)


async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    _ = await user_language(update, context)
    k = get_services(context).settings.top_k
    await update.effective_message.reply_text(_("Hi! 👋") + " " + help_text(_, k))


async def on_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    _ = await user_language(update, context)
    await update.effective_message.reply_text(help_text(_, get_services(context).settings.top_k))


async def on_about(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    _ = await user_language(update, context)
    services = get_services(context)
    index = services.index
    await update.effective_message.reply_text(_.lines(
        catalogue_line(index, _),
        _("Model: ResNet50 ({weights} weights), global max pooling, 2048-d vectors, nearest neighbours by Euclidean "
          "distance; served with {runtime}.", weights=index.fingerprint.get("weights", "?"),
          runtime=services.recommender.embedder.runtime)))


def catalogue_line(index: Index, _: Language) -> str:
    """How big the catalogue is, when it last followed the shop's feed, and how far a first build has come."""
    parts = [_("Catalogue: {products} products", products=_.number(index.product_count))]
    if index.count > index.product_count:
        parts.append(_("{photos} photos", photos=_.number(index.count)))
    if index.shown_count < index.product_count:
        parts.append(_("{n} in stock", n=_.number(index.shown_count)))
    building = index.manifest.get("building")
    if isinstance(building, dict):
        parts.append(_("still indexing: {done} of {total} products so far; more appear as they are ready",
                       done=_.number(building.get("done", 0)), total=_.number(building.get("total", 0))))
    elif index.manifest.get("synced"):
        parts.append(_("last synced {when}", when=_.quote(when(index.manifest["synced"]))))
    return "; ".join(parts) + "."


def when(stamp: str) -> str:
    """An ISO time as `2026-11-27 08:15 UTC`."""
    try:
        return datetime.fromisoformat(stamp).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return stamp


async def on_stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    _ = await user_language(update, context)
    services = get_services(context)
    user = update.effective_user
    if user is None or user.id not in services.settings.admin_user_ids:
        await update.effective_message.reply_text(_("Sorry, /stats is for the bot's admins."))
        return
    await update.effective_message.reply_text(await services.stats.report(_))
