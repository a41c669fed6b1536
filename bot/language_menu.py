"""Which language the bot speaks to a user, and the handlers of /language and its menu."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from bot import callbacks
from bot.i18n import LANGUAGES, Language, language, normalise
from bot.services import get_services

AUTOMATIC = "auto"  # the menu's choice of Telegram's language_code


async def user_language(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Language:
    """The language the user chose with /language, else their Telegram app's, else English; looked up once per
    update, by the first handler (or the guard) that writes to the user, and kept on the update's context."""
    chosen = getattr(context, "language", None)
    if isinstance(chosen, Language):
        return chosen
    user = update.effective_user
    code = None
    if user is not None:
        code = await get_services(context).state.language(user.id) or normalise(user.language_code)
    found = language(code or "en")
    context.language = found  # type: ignore[attr-defined]
    return found


def menu(current: str | None, _: Language) -> InlineKeyboardMarkup:
    """One button per shipped language (✓ on the user's choice), and one to follow the Telegram app."""
    buttons = [InlineKeyboardButton(("✓ " if code == current else "") + name, callback_data=callbacks.language(code))
               for code, name in LANGUAGES.items()]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    rows.append([InlineKeyboardButton(("✓ " if current is None else "") + _("As my Telegram app"),
                                      callback_data=callbacks.language(AUTOMATIC))])
    return InlineKeyboardMarkup(rows)


async def on_language(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/language shows the menu; /language <code> (e.g. /language ru) chooses at once."""
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    state = get_services(context).state
    if context.args:
        code = normalise(context.args[0]) or (AUTOMATIC if context.args[0].lower() == AUTOMATIC else None)
        if code is not None:
            await message.reply_text(chosen_text(await store_choice(update, context, code)))
            return
    _ = await user_language(update, context)
    await message.reply_text(_("Choose the language I write in:"),
                             reply_markup=menu(await state.language(user.id), _))


async def on_language_chosen(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """lang|<code>: store the choice (for every replica, across restarts) and answer in the new language."""
    callback = update.callback_query
    assert callback is not None
    code = callbacks.fields(callback.data)[0]
    chosen = code if code in LANGUAGES else None
    _ = await store_choice(update, context, chosen or AUTOMATIC)
    await callback.answer(_.name)
    await callback.edit_message_text(chosen_text(_), reply_markup=menu(chosen, _))


async def store_choice(update: Update, context: ContextTypes.DEFAULT_TYPE, code: str) -> Language:
    user = update.effective_user
    assert user is not None
    await get_services(context).state.set_language(user.id, None if code == AUTOMATIC else code)
    context.language = None  # type: ignore[attr-defined]
    return await user_language(update, context)


def chosen_text(_: Language) -> str:
    return _.lines(_("From now on I write in {language}.", language=_.name),
                   _("/language changes it again."))
