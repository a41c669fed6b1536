"""`fashion-bot`: read the settings, then poll Telegram or serve the webhook until stopped."""

from __future__ import annotations

import logging
import sys

from telegram import Update

from bot.app import build_application
from bot.config import ConfigError, load_settings
from bot.logs import configure_logging
from bot.memory import limit_arenas
from indexing import FashionIndexError

log = logging.getLogger("bot")


def main() -> int:
    limit_arenas()
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"fashion-bot: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.token)
    application = build_application(settings)
    try:
        if settings.mode == "webhook":
            application.run_webhook(
                listen=settings.webhook_listen,
                port=settings.webhook_port,
                url_path="telegram",
                secret_token=settings.webhook_secret or None,
                webhook_url=settings.webhook_url,
                allowed_updates=Update.ALL_TYPES,
            )
        else:
            application.run_polling(allowed_updates=Update.ALL_TYPES)
    except FashionIndexError as exc:
        print(f"fashion-bot: cannot start: {exc}", file=sys.stderr)
        return 1
    log.info("stopped")
    return 0
