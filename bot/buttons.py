"""Handlers for the inline buttons under each album: more like #n, another item, show more, feedback."""

from __future__ import annotations

import numpy as np
from telegram import Update
from telegram.ext import ContextTypes

from bot import callbacks
from bot.captions import product_name
from bot.language_menu import user_language
from bot.results import EXPIRED, GONE, item_title, keyboard, send_page, shop_links
from bot.services import Services, get_services
from bot.state import Look
from indexing.finder.first_cut import WHOLE
from indexing.finder.items import Item


def fields(update: Update) -> list[str]:
    assert update.callback_query is not None
    return callbacks.fields(update.callback_query.data)


async def on_more_like(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """like|<query>|<page>|<rank>: search again from that product's stored vector."""
    services = get_services(context)
    callback = update.callback_query
    assert callback is not None and callback.message is not None
    _ = user_language(update, context)
    query_id, page, rank = fields(update)
    query = services.store.query(query_id)
    k = services.settings.top_k
    ids = query.page(int(page), k) if query else []
    if query is None or not 0 < int(rank) <= len(ids):
        await callback.answer(_(EXPIRED), show_alert=True)
        return
    index = services.index
    source = ids[int(rank) - 1]
    if source not in index:
        await callback.answer(_(GONE), show_alert=True)
        return
    await callback.answer(_("Looking for more like #{rank}…", rank=rank))
    vector = index.vector(source)
    twins = index.ids_with_photo(source)
    hits = await services.recommender.search(vector, k, exclude=twins, filters=query.filters)
    fresh = services.store.new_query(update.effective_user.id if update.effective_user else None,
                                  vector, query.filters, twins, [h.id for h in hits])
    name = product_name(index.product(source).get("meta", {}), source, _)
    await send_page(context, callback.message.chat.id, fresh, 0, hits,
                    _("More like #{rank}: {name}", rank=rank, name=_.quote(name)), _)


async def on_item(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """item|<look>|<n>: search item n of the user's photo instead (WHOLE: the whole photo)."""
    services = get_services(context)
    callback = update.callback_query
    assert callback is not None and callback.message is not None
    _ = user_language(update, context)
    look_id, which = fields(update)
    look = services.store.look(look_id)
    item = int(which)
    if look is None or not (item == WHOLE or 0 <= item < len(look.items)):
        await callback.answer(_(EXPIRED), show_alert=True)
        return
    await callback.answer(_("Searching the whole photo…") if item == WHOLE
                          else _("Searching {item}…", item=look.label(item, _)))
    vector = services.store.look_vector(look.id, item)
    if vector is None:  # not searched before: items are embedded only when someone asks for them
        vector = await embed_item(context, services, look, item)
        services.store.remember_vector(look.id, item, vector)
    k = services.settings.top_k
    hits = await services.recommender.search(vector, k, filters=look.filters)
    if not hits:
        await callback.message.reply_text(_("Nothing in the catalogue matches that with your caption's filters."))
        return
    query = services.store.new_query(update.effective_user.id if update.effective_user else None, vector,
                                  look.filters, [], [h.id for h in hits], look.id, item)
    await send_page(context, callback.message.chat.id, query, 0, hits, item_title(query, look, len(hits), _), _, look)


async def embed_item(context: ContextTypes.DEFAULT_TYPE, services: Services, look: Look, item: int) -> np.ndarray:
    """Fetch the user's photo from Telegram again and embed the item asked for, cut out with the mask that was
    stored when it was outlined: the same pixels, whichever replica answers and however long after."""
    telegram_file = await context.bot.get_file(look.file_id)
    data = bytes(await telegram_file.download_as_bytearray())
    return await services.recommender.embed_item(data, None if item == WHOLE else Item.from_record(look.items[item]))


async def on_show_more(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """more|<query>|<page>: the next results of the same query, none shown before."""
    services = get_services(context)
    callback = update.callback_query
    assert callback is not None and callback.message is not None
    _ = user_language(update, context)
    query = services.store.query(fields(update)[0])
    if query is None:
        await callback.answer(_(EXPIRED), show_alert=True)
        return
    index = services.index
    seen = set(query.exclude)
    for shown in query.shown:  # a byte-identical twin of something shown is no news either
        seen.update(index.ids_with_photo(shown) if shown in index else [shown])
    k = services.settings.top_k
    hits = await services.recommender.search(query.vector, k, exclude=sorted(seen), filters=query.filters)
    if not hits:
        await callback.answer(_("That's everything that matches."), show_alert=True)
        return
    await callback.answer()
    page = -(-len(query.shown) // k)
    services.store.extend_shown(query, [h.id for h in hits])
    first = page * k + 1
    await send_page(context, callback.message.chat.id, query, page, hits,
                    _("Matches {first}–{last} for your photo.", first=first, last=first + len(hits) - 1), _)


async def on_feedback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """fb|<query>|<page>|up|down: append the vote to STATE_DIR/feedback.jsonl."""
    services = get_services(context)
    callback = update.callback_query
    assert callback is not None
    query_id, page, vote = fields(update)
    query = services.store.query(query_id)
    services.store.record_feedback({
        "user": update.effective_user.id if update.effective_user else None,
        "query": query_id,
        "page": int(page),
        "vote": vote,
        "shown": query.page(int(page), services.settings.top_k) if query else None,
    })
    _ = user_language(update, context)
    await callback.answer(_("Thanks for the feedback!"))
    k = services.settings.top_k
    shown = len(query.page(int(page), k)) if query else 0
    if query is not None and shown:
        look = services.store.look(query.look) if query.look else None
        links = shop_links(services.index, query.page(int(page), k))
        await callback.edit_message_reply_markup(keyboard(query, int(page), shown, k, _, look, with_feedback=False,
                                                          links=links))
