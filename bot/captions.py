"""What an album says under each product: name, price as a shopper reads it, brand and colour, similarity."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from indexing import Hit

CURRENCY_SIGNS = {"USD": "$", "EUR": "€", "GBP": "£", "INR": "₹", "JPY": "¥", "CNY": "¥", "RUB": "₽", "KRW": "₩",
                  "TRY": "₺", "UAH": "₴", "ILS": "₪", "BRL": "R$", "AUD": "A$", "CAD": "C$", "PLN": "zł"}
SIGN_AFTER = {"PLN"}
PRICE = re.compile(r"^\s*(?:([A-Z]{3})\s*)?([0-9][0-9,]*(?:\.[0-9]+)?)\s*([A-Z]{3})?\s*$")


def shopper_price(text: str) -> str:
    """`1299.00 INR` -> `₹1,299`, `19.90 EUR` -> `€19.90`; what does not parse is shown as written."""
    match = PRICE.match(text.upper())
    if not match or not (match.group(1) or match.group(3)):
        return text.strip()
    try:
        amount = Decimal(match.group(2).replace(",", ""))
    except InvalidOperation:
        return text.strip()
    code = match.group(1) or match.group(3)
    number = f"{amount:,.0f}" if amount == amount.to_integral_value() else f"{amount:,.2f}"
    sign = CURRENCY_SIGNS.get(code)
    if sign is None:
        return f"{number} {code}"
    return f"{number} {sign}" if code in SIGN_AFTER else f"{sign}{number}"


def price_line(meta: Mapping[str, str]) -> str:
    """The price, or the sale price with the old one beside it."""
    price, sale = meta.get("price", ""), meta.get("sale_price", "")
    if sale and price and shopper_price(sale) != shopper_price(price):
        return f"{shopper_price(sale)} (was {shopper_price(price)})"
    return shopper_price(sale or price) if (sale or price) else ""


def caption(hit: Hit) -> str:
    """A feed product's title, price, brand and colour; a Kaggle-style catalogue's name, type and colour."""
    meta = hit.meta
    if "title" in meta or "price" in meta:
        name = meta.get("title") or f"Product {hit.id}"
        details = " · ".join(v for v in (meta.get("brand"), meta.get("color")) if v)
        lines = [f"#{hit.rank} · {name}", price_line(meta), details]
    else:
        name = meta.get("productDisplayName") or f"Product {hit.id}"
        lines = [f"#{hit.rank} · {name}",
                 " · ".join(v for v in (meta.get("articleType"), meta.get("baseColour"), meta.get("gender")) if v)]
    lines.append(f"Similarity {max(hit.score, 0.0):.0%} · id {hit.id}")
    return "\n".join(line for line in lines if line)[:1024]


def product_name(meta: Mapping[str, str], product_id: str) -> str:
    return meta.get("title") or meta.get("productDisplayName") or product_id
