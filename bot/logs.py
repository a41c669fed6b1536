"""Logging set-up that keeps the bot token out of every line the bot writes: messages, tracebacks, and the text of
python-telegram-bot's own exceptions (InvalidToken quotes the token it was given)."""

from __future__ import annotations

import logging
import sys
import threading
import traceback


def redact(text: str, token: str) -> str:
    """text without the token, nor its secret part (what follows the bot's id) on its own."""
    if not token:
        return text
    text = text.replace(token, "<token>")
    secret = token.partition(":")[2]
    return text.replace(secret, "<token>") if len(secret) >= 8 else text


class RedactingFormatter(logging.Formatter):
    """Redacts the whole formatted record, so that a traceback (exc_info) is covered as well as the message."""

    def __init__(self, token: str):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.token = token

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.token)


def configure_logging(level: str, token: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(token))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL, which holds the token, at INFO.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # pymilvus logs a traceback for every call that fails, several per search while Milvus restarts; the store's
    # own error, retries spent, is the one line that reaches the log (as a warning, or in /healthz).
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)

    # An exception that escapes everything (a thread's, or the interpreter's last) is printed redacted too.
    def print_redacted(kind, value, trace) -> None:
        sys.stderr.write(redact("".join(traceback.format_exception(kind, value, trace)), token))

    sys.excepthook = print_redacted
    threading.excepthook = lambda hook: print_redacted(hook.exc_type, hook.exc_value, hook.exc_traceback)
