"""What an album says under each product: name, price as the shopper's language writes it, brand and colour,
similarity. Names and feed text stay as the shop wrote them; only the labels are translated."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from bot.i18n import N_, Language
from indexing import Hit

PRICE = re.compile(r"^\s*(?:([A-Z]{3})\s*)?([0-9][0-9,]*(?:\.[0-9]+)?)\s*([A-Z]{3})?\s*$")
SIMILARITY = N_("Similarity {score} · id {id}")
WAS = N_("{price} (was {old})")


def parse_price(text: str) -> tuple[Decimal, str] | None:
    """A feed's price (`1299.00 INR`, `USD 5.5`) as an amount and its currency; None if it is not one."""
    match = PRICE.match(text.upper())
    if not match or not (match.group(1) or match.group(3)):
        return None
    try:
        return Decimal(match.group(2).replace(",", "")), match.group(1) or match.group(3)
    except InvalidOperation:
        return None


def shopper_price(text: str, _: Language) -> str:
    """`1299.00 INR` -> `₹1,299` in English, `1 299 ₹` in Russian; what does not parse is shown as written."""
    parsed = parse_price(text)
    return _.price(*parsed) if parsed else text.strip()


def current_price(meta: Mapping[str, str]) -> str:
    """What the product costs now, as the feed writes it: the sale price, else the price."""
    return meta.get("sale_price") or meta.get("price") or ""


def price_line(meta: Mapping[str, str], _: Language) -> str:
    """The price, or the sale price with the old one beside it."""
    price, sale = meta.get("price", ""), meta.get("sale_price", "")
    if sale and price and shopper_price(sale, _) != shopper_price(price, _):
        return _(WAS, price=_.quote(shopper_price(sale, _)), old=_.quote(shopper_price(price, _)))
    return _.quote(shopper_price(sale or price, _)) if (sale or price) else ""


def caption(hit: Hit, _: Language, similarity: bool = True) -> str:
    """A feed product's title, price, brand and colour; a Kaggle-style catalogue's name, type and colour; and,
    for a search's result, how similar it is."""
    meta = hit.meta
    name = _.quote(product_name(meta, hit.id, _))
    if "title" in meta or "price" in meta:
        details = " · ".join(_.quote(v) for v in (meta.get("brand"), meta.get("color")) if v)
        lines = [f"#{hit.rank} · {name}", price_line(meta, _), details]
    else:
        lines = [f"#{hit.rank} · {name}",
                 " · ".join(_.quote(v) for v in (meta.get("articleType"), meta.get("baseColour"), meta.get("gender"))
                            if v)]
    if similarity:
        lines.append(_(SIMILARITY, score=_.percent(max(hit.score, 0.0)), id=_.quote(hit.id)))
    return _.lines(*lines)[:1024]


def product_name(meta: Mapping[str, str], product_id: str, _: Language) -> str:
    return meta.get("title") or meta.get("productDisplayName") or _("Product {id}", id=product_id)
