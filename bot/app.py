"""Assemble the python-telegram-bot Application: handlers, retries, and start-up in post_init."""

from __future__ import annotations

import asyncio
import logging
import time

from telegram import Update
from telegram.error import InvalidToken, NetworkError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import HTTPXRequest

from bot import buttons, callbacks, commands, fallbacks, language_menu, photos, saved
from bot.alerts import AlertSender, compare_saved
from bot.checks import TRANSIENT, CheckFailed, start_failure, telegram_failure
from bot.config import Settings
from bot.filter_words import Vocabulary
from bot.guards import guard
from bot.health import listening, serve_health
from bot.housekeeping import keep_house
from bot.i18n import check_catalogues
from bot.inbox import AnswerProcessor, Inbox, follow_inbox
from bot.memory import release_freed_memory
from bot.metrics import Metrics, build_info
from bot.ratelimit import RateLimiter
from bot.recommender import Recommender
from bot.reload import follow_index
from bot.retry import Retrier
from bot.services import Services
from bot.state import Store
from bot.state_postgres import PostgresStore
from bot.state_sqlite import SqliteStore
from bot.stats import SharedStats
from bot.watchdog import watch
from indexing import FashionIndexError, Index, open_embedder
from indexing.finder.finders import open_finder

log = logging.getLogger(__name__)


def open_store(settings: Settings) -> Store:
    """SQLite under STATE_DIR, or the PostgreSQL of STATE_URL that every replica shares."""
    if not settings.state_url:
        return SqliteStore(settings.state_dir, settings.query_ttl_hours, settings.retention_days)
    try:
        return PostgresStore(settings.state_url, settings.query_ttl_hours, settings.retention_days)
    except ImportError:
        raise FashionIndexError("STATE_URL needs the PostgreSQL client: pip install '.[scale]'") from None
    except ConnectionError as exc:
        raise FashionIndexError(str(exc)) from None


async def post_init(application: Application) -> None:
    """Load the index and exactly the extractor that built it, then say we are ready."""
    settings: Settings = application.bot_data["settings"]
    check_catalogues()
    index = await asyncio.to_thread(Index.load, settings.index_dir, settings.store_uri)
    embedder = await asyncio.to_thread(
        open_embedder, index, runtime=settings.runtime, weights_path=settings.weights_path or None,
        cache_dir=settings.state_dir / "models",
    )
    store = await asyncio.to_thread(open_store, settings)
    finder = await asyncio.to_thread(open_finder, settings.item_finder, embedder, index.manifest,
                                     settings.people_models)
    recommender = Recommender(index, embedder, settings.max_pending, finder)
    services = Services(
        settings=settings,
        recommender=recommender,
        store=store,
        vocabulary=Vocabulary(index.facets()),
        limiter=RateLimiter(settings.rate_limit_per_minute),
        metrics=Metrics(lambda: recommender.pending, lambda: services.health.products or 0,
                        lambda: recommender.index.manifest.get("generation", 0),
                        build_info(index.fingerprint, embedder.runtime)),
    )
    if isinstance(store, PostgresStore):
        services.stats = SharedStats(services.state)
    application.bot_data["services"] = services
    inbox: Inbox = application.update_queue  # type: ignore[assignment]  # build_application's
    inbox.state = services.state
    application.bot_data["inbox"] = asyncio.create_task(follow_inbox(inbox, application.bot), name="follow-inbox")
    services.health.products = index.product_count
    services.alerts = AlertSender(application.bot, services.state, lambda: services.index,
                                  settings.alerts_per_second)
    services.alerts.start()
    # A sync while the bot was down may have made saved products cheaper: compare now, without delaying the start.
    application.bot_data["queue"] = asyncio.create_task(compare_saved(services.state, index), name="queue-alerts")
    if settings.reload_seconds:
        application.bot_data["follower"] = asyncio.create_task(
            follow_index(services, settings.reload_seconds), name="follow-index")
    release_freed_memory()
    application.bot_data["housekeeping"] = asyncio.create_task(
        keep_house(services.state, services.limiter), name="housekeeping")
    application.bot_data["watchdog"] = asyncio.create_task(
        watch(services.state, recommender, services.health, lambda: services.index.product_count), name="watchdog")
    application.bot_data["health"] = await serve_health(
        settings.health_listen, settings.health_port,
        lambda: services.health.answer({"products": services.health.products,
                                        "generation": services.index.manifest.get("generation", 0),
                                        "queries": services.stats.queries}),
        services.metrics.render if services.metrics and services.metrics.available else None,
        ready=listening(settings.webhook_listen, settings.webhook_port) if settings.mode == "webhook" else None,
    )
    fallback = "" if embedder.runtime == "onnxruntime" else " (no ONNX export in the index: slower start and replies)"
    log.info("ready: %d products, %s weights on %s%s, started in %.1f s, %s mode",
             index.product_count, index.fingerprint.get("weights"), embedder.runtime, fallback,
             time.monotonic() - application.bot_data["started"], settings.mode)


