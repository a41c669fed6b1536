"""One alert sender on its own, as a bot replica runs it: `python -m testbed.alert_sender STATE INDEX API_URL TOKEN
LEASE CLAIM`, sending until SIGTERM. The test of two senders pauses one of them past its lease."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

from telegram import Bot

from bot.alerts import AlertSender
from bot.state_sqlite import SqliteStore
from bot.state_thread import StateThread
from indexing import Index


async def send(state: Path, index_dir: Path, api_url: str, token: str, lease: float, claim: float) -> None:
    store, index = StateThread(SqliteStore(state)), Index.load(index_dir)
    bot = Bot(token, base_url=f"{api_url}/bot", base_file_url=f"{api_url}/file/bot")
    await bot.initialize()
    sender = AlertSender(bot, store, lambda: index, per_second=10, lease_seconds=lease, claim_seconds=claim)
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    sender.start()
    print("started", flush=True)
    await stopping.wait()
    await sender.stop()
    await bot.shutdown()
    store.close()
    print(f"sent {sender.sent}", flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    state, index_dir, api_url, token, lease, claim = sys.argv[1:7]
    asyncio.run(send(Path(state), Path(index_dir), api_url, token, float(lease), float(claim)))
