"""`fashion-bot`: check what the bot needs, then poll Telegram or serve the webhook until stopped."""

from __future__ import annotations

import argparse
import logging
import sys

from bot.checks import CONFIGURATION, TRANSIENT, CheckFailed
from bot.config import ConfigError, health_url, load_settings
from bot.logs import redact
from indexing.about import package_version

log = logging.getLogger("bot")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="fashion-bot",
        description="The Telegram bot: answers a photo of clothing with the most similar products of the index. "
                    "Settings come from the environment and .env (see .env.example).",
        epilog=f"Exit codes: 0 stopped cleanly or all checks passed; {CONFIGURATION} a setting, the token, the index, "
               f"a model or a permission needs fixing (restarting will not help); {TRANSIENT} anything else "
               "(a server unreachable, a full disk): restarting later may help.")
    parser.add_argument("--check", action="store_true",
                        help="check the settings, the token's form, the index and its export, the pose models, the "
                             "state and the translations, print one line each, and exit")
    parser.add_argument("--online", action="store_true",
                        help="with --check: also ask Telegram (getMe) whether it accepts the token")
    parser.add_argument("--health", action="store_true",
                        help="ask the running bot's /healthz (HEALTH_LISTEN:HEALTH_PORT); exit 0 if it is healthy")
    parser.add_argument("--version", action="version", version=f"fashion-bot {package_version()}")
    arguments = parser.parse_args(argv)
    if arguments.online and not arguments.check:
        parser.error("--online goes with --check")
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if arguments.health:
        return ask_health()
    token = ""
    try:
        settings = load_settings()
        token = settings.token
        return check(settings, arguments.online) if arguments.check else serve(settings)
    except ConfigError as exc:
        return fail(str(exc), CONFIGURATION, token)
    except CheckFailed as exc:
        return fail(exc.message, exc.code, token)
    except Exception as exc:  # whatever is left is told in one line; the traceback only with LOG_LEVEL=DEBUG
        log.debug("cannot start", exc_info=True)
        return fail(f"cannot start: {type(exc).__name__}: {exc}", TRANSIENT, token)


def fail(message: str, code: int, token: str) -> int:
    """The failure in one line (a driver's message may span several), without the token."""
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    print(f"fashion-bot: {redact(line, token)}", file=sys.stderr)
    return code


def check(settings, online: bool) -> int:
    from bot.checks import LOCAL

    for step in LOCAL:
        print(f"ok  {step(settings)}", flush=True)
    if online:
        from bot.checks import telegram

        print(f"ok  {telegram(settings)}")
    return 0


def serve(settings) -> int:
    from bot.checks import run_local
    from bot.logs import configure_logging
    from bot.memory import limit_arenas

    limit_arenas()
    configure_logging(settings.log_level, settings.token)
    run_local(settings)
    from bot.app import run

    run(settings)
    log.info("stopped")
    return 0


def ask_health() -> int:
    import urllib.error
    import urllib.request

    try:
        url = health_url()
        with urllib.request.urlopen(url, timeout=5) as answer:
            print(answer.read().decode())
            return 0
    except urllib.error.HTTPError as exc:
        print(exc.read().decode(errors="replace"))
    except (OSError, ConfigError) as exc:
        print(f"fashion-bot: no health answer: {exc}", file=sys.stderr)
    return 1
