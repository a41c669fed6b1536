"""The inline buttons' callback data: one short text per kind of button, within Telegram's 64 bytes.

Each is `<kind>|<field>|...`; the app routes on the kind (PATTERNS), each handler reads its fields (fields).
"""

from __future__ import annotations

LIKE, ITEM, MORE, FEEDBACK = "like", "item", "more", "fb"
PATTERNS = {kind: rf"^{kind}\|" for kind in (LIKE, ITEM, MORE, FEEDBACK)}


def more_like(query: str, page: int, rank: int) -> str:
    """🔎 #rank: more like that product of the query's page."""
    return f"{LIKE}|{query}|{page}|{rank}"


def item(look: str, n: int) -> str:
    """An item of the user's photo (or WHOLE)."""
    return f"{ITEM}|{look}|{n}"


def show_more(query: str, page: int) -> str:
    return f"{MORE}|{query}|{page}"


def feedback(query: str, page: int, vote: str) -> str:
    """vote: up or down."""
    return f"{FEEDBACK}|{query}|{page}|{vote}"


def fields(data: str | None) -> list[str]:
    """The fields after the kind."""
    return (data or "").split("|")[1:]
