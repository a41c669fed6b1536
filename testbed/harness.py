"""Run the real bot Application (polling the fake Bot API) in a background thread."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from pathlib import Path

from bot.app import build_application, post_init, post_shutdown, post_stop
from bot.config import Settings
from testbed.fake_telegram import FakeTelegram
from testbed.postgres import free_port


def settings_for(fake: FakeTelegram, index: Path, **overrides) -> Settings:
    base = Settings(token=fake.token, api_url=fake.url, index_dir=index, health_port=free_port(),
                    rate_limit_per_minute=0, api_timeout=3, log_level="DEBUG")
    return replace(base, **overrides)


class RunningBot:
    """What run_polling does, step by step, on a loop of its own so that tests can block and wait."""

    def __init__(self, settings: Settings):
        self.application = build_application(settings)
        self.loop = asyncio.new_event_loop()
        self.started = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start())
        except BaseException as exc:  # surfaced to the test by start()
            self.error = exc
            self.started.set()
            return
        self.started.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        app = self.application
        await app.initialize()
        await post_init(app)
        await app.updater.start_polling(poll_interval=0.0, timeout=1)
        await app.start()

    async def _stop(self) -> None:
        app = self.application
        await app.updater.stop()
        await app.stop()
        await post_stop(app)
        await app.shutdown()
        await post_shutdown(app)

    def start(self) -> RunningBot:
        self.thread.start()
        self.started.wait(300)
        if self.error:
            raise self.error
        return self

    def stop(self) -> None:
        if self.error is None:
            asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)

    @property
    def services(self):
        return self.application.bot_data["services"]
