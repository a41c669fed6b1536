"""A fake Telegram Bot API server on loopback that speaks the real HTTP wire format.

It serves what python-telegram-bot's real client sends and expects: long-polling getUpdates, getFile
and file downloads, multipart sendMediaGroup with attach:// uploads, inline keyboards and callback
answers. Tests push updates, read back every request in order, and inject 429s, 5xx and stalls.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web
from PIL import Image

from indexing.extract.images import encode

BOT_ID = 777000


@dataclass
class Request:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    at: float = field(default_factory=time.monotonic)
    response: Any = None

    @property
    def text(self) -> str:
        """A message's text, or a photo's caption."""
        return self.params.get("text", self.params.get("caption", ""))

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return int(value) if value is not None else None

    def album(self) -> list[dict[str, Any]]:
        """sendMediaGroup items: caption, and the uploaded bytes or the reused file_id."""
        items = []
        for item in self.params.get("media", []):
            media = item["media"]
            if media.startswith("attach://"):
                items.append({"caption": item.get("caption"), "upload": self.files[media[9:]], "file_id": None})
            else:
                items.append({"caption": item.get("caption"), "upload": None, "file_id": media})
        return items


@dataclass
class Fault:
    status: int
    retry_after: int | None = None
    stall: float = 0.0  # hold the answer this long first: longer than the client's timeout = a timeout


class FakeTelegram:
    def __init__(self, token: str = "123456:TEST-token_abcdefghijklmnopqrstuvwxyz"):
        self.token = token
        self.requests: list[Request] = []
        self.files: dict[str, bytes] = {}
        self.stored_sizes: dict[str, int] = {}  # what getFile reports, where it differs from the bytes
        self.faults: dict[str, list[Fault]] = {}
        self.every: dict[str, tuple[int, Fault]] = {}  # method -> (n, fault): each nth request of it fails so
        self.blocked: set[int] = set()  # chats whose user blocked the bot: sending to them is Forbidden
        self.language_codes: dict[int, str] = {}  # each user's Telegram app language, as updates carry it
        self.latency = 0.0  # seconds each answer takes, as over the internet (getUpdates excepted)
        self._calls: dict[str, int] = {}
        self.changed = threading.Condition()
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._file_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._new_update: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.port = 0

    # -- life cycle -------------------------------------------------------------------------------
    def start(self) -> FakeTelegram:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._new_update = asyncio.Event()
        app = tornado.web.Application([
            (r"/bot([^/]+)/(\w+)", MethodHandler, {"fake": self}),
            (r"/file/bot([^/]+)/(.+)", FileHandler, {"fake": self}),
        ])
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        server = tornado.httpserver.HTTPServer(app, max_body_size=100 * 1024 * 1024)
        server.add_sockets(sockets)
        self._ready.set()
        self._loop.run_forever()
        server.stop()

    # -- what tests do ----------------------------------------------------------------------------
    def push(self, update: dict[str, Any]) -> int:
        with self.changed:
            update = {"update_id": next(self._update_ids), **update}
            self._updates.append(update)
        assert self._loop and self._new_update
        self._loop.call_soon_threadsafe(self._new_update.set)
        return update["update_id"]

    def unconfirmed(self) -> list[int]:
        """The updates that the bot has not confirmed yet (by a getUpdates with a later offset)."""
        with self.changed:
            return [update["update_id"] for update in self._updates]

    def add_file(self, data: bytes) -> str:
        file_id = f"upload-{next(self._file_ids)}"
        self.files[file_id] = data
        return file_id

    def fail(self, method: str, *faults: Fault) -> None:
        with self.changed:
            self.faults.setdefault(method, []).extend(faults)

    def user(self, user: int) -> dict[str, Any]:
        """The user as updates describe them (with their app's language_code, if set)."""
        sender: dict[str, Any] = {"id": user, "is_bot": False, "first_name": f"User{user}"}
        if user in self.language_codes:
            sender["language_code"] = self.language_codes[user]
        return sender

    def message(self, user: int, **content: Any) -> dict[str, Any]:
        sender = self.user(user)
        message = {"message_id": next(self._message_ids), "date": int(time.time()),
                   "chat": {"id": user, "type": "private", "first_name": f"User{user}"}, "from": sender, **content}
        self.push({"message": message})
        return message

    def send_photo(self, user: int, data: bytes, caption: str | None = None,
                   width: int = 800, height: int = 1000, file_size: int | None = None) -> dict[str, Any]:
        """A photo message offering the sizes Telegram makes (long sides 90, 320, 800, 1280, each
        smaller than the photo, really scaled), then the photo as sent."""
        file_id = self.add_file(data)
        sizes = []
        for side in (90, 320, 800, 1280):
            if side < max(width, height):
                scaled = scaled_jpeg(data, side)
                if scaled is not None:
                    small_id = self.add_file(scaled[0])
                    sizes.append({"file_id": small_id, "file_unique_id": "u" + small_id, "width": scaled[1],
                                  "height": scaled[2], "file_size": len(scaled[0])})
        sizes.append({"file_id": file_id, "file_unique_id": "u" + file_id, "width": width, "height": height,
                      "file_size": file_size if file_size is not None else len(data)})
        extra = {"caption": caption} if caption else {}
        return self.message(user, photo=sizes, **extra)

    def send_document(self, user: int, data: bytes, name: str, mime: str, file_size: int | None = None,
                      stored_size: int | None = None) -> dict[str, Any]:
        """stored_size: the message says no size (Telegram may leave it out) and getFile reports this one."""
        document = {"file_id": self.add_file(data), "file_unique_id": f"d{user}{name}", "file_name": name,
                    "mime_type": mime, "file_size": file_size if file_size is not None else len(data)}
        if stored_size is not None:
            del document["file_size"]
            self.stored_sizes[document["file_id"]] = stored_size
        return self.message(user, document=document)

    def press(self, user: int, keyboard_message: dict[str, Any], data: str) -> str:
        callback_id = f"cb{next(self._callback_ids)}"
        self.push({"callback_query": {
            "id": callback_id, "chat_instance": "ci", "data": data, "message": keyboard_message,
            "from": self.user(user)}})
        return callback_id

    def seen(self, method: str | tuple[str, ...] | None = None, chat_id: int | None = None) -> list[Request]:
        """Requests so far, of one method (or any of several), to one chat or any."""
        methods = (method,) if isinstance(method, str) else method
        with self.changed:
            return [r for r in self.requests if (methods is None or r.method in methods)
                    and (chat_id is None or r.chat_id == chat_id)]

    def wait_for(self, method: str | tuple[str, ...], count: int = 1, chat_id: int | None = None,
                 timeout: float = 60) -> list[Request]:
        """Block until at least count such requests have arrived; return them all."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(found := self.seen(method, chat_id)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {count} {method} (got {len(found)}): "
                                         f"{[(r.method, r.chat_id, r.params.get('text')) for r in self.requests]}")
                self.changed.wait(left)
            return found

    # -- the API ----------------------------------------------------------------------------------
    def _record(self, request: Request) -> None:
        with self.changed:
            self.requests.append(request)
            self.changed.notify_all()

    def fail_every(self, method: str, n: int, fault: Fault) -> None:
        """From now on, every nth request of method answers with fault (e.g. a 429 now and then)."""
        with self.changed:
            self.every[method] = (n, fault)
            self._calls[method] = 0

    def _next_fault(self, method: str) -> Fault | None:
        with self.changed:
            queue = self.faults.get(method)
            if queue:
                return queue.pop(0)
            if method in self.every:
                n, fault = self.every[method]
                self._calls[method] += 1
                return fault if self._calls[method] % n == 0 else None
            return None

    async def get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        assert self._new_update is not None
        deadline = time.monotonic() + timeout
        while True:
            with self.changed:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
                ready = list(self._updates[: int(params.get("limit") or 100)])
            if ready or time.monotonic() >= deadline:
                return ready
            self._new_update.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), max(0.0, deadline - time.monotonic()))

    def bot_message(self, chat_id: int, **content: Any) -> dict[str, Any]:
        return {"message_id": next(self._message_ids), "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "FashionBot", "username": "fashion_bot"},
                **content}

    def photo_sizes(self, request: Request, media: str) -> list[dict[str, Any]]:
        if media.startswith("attach://"):
            file_id = self.add_file(request.files[media[9:]])
        elif media in self.files:
            file_id = media
        else:
            raise BadRequest("Bad Request: wrong file identifier/HTTP URL specified")
        return [{"file_id": file_id, "file_unique_id": "u" + file_id, "width": 60, "height": 80}]

    def answer(self, request: Request) -> Any:
        method, params = request.method, request.params
        chat = int(params["chat_id"]) if "chat_id" in params else 0
        if chat in self.blocked and method.startswith("send"):
            raise BadRequest("Forbidden: bot was blocked by the user", status=403)
        if method == "getMe":
            return {"id": BOT_ID, "is_bot": True, "first_name": "FashionBot", "username": "fashion_bot",
                    "can_join_groups": True, "can_read_all_group_messages": False,
                    "supports_inline_queries": False}
        if method in ("deleteWebhook", "setWebhook", "sendChatAction", "answerCallbackQuery", "setMyCommands"):
            return True
        if method == "getFile":
            file_id = params["file_id"]
            if file_id not in self.files:
                raise BadRequest("Bad Request: invalid file_id")
            size = self.stored_sizes.get(file_id, len(self.files[file_id]))
            return {"file_id": file_id, "file_unique_id": "u" + file_id, "file_size": size,
                    "file_path": f"photos/{file_id}.jpg"}
        if method == "sendMessage":
            extra = {"reply_markup": params["reply_markup"]} if "reply_markup" in params else {}
            return self.bot_message(chat, text=params["text"], **extra)
        if method == "sendMediaGroup":
            media = params["media"]
            if not 2 <= len(media) <= 10:
                raise BadRequest("Bad Request: wrong number of media specified")
            group = f"g{next(self._message_ids)}"
            return [self.bot_message(chat, media_group_id=group, caption=item.get("caption", ""),
                                     photo=self.photo_sizes(request, item["media"])) for item in media]
        if method == "sendPhoto":
            extra = {"reply_markup": params["reply_markup"]} if "reply_markup" in params else {}
            # An upload comes as a multipart file named after the parameter; a file_id as a plain value.
            photo = params.get("photo") or "attach://photo"
            return self.bot_message(chat, caption=params.get("caption", ""),
                                    photo=self.photo_sizes(request, photo), **extra)
        if method == "editMessageReplyMarkup":
            return self.bot_message(chat, text="(edited)", reply_markup=params.get("reply_markup"))
        if method == "editMessageText":
            extra = {"reply_markup": params["reply_markup"]} if "reply_markup" in params else {}
            return self.bot_message(chat, text=params["text"], **extra)
        raise BadRequest(f"Not Found: method {method} is not served by the fake", status=404)


def scaled_jpeg(data: bytes, side: int) -> tuple[bytes, int, int] | None:
    """The photo scaled to this long side, as Telegram stores its smaller sizes; None if it is no image."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception:  # tests also send broken files as photos
        return None
    image = image.convert("RGB")
    image.thumbnail((side, side))
    return encode(image, quality=87), image.width, image.height


class BadRequest(Exception):
    def __init__(self, description: str, status: int = 400):
        super().__init__(description)
        self.status = status


def parse_params(handler: tornado.web.RequestHandler) -> tuple[dict[str, Any], dict[str, bytes]]:
    request = handler.request
    params: dict[str, Any] = {}
    if request.headers.get("Content-Type", "").startswith("application/json") and request.body:
        params = json.loads(request.body)
    else:
        for key, values in request.body_arguments.items():
            params[key] = values[-1].decode()
        for key, values in request.query_arguments.items():
            params.setdefault(key, values[-1].decode())
    for key, value in list(params.items()):
        if isinstance(value, str) and value[:1] in "[{":
            params[key] = json.loads(value)
    files = {name: parts[0]["body"] for name, parts in request.files.items()}
    return params, files


class MethodHandler(tornado.web.RequestHandler):
    def initialize(self, fake: FakeTelegram) -> None:
        self.fake = fake

    async def post(self, token: str, method: str) -> None:
        if token != self.fake.token:
            self.set_status(401)
            self.finish({"ok": False, "error_code": 401, "description": "Unauthorized"})
            return
        params, files = parse_params(self)
        request = Request(method, params, files)
        if method != "getUpdates":
            self.fake._record(request)
        fault = self.fake._next_fault(method)
        if self.fake.latency and method != "getUpdates":
            await asyncio.sleep(self.fake.latency)
        if fault and fault.stall:
            await asyncio.sleep(fault.stall)
        if fault and fault.status != 200:
            body: dict[str, Any] = {"ok": False, "error_code": fault.status,
                                    "description": "Too Many Requests: retry later" if fault.status == 429
                                    else "Internal Server Error"}
            if fault.retry_after is not None:
                body["parameters"] = {"retry_after": fault.retry_after}
            self.set_status(fault.status)
            self.finish(body)
            return
        try:
            result = (await self.fake.get_updates(params) if method == "getUpdates"
                      else self.fake.answer(request))
        except BadRequest as exc:
            self.set_status(exc.status)
            self.finish({"ok": False, "error_code": exc.status, "description": str(exc)})
            return
        request.response = result
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"ok": True, "result": result}))

    get = post


class FileHandler(tornado.web.RequestHandler):
    def initialize(self, fake: FakeTelegram) -> None:
        self.fake = fake

    def get(self, token: str, path: str) -> None:
        file_id = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        if token != self.fake.token or file_id not in self.fake.files:
            self.set_status(404)
            self.finish({"ok": False, "error_code": 404, "description": "Not Found"})
            return
        self.fake._record(Request("download", {"file_id": file_id}, {}))
        self.set_header("Content-Type", "application/octet-stream")
        self.finish(self.fake.files[file_id])