async def post_stop(application: Application) -> None:
    """Before the Bot API client closes: let the alert being sent finish, and hand the sender's lease on."""
    services: Services | None = application.bot_data.get("services")
    if services and services.alerts:
        await services.alerts.stop()


async def post_shutdown(application: Application) -> None:
    for task in ("follower", "queue", "watchdog", "housekeeping", "inbox"):
        if application.bot_data.get(task):
            application.bot_data[task].cancel()
    services: Services | None = application.bot_data.get("services")
    if services:
        services.recommender.close()
        services.state.close()
    health = application.bot_data.get("health")
    if health:
        health.close()


def build_application(settings: Settings) -> Application:
    inbox = Inbox()
    application = (
        ApplicationBuilder()
        .token(settings.token)
        .base_url(settings.bot_url)
        .base_file_url(settings.file_url)
        .request(HTTPXRequest(connection_pool_size=64, connect_timeout=10, read_timeout=settings.api_timeout,
                              write_timeout=settings.api_timeout, media_write_timeout=2 * settings.api_timeout,
                              proxy=settings.proxy or None))
        .get_updates_request(HTTPXRequest(connect_timeout=10, read_timeout=settings.api_timeout + 10,
                                          proxy=settings.proxy or None))
        .rate_limiter(Retrier())
        .update_queue(inbox)
        .concurrent_updates(AnswerProcessor(inbox))
        .post_init(post_init)
        .post_stop(post_stop)
        .post_shutdown(post_shutdown)
        .build()
    )
    application.bot_data["settings"] = settings
    application.bot_data["started"] = time.monotonic()
    add_handlers(application)
    return application


def run(settings: Settings) -> None:
    """Poll Telegram, or serve the webhook, until stopped; a failure to start raises CheckFailed (one line)."""
    application = build_application(settings)
    try:
        if settings.mode == "webhook":
            application.run_webhook(
                listen=settings.webhook_listen, port=settings.webhook_port, url_path="telegram",
                secret_token=settings.webhook_secret or None, webhook_url=settings.webhook_url,
                allowed_updates=Update.ALL_TYPES,
            )
        else:
            application.run_polling(allowed_updates=Update.ALL_TYPES)
    except (InvalidToken, NetworkError) as exc:
        raise telegram_failure(settings, exc) from None
    except FashionIndexError as exc:
        raise start_failure(exc) from None
    except OSError as exc:  # the webhook's or the health endpoint's port taken, the state's disk full
        raise CheckFailed(f"cannot start: {exc}", TRANSIENT) from None


def add_handlers(application: Application) -> None:
    application.add_handler(TypeHandler(Update, guard), group=-1)
    application.add_handlers([
        CommandHandler("start", commands.on_start),
        CommandHandler("help", commands.on_help),
        CommandHandler("about", commands.on_about),
        CommandHandler("stats", commands.on_stats),
        CommandHandler("language", language_menu.on_language),
        CommandHandler("saved", saved.on_saved),
        CommandHandler("alerts", saved.on_alerts),
        MessageHandler(filters.COMMAND, fallbacks.on_unknown_command),
        MessageHandler(filters.PHOTO, photos.on_photo),
        MessageHandler(filters.Document.IMAGE, photos.on_image_document),
        MessageHandler(filters.Document.ALL, fallbacks.on_other_document),
        MessageHandler(filters.TEXT, fallbacks.on_text),
        CallbackQueryHandler(buttons.on_more_like, pattern=callbacks.PATTERNS[callbacks.LIKE]),
        CallbackQueryHandler(buttons.on_item, pattern=callbacks.PATTERNS[callbacks.ITEM]),
        CallbackQueryHandler(buttons.on_show_more, pattern=callbacks.PATTERNS[callbacks.MORE]),
        CallbackQueryHandler(buttons.on_feedback, pattern=callbacks.PATTERNS[callbacks.FEEDBACK]),
        CallbackQueryHandler(saved.on_save, pattern=callbacks.PATTERNS[callbacks.SAVE]),
        CallbackQueryHandler(saved.on_unsave, pattern=callbacks.PATTERNS[callbacks.UNSAVE]),
        CallbackQueryHandler(saved.on_saved_page, pattern=callbacks.PATTERNS[callbacks.SAVED]),
        CallbackQueryHandler(language_menu.on_language_chosen, pattern=callbacks.PATTERNS[callbacks.LANGUAGE]),
        CallbackQueryHandler(photos.on_nearest, pattern=callbacks.PATTERNS[callbacks.NEAREST]),
        MessageHandler(filters.ALL, fallbacks.on_unsupported),
    ])
    application.add_error_handler(fallbacks.on_error)
