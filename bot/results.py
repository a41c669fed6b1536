"""A page of results as the user sees it: the album, then one message with the buttons."""

from __future__ import annotations

from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.ext import ContextTypes

from bot.album import send_album
from bot.services import services
from bot.state import Query
from indexing import Hit

EXPIRED = "This search has expired. Please send the photo again."


def keyboard(query_id: str, page: int, shown: int, k: int, with_feedback: bool = True) -> InlineKeyboardMarkup:
    # callback_data is capped at 64 bytes: a short query id, the page and the rank are enough.
    rows = [
        [InlineKeyboardButton(f"🔎 #{rank}", callback_data=f"like|{query_id}|{page}|{rank}")
         for rank in range(1, shown + 1)],
        [InlineKeyboardButton(f"Show {k} more ▶", callback_data=f"more|{query_id}|{page}")],
    ]
    if with_feedback:
        rows.append([InlineKeyboardButton("👍 Helpful", callback_data=f"fb|{query_id}|{page}|up"),
                     InlineKeyboardButton("👎 Not helpful", callback_data=f"fb|{query_id}|{page}|down")])
    return InlineKeyboardMarkup(rows)


def describe_filters(filters: dict[str, list[str]]) -> str:
    words = [value for values in filters.values() for value in values]
    return f"Filters from your caption: {', '.join(words)}." if words else ""


async def send_page(context: ContextTypes.DEFAULT_TYPE, chat_id: int, query: Query, page: int,
                    hits: Sequence[Hit], title: str, reply_to: int | None = None) -> None:
    found = services(context)
    await send_album(context.bot, chat_id, hits, found.recommender.index, found.store, reply_to=reply_to)
    lines = [title, describe_filters(query.filters), "Tap 🔎 #n for more like that product."]
    await context.bot.send_message(chat_id, "\n".join(line for line in lines if line),
                                   reply_markup=keyboard(query.id, page, len(hits), found.settings.top_k))
