"""Handlers for saved products: the ♡ button under an album, /saved with its remove buttons, and /alerts."""

from __future__ import annotations

import asyncio

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from bot import callbacks
from bot.album import send_album
from bot.captions import current_price, product_name
from bot.i18n import Language
from bot.language_menu import user_language
from bot.results import EXPIRED, GONE, shop_link
from bot.services import get_services
from indexing import Hit
from indexing.store.vector_store import in_stock

PAGE = 10  # an album holds at most ten photos
ANSWER_LIMIT = 200  # characters of a button's answer that Telegram shows


async def on_save(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """save|<query>|<page>|<rank>: save that product, with its price and stock now, to alert on changes later."""
    services = get_services(context)
    callback, user = update.callback_query, update.effective_user
    assert callback is not None and user is not None
    _ = await user_language(update, context)
    query_id, page, rank = callbacks.fields(callback.data)
    query = await services.state.query(query_id)
    ids = query.page(int(page), services.settings.top_k) if query else []
    if not 0 < int(rank) <= len(ids):
        await callback.answer(_(EXPIRED), show_alert=True)
        return
    product = ids[int(rank) - 1]
    records = await asyncio.to_thread(services.index.products_of, [product])
    if product not in records:
        await callback.answer(_(GONE), show_alert=True)
        return
    record = records[product]
    await services.state.remember_telegram_language(user.id, user.language_code)
    name = product_name(record.get("meta", {}), product, _)
    if await services.state.save_product(user.id, product, current_price(record.get("meta", {})), in_stock(record)):
        await callback.answer(_("♡ Saved: {name}. /saved lists your saved products; I'll tell you when it gets "
                                "cheaper or is back in stock.", name=name)[:ANSWER_LIMIT], show_alert=True)
    else:
        await callback.answer(_("{name} is already saved: /saved lists them.", name=name)[:ANSWER_LIMIT])


async def on_saved(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/saved: the newest saved products as an album, with buttons to remove them."""
    assert update.effective_chat is not None
    await send_saved(update, context, update.effective_chat.id, 0)


async def on_saved_page(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """saved|<offset>: the next page of /saved."""
    callback = update.callback_query
    assert callback is not None and update.effective_chat is not None
    await callback.answer()
    await send_saved(update, context, update.effective_chat.id, int(callbacks.fields(callback.data)[0]))


async def send_saved(update: Update, context: ContextTypes.DEFAULT_TYPE, chat_id: int, offset: int) -> None:
    services = get_services(context)
    user = update.effective_user
    assert user is not None
    _ = await user_language(update, context)
    page, total = await services.state.saved_by(user.id, offset, PAGE)
    if not total:
        await context.bot.send_message(chat_id, _("You have saved nothing yet. Tap ♡ #n under a result to save it."))
        return
    records = await asyncio.to_thread(services.index.products_of, [product for _row, product in page])
    shown = [(row, product) for row, product in page if product in records]
    hits = [Hit(n, product, 1.0, 0.0, records[product]) for n, (_row, product) in enumerate(shown, offset + 1)]
    await send_album(context.bot, chat_id, hits, services.index, services.state, _, similarity=False)
    gone = len(page) - len(shown)
    alerts = await services.state.alerts_on(user.id)
    await context.bot.send_message(chat_id, saved_text(_, offset, len(page), total, gone, alerts),
                                   reply_markup=saved_keyboard(_, shown, offset, total, [
                                       shop_link(records[product]) for _row, product in shown]))


def saved_text(_: Language, offset: int, count: int, total: int, gone: int, alerts: bool) -> str:
    return _.lines(
        _("Your saved products {first}–{last} of {total}.", first=offset + 1, last=offset + count, total=total),
        _("{n} of them are no longer in the catalogue.", n=gone) if gone else "",
        _("Tap ✕ #n to remove one.") if count > gone else "",
        _("I'll tell you when one gets cheaper or is back in stock (/alerts off stops that).") if alerts
        else _("Alerts are off: /alerts on to get them again."))


def saved_keyboard(_: Language, shown: list[tuple[int, str]], offset: int, total: int,
                   links: list[str | None]) -> InlineKeyboardMarkup | None:
    removes = [InlineKeyboardButton(f"✕ #{n}", callback_data=callbacks.unsave(row))
               for n, (row, _product) in enumerate(shown, offset + 1)]
    rows = [removes[i : i + 5] for i in range(0, len(removes), 5)]
    shop = [InlineKeyboardButton(f"🛒 {n}", url=link) for n, link in enumerate(links, offset + 1) if link]
    rows += [shop[i : i + 5] for i in range(0, len(shop), 5)]
    if offset + PAGE < total:
        rows.append([InlineKeyboardButton(_.button(_("Older ▶")), callback_data=callbacks.saved_page(offset + PAGE))])
    return InlineKeyboardMarkup(rows) if rows else None


async def on_unsave(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """unsave|<saved>: remove one saved product (from /saved, or from an alert about it)."""
    services = get_services(context)
    callback, user = update.callback_query, update.effective_user
    assert callback is not None and user is not None
    _ = await user_language(update, context)
    product = await services.state.unsave(user.id, int(callbacks.fields(callback.data)[0]))
    if product is None:
        await callback.answer(_("That one is not saved any more."))
        return
    records = await asyncio.to_thread(services.index.products_of, [product])
    name = product_name(records[product].get("meta", {}), product, _) if product in records else product
    await callback.answer(_("Removed {name} from your saved products.", name=name)[:ANSWER_LIMIT])


async def on_alerts(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/alerts on|off: whether to hear about saved products getting cheaper or coming back in stock."""
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    state = get_services(context).state
    _ = await user_language(update, context)
    choice = (context.args or [""])[0].lower()
    if choice in ("on", "off"):
        await state.set_alerts(user.id, choice == "on")
        await state.remember_telegram_language(user.id, user.language_code)
    if await state.alerts_on(user.id):
        await message.reply_text(_("Alerts are on: I tell you when a saved product gets cheaper or is back in "
                                   "stock. /alerts off stops them."))
    else:
        await message.reply_text(_("Alerts are off. /alerts on starts them again."))
