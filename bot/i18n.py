"""The bot's languages: gettext catalogues (bot/locale, compiled at install), the locale's numbers and prices,
and right-to-left text that still reads right when it quotes a product's name.

Every text the bot writes is marked: `_("...")` where it is written, `N_("...")` where it is defined ahead of use
(then translated with `_` when shown). `pybabel extract` finds both (see docs/languages.md).
"""

from __future__ import annotations

import gettext
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel.numbers import format_currency, format_decimal, format_percent, get_currency_symbol

from indexing.errors import FashionIndexError

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
DEFAULT = "en"
# Shipped languages, each named as its speakers write it (the /language menu shows these).
LANGUAGES = {"en": "English", "ru": "Русский", "es": "Español", "pt": "Português", "hi": "हिन्दी",
             "id": "Bahasa Indonesia", "ar": "العربية"}
RIGHT_TO_LEFT = {"ar", "fa", "he", "ur"}
# Unicode's own marks: a right-to-left line starts with RLM so that a line beginning with "#1" or a Latin name
# is still laid out right to left, and text in another script is isolated (FSI ... PDI) so that its own
# direction does not reorder the words around it.
RLM, FSI, PDI = "\u200f", "\u2068", "\u2069"


def N_(text: str) -> str:
    """Mark a text for translation where it is defined; it is translated where it is shown."""
    return text


class CatalogueMissingError(FashionIndexError):
    """A shipped language has no compiled catalogue: the package was not installed (which compiles them)."""


@dataclass(frozen=True)
class Language:
    """One language: its translations, and how it writes numbers, prices and text in other scripts."""

    code: str
    translations: gettext.NullTranslations

    def __call__(self, text: str, /, **fields: Any) -> str:
        """The text in this language, with its {fields} filled in."""
        translated = self.translations.gettext(text)
        return translated.format(**fields) if fields else translated

    @property
    def right_to_left(self) -> bool:
        return self.code in RIGHT_TO_LEFT

    @property
    def name(self) -> str:
        return LANGUAGES.get(self.code, self.code)

    def quote(self, text: str) -> str:
        """A product's name, an id or a price as written, kept in its own direction inside this language's line."""
        return f"{FSI}{text}{PDI}" if self.right_to_left and text else text

    def lines(self, *lines: str) -> str:
        """Lines of a message, the empty ones left out; in a right-to-left language each starts right to left."""
        kept = [line for line in lines if line]
        return "\n".join(RLM + line for line in kept) if self.right_to_left else "\n".join(kept)

    def button(self, text: str) -> str:
        return RLM + text if self.right_to_left else text

    def number(self, value: int | float) -> str:
        return format_decimal(value, locale=self.code)

    def percent(self, share: float) -> str:
        return format_percent(share, locale=self.code)

    def price(self, amount: Decimal, currency: str) -> str:
        """An amount in the feed's currency as this language writes it; whole amounts without decimals."""
        pattern = Locale.parse(self.code).currency_formats["standard"].pattern
        if amount == amount.to_integral_value():
            pattern = pattern.replace("0.00", "0")
        text = format_currency(amount, currency, format=pattern, locale=self.code, currency_digits=False)
        return spaced(text, get_currency_symbol(currency, self.code))


def spaced(text: str, symbol: str) -> str:
    """CLDR's currency spacing, which Babel leaves out: a symbol written in letters (CHF, Rs) never touches the
    digits."""
    if not symbol[-1:].isalpha():
        return text
    mark = re.escape(symbol)
    text = re.sub(rf"(?<!\w)({mark})(?=\d)", "\\1\xa0", text)
    return re.sub(rf"(?<=\d)({mark})(?!\w)", "\xa0\\1", text)


def normalise(code: str | None) -> str | None:
    """A shipped language for Telegram's language_code (`pt-br` -> `pt`), or None."""
    if not code:
        return None
    base = code.strip().lower().replace("_", "-").split("-")[0]
    return base if base in LANGUAGES else None


@cache
def language(code: str) -> Language:
    """A shipped language by code (anything else: English), its catalogue read once."""
    code = normalise(code) or DEFAULT
    if code == DEFAULT:
        return Language(code, gettext.NullTranslations())
    if not (LOCALE_DIR / code / "LC_MESSAGES" / f"{DOMAIN}.mo").is_file():
        raise CatalogueMissingError(f"the {LANGUAGES[code]} translations are not compiled: reinstall the package "
                                    "(pip install -e . or make setup), which compiles bot/locale/*.po")
    return Language(code, gettext.translation(DOMAIN, LOCALE_DIR, languages=[code]))


def check_catalogues() -> None:
    """Load every shipped language, so that a missing catalogue stops the bot at start, not at a user's reply."""
    for code in LANGUAGES:
        language(code)
