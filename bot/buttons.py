"""Handlers for the inline buttons under each album: more like #n, show more, feedback."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.results import EXPIRED, keyboard, send_page
from bot.services import services


def parts(update: Update) -> list[str]:
    assert update.callback_query is not None
    return (update.callback_query.data or "").split("|")


async def on_more_like(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """like|<query>|<page>|<rank>: search again from that product's stored vector."""
    found = services(context)
    callback = update.callback_query
    assert callback is not None and callback.message is not None
    _, query_id, page, rank = parts(update)
    query = found.store.query(query_id)
    k = found.settings.top_k
    ids = query.page(int(page), k) if query else []
    if query is None or not 0 < int(rank) <= len(ids):
        await callback.answer(EXPIRED, show_alert=True)
        return
    index = found.recommender.index
    source = ids[int(rank) - 1]
    if source not in index:
        await callback.answer("That product is no longer in the catalogue.", show_alert=True)
        return
    await callback.answer(f"Looking for more like #{rank}…")
    vector = index.vector(source)
    twins = index.ids_with_photo(source)
    hits = await found.recommender.search(vector, k, exclude=twins, filters=query.filters)
    fresh = found.store.new_query(update.effective_user.id if update.effective_user else None,
                                  vector, query.filters, twins, [h.id for h in hits])
    name = index.product(source).get("meta", {}).get("productDisplayName") or source
    await send_page(context, callback.message.chat.id, fresh, 0, hits, f"More like #{rank}: {name}")


async def on_show_more(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """more|<query>|<page>: the next results of the same query, none shown before."""
    found = services(context)
    callback = update.callback_query
    assert callback is not None and callback.message is not None
    query = found.store.query(parts(update)[1])
    if query is None:
        await callback.answer(EXPIRED, show_alert=True)
        return
    index = found.recommender.index
    seen = set(query.exclude)
    for shown in query.shown:  # a byte-identical twin of something shown is no news either
        seen.update(index.ids_with_photo(shown) if shown in index else [shown])
    k = found.settings.top_k
    hits = await found.recommender.search(query.vector, k, exclude=sorted(seen), filters=query.filters)
    if not hits:
        await callback.answer("That's everything that matches.", show_alert=True)
        return
    await callback.answer()
    page = -(-len(query.shown) // k)
    found.store.extend_shown(query, [h.id for h in hits])
    first = page * k + 1
    await send_page(context, callback.message.chat.id, query, page, hits,
                    f"Matches {first}–{first + len(hits) - 1} for your photo.")


async def on_feedback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """fb|<query>|<page>|up|down: append the vote to STATE_DIR/feedback.jsonl."""
    found = services(context)
    callback = update.callback_query
    assert callback is not None
    _, query_id, page, vote = parts(update)
    query = found.store.query(query_id)
    found.store.record_feedback({
        "user": update.effective_user.id if update.effective_user else None,
        "query": query_id,
        "page": int(page),
        "vote": vote,
        "shown": query.page(int(page), found.settings.top_k) if query else None,
    })
    await callback.answer("Thanks for the feedback!")
    k = found.settings.top_k
    shown = len(query.page(int(page), k)) if query else 0
    if shown:
        await callback.edit_message_reply_markup(keyboard(query_id, int(page), shown, k, with_feedback=False))
