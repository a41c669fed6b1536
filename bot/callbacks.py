"""The inline buttons' callback data: one short text per kind of button, within Telegram's 64 bytes.

Each is `<kind>|<field>|...`; the app routes on the kind (PATTERNS), each handler reads its fields (fields).
"""

from __future__ import annotations

LIKE, ITEM, MORE, FEEDBACK = "like", "item", "more", "fb"
SAVE, UNSAVE, SAVED, LANGUAGE, NEAREST = "save", "unsave", "saved", "lang", "near"
PATTERNS = {kind: rf"^{kind}\|" for kind in (LIKE, ITEM, MORE, FEEDBACK, SAVE, UNSAVE, SAVED, LANGUAGE, NEAREST)}


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


def save(query: str, page: int, rank: int) -> str:
    """♡ #rank: save that product of the query's page."""
    return f"{SAVE}|{query}|{page}|{rank}"


def unsave(saved: int) -> str:
    """Remove a saved product (by its row in the saved list)."""
    return f"{UNSAVE}|{saved}"


def saved_page(offset: int) -> str:
    """The next page of /saved."""
    return f"{SAVED}|{offset}"


def language(code: str) -> str:
    return f"{LANGUAGE}|{code}"


def nearest(query: str) -> str:
    """After "nothing similar": show the nearest products anyway."""
    return f"{NEAREST}|{query}"


def fields(data: str | None) -> list[str]:
    """The fields after the kind."""
    return (data or "").split("|")[1:]
