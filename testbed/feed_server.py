"""A shop's web server on loopback: a product feed and its images, with ETags, plus the ways real ones fail."""

from __future__ import annotations

import hashlib
import threading
import time
import urllib.parse
from collections import Counter
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HUGE_BYTES = 60 * 1024 * 1024
SLOW_SECONDS = 3.0


class FeedServer:
    """Serves /feed.<ext> and /img/<name> from dicts that a test may change while it runs.

    Failure paths: /broken (404), /slow (answers after SLOW_SECONDS), /html (an error page with status 200),
    /huge (a 60 MB JPEG), /loop (redirects to itself), /flaky (503 on the first try).
    """

    def __init__(self, uploaded: float | None = None) -> None:
        """uploaded: when the shop put its photos up, sent as their Last-Modified with no max-age, as a web
        server sends static files; None: every photo is sent as changed just now, so every sync asks again."""
        self.uploaded = uploaded
        self.feeds: dict[str, bytes] = {}
        self.images: dict[str, bytes] = {}
        self.hits: Counter[tuple[str, int]] = Counter()  # (path, status) -> count
        self._flaky_seen: set[str] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # as real web servers do: no 40 ms stalls on small replies

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.answer(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # socketserver's 5 drops the SYNs of 8 parallel downloads: 1 s retries

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> FeedServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def image_url(self, name: str) -> str:
        return f"{self.url}/img/{name}"

    def downloads(self) -> int:
        """Image bodies sent (not counting 304s)."""
        return sum(n for (path, status), n in self.hits.items() if path.startswith("/img/") and status == 200)

    def image_requests(self) -> int:
        """Requests for images, 304s included."""
        return sum(n for (path, _status), n in self.hits.items() if path.startswith("/img/"))

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?")[0]
        if path.startswith("/feed."):
            body = self.feeds.get(path[len("/feed."):])
            if body is None:
                return self.send(request, path, 404, b"no such feed")
            return self.send(request, path, 200, body)
        if path.startswith("/img/"):
            body = self.images.get(path[len("/img/"):])
            if body is None:
                return self.send(request, path, 404, b"not found")
            etag = '"' + hashlib.sha1(body).hexdigest() + '"'
            if request.headers.get("If-None-Match") == etag:
                return self.send(request, path, 304, b"", {"ETag": etag})
            return self.send(request, path, 200, body, {"ETag": etag, "Content-Type": "image/jpeg",
                                                         "Last-Modified": formatdate(self.uploaded, usegmt=True)})
        if path == "/slow":
            time.sleep(SLOW_SECONDS)
            return self.send(request, path, 200, self.images.get("slow", b""), {"Content-Type": "image/jpeg"})
        if path == "/html":
            page = b"<!doctype html><html><body><h1>Oops, this product is gone</h1></body></html>"
            return self.send(request, path, 200, page, {"Content-Type": "image/jpeg"})  # a lying header
        if path == "/huge":
            return self.send_huge(request, path)
        if path == "/away":  # /away?to=URL: a redirect to anywhere
            target = urllib.parse.unquote(request.path.split("to=", 1)[1])
            return self.send(request, path, 302, b"", {"Location": target})
        if path == "/loop":
            return self.send(request, path, 302, b"", {"Location": "/loop"})
        if path == "/flaky":
            if path not in self._flaky_seen:
                self._flaky_seen.add(path)
                return self.send(request, path, 503, b"try again")
            return self.send(request, path, 200, self.images.get("flaky", b""), {"Content-Type": "image/jpeg"})
        return self.send(request, path, 404, b"not found")

    def send(self, request: BaseHTTPRequestHandler, path: str, status: int, body: bytes,
             headers: dict[str, str] | None = None) -> None:
        self.hits[(path, status)] += 1
        request.send_response(status)
        for key, value in (headers or {}).items():
            request.send_header(key, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        if body:
            request.wfile.write(body)

    def send_huge(self, request: BaseHTTPRequestHandler, path: str) -> None:
        self.hits[(path, 200)] += 1
        request.send_response(200)
        request.send_header("Content-Type", "image/jpeg")
        request.send_header("Content-Length", str(HUGE_BYTES))
        request.end_headers()
        chunk = b"\xff\xd8\xff\xe0" + bytes(1024 * 1024 - 4)
        try:
            for _ in range(HUGE_BYTES // len(chunk)):
                request.wfile.write(chunk)
                chunk = bytes(len(chunk))
        except (BrokenPipeError, ConnectionResetError):  # the client gave up, as it should
            pass
