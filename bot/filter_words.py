"""Caption words that name a gender, a product type or a colour of the catalogue become filters."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# Checked in this order: a word that could be two things counts as the first. The Kaggle catalogue's
# columns, then a product feed's (Merchant Center spells gender male/female/unisex).
COLUMNS = ("gender", "baseColour", "color", "articleType", "subCategory")
SYNONYMS = {
    "men": ["man", "male", "mens", "gents", "guy", "guys"],
    "women": ["woman", "female", "womens", "ladies", "lady"],
    "male": ["men", "man", "mens", "gents", "guy", "guys"],
    "female": ["women", "woman", "womens", "ladies", "lady"],
    "boys": ["boy"],
    "girls": ["girl"],
    "tshirts": ["tee", "tees"],
}
LONGEST = 3  # words in the longest catalogue phrase we look for ("navy blue", "sports shoes")


def normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]+", "", text.lower().replace("-", "")).strip()


def variants(phrase: str) -> set[str]:
    """A phrase and its simple singular/plural forms: "shoes" <-> "shoe", "watches" <-> "watch"."""
    forms = {phrase}
    if phrase.endswith("es"):
        forms.add(phrase[:-2])
    if phrase.endswith("s"):
        forms.add(phrase[:-1])
    else:
        forms.update({phrase + "s", phrase + "es"})
    return forms


@dataclass(frozen=True)
class CaptionFilters:
    """What a caption asks for: filters by column, and the words that made them."""

    filters: dict[str, list[str]] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)  # as the catalogue spells them, for the reply


class Vocabulary:
    def __init__(self, facets: Mapping[str, Sequence[str]]):
        self.terms: dict[str, tuple[str, str]] = {}
        for column in COLUMNS:
            for value in facets.get(column, ()):
                phrase = normalise(value)
                for form in variants(phrase) | {v for s in SYNONYMS.get(phrase, ()) for v in variants(s)}:
                    if form and len(form) > 2:
                        self.terms.setdefault(form, (column, value))

    def find(self, caption: str | None) -> CaptionFilters:
        words = normalise(caption or "").split()
        found = CaptionFilters()
        i = 0
        while i < len(words):
            for size in range(min(LONGEST, len(words) - i), 0, -1):
                match = self.terms.get(" ".join(words[i : i + size]))
                if match:
                    column, value = match
                    if value not in found.filters.setdefault(column, []):
                        found.filters[column].append(value)
                        found.words.append(value)
                    i += size
                    break
            else:
                i += 1
        return found
