"""The long-lived objects the handlers share, created once in post_init."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from telegram.ext import ContextTypes

from bot.config import Settings
from bot.filter_words import Vocabulary
from bot.health import Health
from bot.metrics import Metrics
from bot.pictures import Pictures
from bot.ratelimit import RateLimiter
from bot.recommender import Recommender
from bot.state import Store
from bot.state_thread import StateThread
from bot.stats import Stats
from indexing import Index


class Background(Protocol):
    """Work beside the handlers (the alert sender, bot/alerts.py): started once the bot is up, stopped before it
    exits. Named by what it does, not imported: the alerts use the handlers' helpers, which use this module."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Services:
    settings: Settings
    recommender: Recommender
    store: Store
    vocabulary: Vocabulary
    limiter: RateLimiter
    stats: Stats = field(default_factory=Stats)
    metrics: Metrics | None = None
    alerts: Background | None = None
    health: Health = field(default_factory=Health)
    pictures: Pictures = field(default_factory=Pictures)
    state: StateThread = field(init=False)  # the store, awaited off the event loop: what handlers use

    def __post_init__(self) -> None:
        self.state = StateThread(self.store)

    @property
    def index(self) -> Index:
        """The catalogue being served: the recommender's, which a reload swaps for each new generation."""
        return self.recommender.index


def get_services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return context.application.bot_data["services"]
