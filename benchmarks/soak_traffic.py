"""The soak's users: one to four at a time send photos, press buttons, save products and ask /saved."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from testbed.fake_telegram import FakeTelegram

ANSWERS = ("sendMediaGroup", "sendMessage", "sendPhoto")


def buttons(message: dict[str, Any]) -> dict[str, str]:
    rows = (message or {}).get("reply_markup", {}).get("inline_keyboard", [])
    return {b["text"]: b.get("callback_data", "") for row in rows for b in row}


class Traffic:
    """Users, one to four at a time, each waiting for its answer before its next step."""

    def __init__(self, fake: FakeTelegram, photos: list[tuple[bytes, tuple[int, int]]]):
        self.fake, self.photos = fake, photos
        self.sent: list[dict[str, Any]] = []  # one per photo: user, time, latency or None
        self.saved: set[tuple[int, str]] = set()
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def answers(self, user: int) -> int:
        return len(self.fake.seen(ANSWERS, chat_id=user))

    def photo(self, user: int) -> dict[str, Any] | None:
        data, size = random.choice(self.photos)
        before = len(self.fake.seen("sendMediaGroup", chat_id=user))
        before_any = self.answers(user)
        pushed, at = time.monotonic(), time.time()
        self.fake.send_photo(user, data, width=size[0], height=size[1])
        deadline = pushed + 180
        while time.monotonic() < deadline:
            albums = self.fake.seen("sendMediaGroup", chat_id=user)
            if len(albums) > before:
                record = {"user": user, "at": at, "latency": albums[-1].at - pushed}
                break
            if self.answers(user) > before_any and not self.fake.seen("sendMediaGroup", chat_id=user)[before:]:
                last = self.fake.seen(ANSWERS, chat_id=user)[-1]
                if last.method == "sendMessage":  # busy, or nothing similar: an answer too
                    record = {"user": user, "at": at, "latency": None, "said": last.text[:60]}
                    break
            time.sleep(0.05)
        else:
            record = {"user": user, "at": at, "latency": None, "dropped": True}
        with self.lock:
            self.sent.append(record)
        return record

    def session(self, user: int) -> None:
        record = self.photo(user)
        if not record or record.get("latency") is None:
            return
        time.sleep(1.0)  # the buttons message follows the album
        menus = [r for r in self.fake.seen("sendPhoto", chat_id=user) if r.response and buttons(r.response)]
        if not menus:
            return
        keys = buttons(menus[-1].response)
        roll = random.random()
        if roll < 0.3 and "♡ #1" in keys:
            self.fake.press(user, menus[-1].response, keys["♡ #1"])
            with self.lock:
                self.saved.add((user, keys["♡ #1"]))
        elif roll < 0.6:
            more = next((data for text, data in keys.items() if data.startswith("more|")), None)
            if more:
                self.fake.press(user, menus[-1].response, more)
        elif roll < 0.7:
            self.fake.message(user, text="/saved", entities=[{"type": "bot_command", "offset": 0, "length": 6}])
        time.sleep(1.0)

    def save_all(self, user: int) -> None:
        """A photo, then ♡ on every product of its album."""
        self.photo(user)
        time.sleep(2)
        menus = [r for r in self.fake.seen("sendPhoto", chat_id=user) if r.response and buttons(r.response)]
        for text, data in buttons(menus[-1].response).items() if menus else ():
            if text.startswith("♡"):
                self.fake.press(user, menus[-1].response, data)

    def run(self, users: range) -> None:
        def worker(n: int) -> None:
            while not self.stopping.is_set():
                self.session(random.choice(users))
                time.sleep(random.uniform(0, 2) * n)  # 1-4 at a time: the workers' pauses differ

        threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(4)]
        for thread in threads:
            thread.start()
        self.threads = threads

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(240)
