"""The bot in seven languages: every message translated, the user's language from Telegram or /language (kept in
the state), prices in the locale's format, and right-to-left text that still reads right."""

from __future__ import annotations

import gettext
import re
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot.captions import shopper_price
from bot.i18n import FSI, LANGUAGES, LOCALE_DIR, PDI, RLM, language
from tests.test_bot_items import buttons, flatlay_photo

ROOT = Path(__file__).resolve().parents[1]
FIELD = re.compile(r"\{\w+\}")
# What each language calls the outlined photo's "whole photo" button and the album's similarity label: the reply
# must be in the user's language, not only have been looked up.
WHOLE_PHOTO = {"en": "Whole photo", "ru": "Всё фото", "es": "Toda la foto", "pt": "Foto inteira",
               "hi": "पूरी फ़ोटो", "id": "Seluruh foto", "ar": "الصورة كلها"}
SIMILARITY = {"en": "Similarity", "ru": "Сходство", "es": "Similitud", "pt": "Semelhança", "hi": "समानता",
              "id": "Kemiripan", "ar": "التشابه"}


def messages_in_code() -> set[str]:
    """Every text the bot marks for translation (_ and N_), as `pybabel extract` finds them."""
    found = extract_from_dir(str(ROOT / "bot"), method_map=[("**.py", "python")], keywords={"_": None, "N_": None})
    return {message for _file, _line, message, _comments, _context in found if isinstance(message, str)}


@pytest.mark.parametrize("code", [c for c in LANGUAGES if c != "en"])
def test_every_message_the_bot_writes_has_a_translation(code):
    with open(LOCALE_DIR / code / "LC_MESSAGES" / "messages.po", "rb") as po:
        catalogue = read_po(po)
    translated = {m.id: m for m in catalogue if m.id}
    missing = sorted(m for m in messages_in_code() if m not in translated or not translated[m].string
                     or translated[m].fuzzy)
    assert not missing, f"{code}: no translation for {missing} (see docs/languages.md)"
    for message in messages_in_code():  # a translation keeps the fields that are filled in
        assert sorted(FIELD.findall(message)) == sorted(FIELD.findall(translated[message].string)), message


@pytest.mark.parametrize("code", [c for c in LANGUAGES if c != "en"])
def test_compiled_catalogues_are_those_of_the_po_files(code):
    """A .mo older than its .po (an install not redone) would speak the old words: reinstall compiles them."""
    with open(LOCALE_DIR / code / "LC_MESSAGES" / "messages.po", "rb") as po:
        catalogue = read_po(po)
    compiled = gettext.translation("messages", LOCALE_DIR, languages=[code])
    stale = [m.id for m in catalogue if m.id and compiled.gettext(m.id) != m.string]
    assert not stale, f"bot/locale/{code} is compiled from an older .po: pip install -e . (or make setup)"


def test_prices_are_written_as_each_language_writes_them():
    assert shopper_price("1299.00 INR", language("en")) == "₹1,299"
    assert shopper_price("19.90 EUR", language("en")) == "€19.90"
    assert shopper_price("1299.00 INR", language("ru")) == "1\xa0299\xa0₹"
    assert shopper_price("19.90 EUR", language("es")) == "19,90\xa0€"
    assert shopper_price("1299.00 INR", language("hi")) == "₹1,299"
    assert shopper_price("ask in store", language("ru")) == "ask in store"  # not a price: as the shop wrote it
    assert language("pt").price(Decimal("5.5"), "USD") == "US$\xa05,50"


def test_right_to_left_lines_start_right_to_left_and_quote_names_in_isolation():
    arabic = language("ar")
    text = arabic.lines("#1 · " + arabic.quote("Black Tshirt"), arabic("Thanks for the feedback!"))
    assert all(line.startswith(RLM) for line in text.splitlines())
    assert f"{FSI}Black Tshirt{PDI}" in text
    russian = language("ru")  # left to right: no marks at all
    assert RLM not in russian.lines("a", "b") and russian.quote("Black") == "Black"


def test_telegram_language_codes_fall_back_to_english():
    assert language("pt-BR").code == "pt" and language("ar-SA").code == "ar"
    assert language("de").code == "en" and language("").code == "en"


def test_each_language_renders_the_album_and_the_outlined_photos_buttons(fake, bot):
    photo = flatlay_photo()
    for n, code in enumerate(LANGUAGES):
        user = 9100 + n
        fake.language_codes[user] = code
        fake.send_photo(user, photo, width=1280, height=960)
        album = fake.wait_for("sendMediaGroup", chat_id=user)[0]
        outline = fake.wait_for("sendPhoto", chat_id=user)[0]
        assert all(SIMILARITY[code] in item["caption"] for item in album.album()), (code, album.album())
        keys = buttons(outline.response)
        assert any(WHOLE_PHOTO[code] in key for key in keys), (code, keys)
        _ = language(code)
        assert _("Show {k} more ▶", k=5).lstrip(RLM) in {key.lstrip(RLM) for key in keys}
        title = _("Top {count} matches for {item} (highlighted).", count=5, item=f"1 {_('Item')}")
        assert outline.params["caption"].startswith(RLM + title if code == "ar" else title), code
        if code == "ar":
            assert all(line.startswith(RLM) for item in album.album() for line in item["caption"].splitlines())


def test_language_command_changes_the_language_and_it_survives_a_restart(fake, start_bot, tmp_path):
    user = 9200
    fake.language_codes[user] = "es"
    state = tmp_path / "state"
    first = start_bot(state_dir=state)
    fake.message(user, text="/help", entities=[{"type": "bot_command", "offset": 0, "length": 5}])
    assert "Envíame una foto" in fake.wait_for("sendMessage", chat_id=user)[0].text  # Telegram's language
    fake.message(user, text="/language", entities=[{"type": "bot_command", "offset": 0, "length": 9}])
    menu = fake.wait_for("sendMessage", count=2, chat_id=user)[1]
    assert menu.text == "Elige el idioma en el que escribo:"
    choices = buttons(menu.response)
    assert {"Русский", "العربية", "हिन्दी", "Bahasa Indonesia", "Português", "English"} <= set(choices)
    fake.press(user, menu.response, choices["Русский"])
    edited = fake.wait_for("editMessageText", chat_id=user)[0]
    assert edited.text.startswith("Теперь я пишу на языке: Русский.")
    first.stop()

    second = start_bot(state_dir=state)  # a restart: the choice is in the state, not in memory
    fake.message(user, text="/help", entities=[{"type": "bot_command", "offset": 0, "length": 5}])
    assert "Пришлите мне фото" in fake.wait_for("sendMessage", count=3, chat_id=user)[2].text
    fake.message(user, text="/language auto", entities=[{"type": "bot_command", "offset": 0, "length": 9}])
    assert fake.wait_for("sendMessage", count=4, chat_id=user)[3].text.startswith("A partir de ahora escribo en")
    second.stop()
