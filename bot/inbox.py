"""Updates in the state from their arrival until answered: what a process killed mid-answer was sent is answered by
the next one (or by another replica), instead of being lost with the process."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import uuid
from collections.abc import Awaitable
from typing import Any

from telegram import Bot, Update
from telegram.ext import SimpleUpdateProcessor

from bot.state_thread import StateThread

log = logging.getLogger(__name__)

HEARTBEAT = 10.0  # seconds between a process's "still answering these"
SILENT_FOR = 30.0  # a process that said nothing for this long is taken for dead: its updates are answered anew
MAX_TRIES = 3  # an update that took three processes down is dropped, rather than take down every next one
CONCURRENT = 256  # updates handled at once, as python-telegram-bot's concurrent_updates(True)


def incarnation() -> str:
    """This process among all that share the state: host, pid, and a nonce (a restarted container keeps pid 1)."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def dead_here(owner: str, me: str) -> bool:
    """Whether owner was a process on this host that is gone: its pid is no longer running, or it is ours."""
    parts, (my_host, my_pid, my_nonce) = owner.split("/"), me.split("/")
    if len(parts) != 3:
        return False
    host, pid, nonce = parts
    if host != my_host or not pid.isdigit() or nonce == my_nonce:
        return False
    if pid == my_pid:
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # someone else's process under that pid: wait for the owner to fall silent instead
        return False
    return False


class Inbox(asyncio.Queue):
    """The application's update queue. An update is put in the state before it is queued, and putting it is what
    python-telegram-bot awaits before it confirms the update to Telegram (the next getUpdates' offset) or answers
    the webhook's POST: so no update is confirmed that is not kept."""

    def __init__(self) -> None:
        super().__init__()
        self.state: StateThread | None = None  # set in post_init, before the first update is fetched
        self.owner = incarnation()

    async def put(self, item: Any) -> None:
        if self.state is not None and isinstance(item, Update):
            try:
                if not await self.state.keep_update(item.update_id, json.dumps(item.to_dict()), self.owner):
                    log.info("update %d is known already (Telegram sent it again): skipped", item.update_id)
                    return
            except Exception as exc:  # answering it matters more than keeping it: the state is away for a moment
                log.warning("update %d answered without being kept (the state failed: %s)", item.update_id, exc)
        await super().put(item)

    async def adopt(self, bot: Bot) -> int:
        """Queue the updates of processes gone before answering them; how many."""
        assert self.state is not None
        orphans = await self.state.claim_orphans(self.owner, SILENT_FOR, lambda owner: dead_here(owner, self.owner),
                                                 MAX_TRIES)
        for update_id in orphans.dropped:
            log.warning("update %d dropped: %d processes stopped while answering it", update_id, MAX_TRIES)
        for body in orphans.bodies:
            await super().put(Update.de_json(json.loads(body), bot))
        if orphans.bodies:
            log.info("answering %d update(s) left unanswered by a process that stopped", len(orphans.bodies))
        return len(orphans.bodies)


class AnswerProcessor(SimpleUpdateProcessor):
    """Handles updates as concurrent_updates(True) does, and marks each answered once its handlers are done."""

    def __init__(self, inbox: Inbox):
        super().__init__(CONCURRENT)
        self.inbox = inbox

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        await coroutine  # a handler's error is the error handler's: it ends here too, answered
        if self.inbox.state is not None and isinstance(update, Update):
            try:
                await self.inbox.state.mark_answered(update.update_id)
            except Exception as exc:  # answered twice at worst, by the process that adopts it
                log.warning("update %d answered but not marked so (the state failed: %s)", update.update_id, exc)


async def follow_inbox(inbox: Inbox, bot: Bot, every: float = HEARTBEAT) -> None:
    """Say this process is alive, and adopt what dead ones left: at start, then every `every` seconds."""
    assert inbox.state is not None
    while True:
        try:
            await inbox.state.touch_updates(inbox.owner)
            await inbox.adopt(bot)
        except Exception:  # the state is away for a moment: the next round does the same
            log.exception("could not look after the updates in the state")
        await asyncio.sleep(every)
