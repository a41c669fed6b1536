"""A page of results as the user sees it: the album, then one message with the buttons.

For a photo, the buttons message is the photo itself, small, with the items services outlined and numbered
and the one searched highlighted; its keyboard lets the user search another item or the whole photo.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

from PIL import Image
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.ext import ContextTypes

from bot import callbacks
from bot.album import send_album
from bot.i18n import N_, Language
from bot.services import get_services
from bot.state import Look, Query
from indexing import Hit, Index
from indexing.extract.images import encode
from indexing.finder.first_cut import WHOLE
from indexing.finder.sheet import outline_items

EXPIRED = N_("This search has expired. Please send the photo again.")
GONE = N_("That product is no longer in the catalogue.")
ITEMS_PER_ROW = 4


def shop_link(record: Mapping[str, Any] | None) -> str | None:
    """A product's `link` from the feed, where it is an http(s) URL that a button may open."""
    link = (record or {}).get("meta", {}).get("link", "")
    return link if re.match(r"^https?://[^\s]+$", link, re.IGNORECASE) else None


def shop_links(index: Index, ids: Sequence[str]) -> list[str | None]:
    """shop_link of each of these products."""
    records = index.products_of(ids)
    return [shop_link(records.get(pid)) for pid in ids]


def keyboard(query: Query, page: int, shown: int, k: int, _: Language, look: Look | None = None,
             with_feedback: bool = True, links: Sequence[str | None] = ()) -> InlineKeyboardMarkup:
    """🔎 #n and ♡ #n per product, 🛒 to the shop, the photo's items, the next page, and feedback."""
    rows = [
        [InlineKeyboardButton(f"🔎 #{rank}", callback_data=callbacks.more_like(query.id, page, rank))
         for rank in range(1, shown + 1)],
        [InlineKeyboardButton(f"♡ #{rank}", callback_data=callbacks.save(query.id, page, rank))
         for rank in range(1, shown + 1)],
    ]
    shop = [InlineKeyboardButton(f"🛒 {rank}", url=link) for rank, link in enumerate(links, 1) if link]
    if shop:
        rows.append(shop)
    if look is not None and look.boxes:
        items = [InlineKeyboardButton(("▸ " if query.item == i else "") + look.label(i, _),
                                      callback_data=callbacks.item(look.id, i)) for i in range(len(look.boxes))]
        items.append(InlineKeyboardButton(("▸ " if query.item == WHOLE else "") + _("Whole photo"),
                                          callback_data=callbacks.item(look.id, WHOLE)))
        rows += [items[i : i + ITEMS_PER_ROW] for i in range(0, len(items), ITEMS_PER_ROW)]
    rows.append([InlineKeyboardButton(_.button(_("Show {k} more ▶", k=_.number(k))),
                                      callback_data=callbacks.show_more(query.id, page))])
    if with_feedback:
        rows.append([InlineKeyboardButton(_("👍 Helpful"), callback_data=callbacks.feedback(query.id, page, "up")),
                     InlineKeyboardButton(_("👎 Not helpful"),
                                          callback_data=callbacks.feedback(query.id, page, "down"))])
    return InlineKeyboardMarkup(rows)


def describe_filters(filters: dict[str, list[str]], _: Language) -> str:
    words = [value for values in filters.values() for value in values]
    return _("Filters from your caption: {words}.", words=_.quote(", ".join(words))) if words else ""


def outlined(picture: bytes, look: Look, item: int | None) -> bytes:
    """The small copy of the user's photo with the look's items outlined, as a JPEG to send (blocking)."""
    image = Image.open(io.BytesIO(picture)).convert("RGB")
    highlight = item if item is not None and item >= 0 else None
    return jpeg_bytes(outline_items(image, look.boxes, look.size, highlight, side=max(image.size)))


def jpeg_bytes(image: Image.Image) -> bytes:
    """A picture for Telegram, or the photo's small copy (KEPT_SIDE) to outline."""
    return encode(image, quality=85)


async def send_buttons(context: ContextTypes.DEFAULT_TYPE, chat_id: int, query: Query, page: int, shown: int,
                       title: str, _: Language, look: Look | None = None) -> None:
    """The message under an album: the keyboard, on the outlined photo when the query came from one (look:
    that photo's, when the caller has it; else it is read from the store)."""
    services = get_services(context)
    if look is None and query.look:
        look = await services.state.look(query.look)
    k = services.settings.top_k
    links = await asyncio.to_thread(shop_links, services.index, query.page(page, k))
    markup = keyboard(query, page, shown, k, _, look, links=links)
    lines = [title, describe_filters(query.filters, _), _("Tap 🔎 #n for more like that product, ♡ #n to save it.")]
    if look is None:
        await context.bot.send_message(chat_id, _.lines(*lines), reply_markup=markup)
        return
    if look.boxes:
        lines.append(_("Tap an item to search it instead."))
    picture = await asyncio.to_thread(outlined, await services.pictures.of(context.bot, look), look, query.item)
    await context.bot.send_photo(chat_id, picture, caption=_.lines(*lines)[:1024], reply_markup=markup)


async def send_page(context: ContextTypes.DEFAULT_TYPE, chat_id: int, query: Query, page: int,
                    hits: Sequence[Hit], title: str, _: Language, look: Look | None = None) -> None:
    services = get_services(context)
    await send_album(context.bot, chat_id, hits, services.index, services.state, _)
    await send_buttons(context, chat_id, query, page, len(hits), title, _, look)


def item_title(query: Query, look: Look, count: int, _: Language) -> str:
    """What the page under an album says it searched."""
    if query.item is None or look.packshot:
        return _("Top {count} matches for your photo.", count=count)
    if query.item == WHOLE:
        if look.searched is None and look.boxes:
            return _("Top {count} matches for the whole photo: no single item stood out. For better matches, "
                     "tap an item below or send a photo cropped to one garment.", count=count)
        if look.searched is None:
            return _("Top {count} matches for the whole photo: I couldn't make out a single item. For better "
                     "matches, send a photo cropped to one garment.", count=count)
        return _("Top {count} matches for the whole photo.", count=count)
    return _("Top {count} matches for {item} (highlighted).", count=count, item=look.label(query.item, _))
