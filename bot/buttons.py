"""Handlers for the inline buttons under each album: more like #n, another item, show more, feedback."""

from __future__ import annotations

import asyncio

import numpy as np
from telegram import Update
from telegram.ext import ContextTypes

from bot import callbacks
from bot.captions import product_name
from bot.language_menu import user_language
from bot.pictures import small_copy
from bot.results import EXPIRED, GONE, item_title, keyboard, send_page, shop_links
from bot.services import Services, get_services
from bot.state import Look
from indexing import Index
from indexing.finder.first_cut import WHOLE
from indexing.finder.items import Item


def twins_of(index: Index, shown: list[str]) -> set[str]:
    """The products shown, and their byte-identical twins, which are no news either (blocking: in a thread)."""
    seen = set(shown)
    for pid in shown:
        if pid in index:
            seen.update(index.ids_with_photo(pid))
    return seen


def fields(update: Update) -> list[str]:
    assert update.callback_query is not None
    return callbacks.fields(update.callback_query.data)


async def on_more_like(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """like|<query>|<page>|<rank>: search again from that product's stored vector."""
    services = get_services(context)
    callback = update.callback_query
    assert callback is not None and callback.message is not None
    _ = await user_language(update, context)
    query_id, page, rank = fields(update)
    query = await services.state.query(query_id)
    k = services.settings.top_k
    ids = query.page(int(page), k) if query else []
    if query is None or not 0 < int(rank) <= len(ids):
        await callback.answer(_(EXPIRED), show_alert=True)
        return
    index = services.index
    source = ids[int(rank) - 1]
    record = (await asyncio.to_thread(index.products_of, [source])).get(source)
    if record is None:
        await callback.answer(_(GONE), show_alert=True)
        return
    await callback.answer(_("Looking for more like #{rank}…", rank=rank))
    vector, twins = await asyncio.to_thread(lambda: (index.vector(source), index.ids_with_photo(source)))
    hits = await services.recommender.search(vector, k, exclude=twins, filters=query.filters)
    fresh = await services.state.new_query(update.effective_user.id if update.effective_user else None,
                                           vector, query.filters, twins, [h.id for h in hits])
    name = product_name(record.get("meta", {}), source, _)
    await send_page(context, callback.message.chat.id, fresh, 0, hits,
                    _("More like #{rank}: {name}", rank=rank, name=_.quote(name)), _)


async def on_item(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """item|<look>|<n>: search item n of the user's photo instead (WHOLE: the whole photo)."""
    services = get_services(context)
    callback = update.callback_query
    assert callback is not None and callback.message is not None
    _ = await user_language(update, context)
    look_id, which = fields(update)
    look = await services.state.look(look_id)
    item = int(which)
    if look is None or not (item == WHOLE or 0 <= item < len(look.items)):
        await callback.answer(_(EXPIRED), show_alert=True)
        return
    await callback.answer(_("Searching the whole photo…") if item == WHOLE
                          else _("Searching {item}…", item=look.label(item, _)))
    vector = await services.state.look_vector(look.id, item)
    if vector is None:  # not searched before: items are embedded only when someone asks for them
        vector = await embed_item(context, services, look, item)
        await services.state.remember_vector(look.id, item, vector)
    k = services.settings.top_k
    hits = await services.recommender.search(vector, k, filters=look.filters)
    if not hits:
        await callback.message.reply_text(_("Nothing in the catalogue matches that with your caption's filters."))
        return
    query = await services.state.new_query(update.effective_user.id if update.effective_user else None, vector,
                                           look.filters, [], [h.id for h in hits], look.id, item)
    await send_page(context, callback.message.chat.id, query, 0, hits, item_title(query, look, len(hits), _), _, look)


async def embed_item(context: ContextTypes.DEFAULT_TYPE, services: Services, look: Look, item: int) -> np.ndarray:
    """Fetch the user's photo from Telegram again and embed the item asked for, cut out with the mask that was
    stored when it was outlined: the same pixels, whichever replica answers and however long after."""
    telegram_file = await context.bot.get_file(look.file_id)
    data = bytes(await telegram_file.download_as_bytearray())
    if not look.thumbnail:  # the buttons message outlines it next: no second download for that
        services.pictures.keep(look.id, await asyncio.to_thread(small_copy, data))
    return await services.recommender.embed_item(data, None if item == WHOLE else Item.from_record(look.items[item]))


async def on_show_more(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """more|<query>|<page>: the next results of the same query, none shown before."""
    services = get_services(context)
    callback = update.callback_query
    assert callback is not None and callback.message is not None
    _ = await user_language(update, context)
    query = await services.state.query(fields(update)[0])
    if query is None:
        await callback.answer(_(EXPIRED), show_alert=True)
        return
    seen = set(query.exclude) | await asyncio.to_thread(twins_of, services.index, query.shown)
    k = services.settings.top_k
    hits = await services.recommender.search(query.vector, k, exclude=sorted(seen), filters=query.filters)
    if not hits:
        await callback.answer(_("That's everything that matches."), show_alert=True)
        return
    await callback.answer()
    page = -(-len(query.shown) // k)
    await services.state.extend_shown(query, [h.id for h in hits])
    first = page * k + 1
    await send_page(context, callback.message.chat.id, query, page, hits,
                    _("Matches {first}–{last} for your photo.", first=first, last=first + len(hits) - 1), _)


async def on_feedback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """fb|<query>|<page>|up|down: append the vote to STATE_DIR/feedback.jsonl."""
    services = get_services(context)
    callback = update.callback_query
    assert callback is not None
    query_id, page, vote = fields(update)
    query = await services.state.query(query_id)
    await services.state.record_feedback({
        "user": update.effective_user.id if update.effective_user else None,
        "query": query_id,
        "page": int(page),
        "vote": vote,
        "shown": query.page(int(page), services.settings.top_k) if query else None,
    })
    _ = await user_language(update, context)
    await callback.answer(_("Thanks for the feedback!"))
    k = services.settings.top_k
    shown = len(query.page(int(page), k)) if query else 0
    if query is not None and shown:
        look = await services.state.look(query.look) if query.look else None
        links = await asyncio.to_thread(shop_links, services.index, query.page(int(page), k))
        await callback.edit_message_reply_markup(keyboard(query, int(page), shown, k, _, look, with_feedback=False,
                                                          links=links))
