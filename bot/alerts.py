"""Alerts on saved products: queued when a new catalogue generation makes one cheaper or brings it back in stock,
then sent at a steady pace by the one bot process that holds the sender's lease.

Queueing is exactly-once however many replicas see the generation (state_users.apply_transitions). Sending: each
alert is claimed just before it goes out, in one statement that checks what holds at that moment (the product still
saved, the user's alerts on, this process still holding the lease), and marked sent, fenced by that claim, as soon
as Telegram accepts it. A process stopped past its lease (a paused VM, SIGSTOP) claims nothing more when it wakes,
and whatever it had claimed stays its own for CLAIM_SECONDS, so the next holder does not send it again meanwhile.
The one gap: a process killed between Telegram's answer and its mark (a few milliseconds) leaves that alert to be
sent again, CLAIM_SECONDS later, by the next holder. A stop (SIGTERM) lets the send in flight finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Mapping
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.error import BadRequest, Forbidden, TelegramError

from bot import callbacks
from bot.album import photo_key, with_uploads
from bot.captions import current_price, parse_price, product_name, shopper_price
from bot.i18n import Language, language
from bot.results import shop_link
from bot.state_thread import StateThread
from bot.state_users import Alert, Saved, Transition
from indexing import Index
from indexing.store.vector_store import in_stock

log = logging.getLogger(__name__)

LEASE = "alerts"
LEASE_SECONDS = 30.0  # a sender that died is replaced after this long
CLAIM_SECONDS = 300.0  # an alert claimed by a sender that stopped is sent by another after this long
PAGE = 500  # saved rows compared, and alerts fetched, at a time
IN_FLIGHT = 8  # sends waiting on Telegram at once: at 25 a second, enough for replies up to 300 ms


def cheaper(old: str, new: str) -> bool:
    """Whether new is a lower price than old, in the same currency."""
    before, after = parse_price(old), parse_price(new)
    return bool(before and after and before[1] == after[1] and after[0] < before[0])


def transition(saved: Saved, record: Mapping[str, Any] | None) -> Transition | None:
    """What a saved row becomes for its product as the catalogue has it now (None: nothing changed)."""
    price = current_price(record.get("meta", {})) if record else saved.price
    available = bool(record) and in_stock(record or {})
    if price == saved.price and available == saved.available:
        return None
    alert = None
    if saved.alerts and available:
        if not saved.available:
            alert = "stock"
        elif cheaper(saved.price, price):
            alert = "price"
    return Transition(saved, price, available, alert)


async def queue_alerts(state: StateThread, index: Index) -> int:
    """Compare every saved product with the catalogue now; queue an alert where one got cheaper or came back. The
    index is read in a thread (with Milvus it is a question over the network), the state on its own."""
    queued, after = 0, 0
    while rows := await state.saved_after(after, PAGE):
        after = rows[-1].id
        records = await asyncio.to_thread(index.products_of, sorted({row.product for row in rows}))
        moves = [t for row in rows if (t := transition(row, records.get(row.product))) is not None]
        if moves:
            queued += await state.apply_transitions(moves)
    if queued:
        log.info("queued %d alerts on saved products", queued)
    return queued


async def compare_saved(state: StateThread, index: Index) -> None:
    """queue_alerts as a background job: a failure is logged, and the next generation (or a restart) compares again,
    so nothing is lost."""
    try:
        await queue_alerts(state, index)
    except Exception:
        log.exception("could not compare saved products with the catalogue")


def alert_text(alert: Alert, record: Mapping[str, Any], _: Language) -> str:
    name = _.quote(product_name(record.get("meta", {}), alert.product, _))
    new = _.quote(shopper_price(alert.new_price, _)) if alert.new_price else ""
    if alert.kind == "stock":
        return _.lines(_("✅ Back in stock: {name}", name=name), _("Price: {price}", price=new) if new else "",
                       _("You saved it earlier. /saved lists your saved products."))
    return _.lines(_("📉 Cheaper now: {name}", name=name),
                   _("{old} → {new}", old=_.quote(shopper_price(alert.old_price, _)), new=new),
                   _("You saved it earlier. /saved lists your saved products."))


def alert_keyboard(alert: Alert, link: str | None, _: Language) -> InlineKeyboardMarkup:
    row = [InlineKeyboardButton(_("🛒 Buy"), url=link)] if link else []
    row.append(InlineKeyboardButton(_("✕ Remove from saved"), callback_data=callbacks.unsave(alert.saved)))
    return InlineKeyboardMarkup([row])


async def send_alert(bot: Bot, state: StateThread, index: Index, alert: Alert) -> None:
    """One alert as a photo of the product with the old and new price and its 🛒 link (uploaded once, then reused)."""
    records = await asyncio.to_thread(index.products_of, [alert.product])
    record = records.get(alert.product)
    if record is None:  # gone from the catalogue since: nothing to buy
        return
    _ = language(await state.alert_language(alert.user_id) or "en")
    key = photo_key(record)

    async def send(use_cache: bool) -> Message:
        cached = await state.file_id(key) if use_cache else None
        photo: str | bytes = cached or await asyncio.to_thread((index.directory / record["image"]).read_bytes)
        return await bot.send_photo(alert.user_id, photo, caption=alert_text(alert, record, _)[:1024],
                                    reply_markup=alert_keyboard(alert, shop_link(record), _))

    message = await with_uploads(state, [key], send)
    if message.photo:
        await state.remember_upload(key, message.photo[-1].file_id)


class AlertSender:
    """The task that sends queued alerts, at most `per_second` a second, while this process holds the lease."""

    def __init__(self, bot: Bot, state: StateThread, index: Any, per_second: float,
                 lease_seconds: float = LEASE_SECONDS, claim_seconds: float = CLAIM_SECONDS):
        self.bot = bot
        self.state = state
        self.index = index  # a callable giving the index being served (a reload swaps it)
        self.interval = 1.0 / per_second
        self.lease_seconds, self.claim_seconds = lease_seconds, claim_seconds
        self.owner = secrets.token_hex(8)
        self.sent = 0
        self.until = 0.0  # time.time() until which this process surely holds the lease
        self._next_at = 0.0
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None

    @property
    def holding(self) -> bool:
        """Whether the lease is this process's now, by its own clock: false the moment a pause outlasts it."""
        return time.time() < self.until

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alert-sender")

    async def stop(self) -> None:
        """Finish the send in flight (it is marked sent), then hand the lease back for another process."""
        self._stopping.set()
        if self._task:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self.state.release_lease(LEASE, self.owner)
        except Exception as exc:  # the lease runs out by itself: another process sends after LEASE_SECONDS
            log.warning("could not hand the alert sender's lease on (the state failed: %s)", exc)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _run(self) -> None:
        heartbeat = asyncio.create_task(self._hold(), name="alert-lease")
        try:
            await self._send_while_held()
        finally:
            heartbeat.cancel()

    async def _hold(self) -> None:
        """Renew the lease every few seconds, apart from sending: a send that waits out a long 429 keeps it."""
        while True:
            asked = time.time()  # the lease runs from before the question: never longer than the state's
            try:
                held = self.holding
                if await self.state.hold_lease(LEASE, self.owner, self.lease_seconds):
                    self.until = asked + self.lease_seconds
                    if not held:
                        log.info("this process now sends the alerts (lease %s)", self.owner[:6])
                else:
                    self.until = 0.0
            except Exception:
                self.until = 0.0
                log.exception("cannot renew the alert sender's lease")
            await asyncio.sleep(self.lease_seconds / 3)

    async def _send_while_held(self) -> None:
        while not self._stopping.is_set():
            try:
                stale = time.time() - self.claim_seconds
                alerts = await self.state.waiting_alerts(PAGE, self.owner, stale) if self.holding else []
                if not alerts:
                    await self._pause(1.0)
                    continue
                await self._send_page(alerts)
            except Exception:  # the state or the index failed for a moment: the queue is still there
                log.exception("sending alerts failed; trying again shortly")
                await self._pause(5.0)

    async def _send_page(self, alerts: list[Alert]) -> None:
        """Start one send every interval, a few in flight at once (a real sendPhoto takes longer than the
        interval); every send of the page is finished, and marked, before the queue is read again."""
        in_flight: set[asyncio.Task] = set()
        try:
            for alert in alerts:
                if self._stopping.is_set() or not self.holding:
                    break
                await asyncio.sleep(max(0.0, self._next_at - time.monotonic()))
                # From this send, not from the last slot: after a wait (a 429, a slow send) the next alert
                # still keeps its distance instead of catching up in a burst.
                self._next_at = max(self._next_at, time.monotonic()) + self.interval
                while len(in_flight) >= IN_FLIGHT:
                    await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                if not self.holding or not await self.state.claim_alert(alert.id, self.owner, LEASE,
                                                                         time.time() - self.claim_seconds):
                    continue  # turned off, unsaved, sent by another, or this process's lease has passed
                task = asyncio.create_task(self._deliver(alert))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
        finally:
            for outcome in await asyncio.gather(*in_flight, return_exceptions=True):
                if isinstance(outcome, Exception):
                    log.error("an alert failed: %s", outcome)

    async def _deliver(self, alert: Alert) -> None:
        if not self.holding:  # paused between the claim and now, past the lease: the next holder sends it
            await self.state.unclaim(alert.id, self.owner)
            return
        try:
            await send_alert(self.bot, self.state, self.index(), alert)
        except Forbidden:  # blocked the bot, or deleted their account: no more alerts for them
            log.info("user %d blocked the bot: their alerts are dropped", alert.user_id)
            await self.state.drop_user(alert.user_id)
            return
        except BadRequest as exc:
            if "chat not found" not in str(exc).lower():
                raise
            await self.state.drop_user(alert.user_id)
            return
        except TelegramError as exc:  # still failing after the retries (429s, timeouts): left for the next round
            log.warning("alert %d not sent yet: %s", alert.id, exc)
            await self._pause(5.0)
            return
        if await self.state.mark_sent(alert.id, self.owner):
            self.sent += 1
        else:
            log.warning("alert %d was sent, but another sender had claimed it since: it may arrive twice", alert.id)
