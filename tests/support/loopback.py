"""A loopback HTTP server that serves files as a real static host does: HEAD, GET and single Range requests.

Tests register paths with `serve(url_path, file_or_bytes)` and read `requests` to see what was asked.
`serve(..., cut_after=N)` drops the connection after N body bytes, once, as a failing network does;
`answer(url_path, status, body)` answers with a fixed status and page (rate limits, HTML instead of a zip);
`route(url_path, function)` lets a test speak a service's own protocol: `function(handler)` answers through
`handler.send_content` / `handler.send_page`, and sees the query in `handler.query`.
`serve` also takes how to answer, as a misbehaving image host would: a `content_type`, a `delay` in seconds
before answering, or `failures`: a list of (status, headers) answered first, one per request, before the file.
A served file carries an ETag (from its bytes) and a Last-Modified (when it was served), as static hosts send them.
`stall(url_path, at=..., after=...)` holds the next GET of a file whose answer covers byte `at` (any GET if None),
once, after sending `after` body bytes (none, and no headers, if None): `stalled` is set the moment it holds,
so a test knows the client is waiting on it, and the answer is dropped when `release()` (or `close()`) is called.
`endless(url_path, head)` answers with no Content-Length and a body that never ends (`head`, then zeros), as a
broken or hostile server does; once it has ended, `endless_done` is set and `endless_ended` says how: "client
closed" or, as a safety net for a client that would read on forever, "limit" after ENDLESS_LIMIT bytes.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from imagenet_sketch_tools.dataset.release import HUB_ZIP_URL

# Where the hub serves the release zip: a loopback server set as HF_ENDPOINT serves it at the same path.
HUB_ZIP_PATH = urllib.parse.urlsplit(HUB_ZIP_URL).path
ENDLESS_LIMIT = 256 << 20


class QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-answer (a timeout, a cancelled read: what several tests do on purpose) is no
    error of the server's: socketserver would print its traceback to stderr, where the tests read the command's
    one-line messages. Anything else is still printed."""

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass(frozen=True)
class Stall:
    at: int | None  # a byte of the file the held answer covers; None: any answer
    after: int | None  # body bytes sent before holding; None: hold before the status line

    def covers(self, start: int, end: int) -> bool:
        return self.at is None or start <= self.at <= end


class RangeServer:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cuts: dict[str, int] = {}  # path -> body bytes sent before the connection is dropped (once)
        self.routes: dict[str, Callable] = {}
        self.content_types: dict[str, str] = {}
        self.delays: dict[str, float] = {}
        self.failures: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self.validators: dict[str, dict[str, str]] = {}  # path -> ETag and Last-Modified of the file served there
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.request_headers: list[dict[str, str]] = []  # every request's headers, in the order of `requests`
        self.stalls: dict[str, Stall] = {}
        self.stalled, self.released = threading.Event(), threading.Event()
        self.endless_ended: str | None = None
        self.endless_done = threading.Event()
        self.server = QuietServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def serve(
        self,
        path: str,
        content: bytes | Path,
        cut_after: int | None = None,
        *,
        content_type: str = "application/zip",
        delay: float = 0.0,
        failures: list[tuple[int, dict[str, str]]] | None = None,
    ) -> str:
        self.files[path] = content.read_bytes() if isinstance(content, Path) else content
        self.content_types[path], self.delays[path], self.failures[path] = content_type, delay, list(failures or [])
        self.validators[path] = {
            "ETag": '"' + hashlib.sha256(self.files[path]).hexdigest()[:32] + '"',
            "Last-Modified": email.utils.formatdate(usegmt=True),
        }
        if cut_after is not None:
            self.cuts[path] = cut_after
        return self.url + path

    def answer(self, path: str, status: int, body: bytes = b"", content_type: str = "text/html") -> str:
        self.routes[path] = lambda handler: handler.send_page(status, body, {"Content-Type": content_type})
        return self.url + path

    def route(self, path: str, function: Callable) -> str:
        self.routes[path] = function
        return self.url + path

    def endless(self, path: str, head: bytes) -> str:
        return self.route(path, lambda handler: handler.send_endless(head))

    def stall(self, path: str, *, at: int | None = None, after: int | None = None) -> None:
        self.stalls[path] = Stall(at, after)

    def release(self) -> None:
        self.released.set()

    def _take_stall(self, path: str, start: int, end: int) -> Stall | None:
        stall = self.stalls.get(path)
        if stall is None or not stall.covers(start, end):
            return None
        del self.stalls[path]
        return stall

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as separate writes; with Nagle on, each request stalls ~40 ms on delayed ACK.
            disable_nagle_algorithm = True

            def log_message(self, format, *args):  # noqa: A002 (the base method's name for it)
                pass

            def do_HEAD(self):
                self._answer(body=False)

            def do_GET(self):
                self._answer(body=True)

            @property
            def query(self) -> dict[str, str]:
                return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))

            def _answer(self, body: bool):
                owner.requests.append((self.command, self.path, self.headers.get("Range")))
                owner.request_headers.append(dict(self.headers.items()))
                self.with_body = body
                path = self.path.split("?")[0]
                time.sleep(owner.delays.get(path, 0.0))
                failures = owner.failures.get(path)
                if path in owner.routes:
                    owner.routes[path](self)
                elif failures:
                    status, headers = failures.pop(0)
                    self.send_page(status, b"", headers)
                elif path in owner.files:
                    self.send_content(
                        owner.files[path],
                        {"Content-Type": owner.content_types[path], **owner.validators[path]},
                        cut_after=owner.cuts.pop(path, None),
                    )
                else:
                    self.send_page(404, b"")

            def send_page(self, status: int, content: bytes, headers: dict[str, str] | None = None):
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if self.with_body:
                    self.wfile.write(content)

            def send_content(self, content: bytes, headers: dict[str, str] | None = None, cut_after: int | None = None):
                start, end, status = 0, len(content) - 1, 200
                match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range") or "")
                if match:
                    if match[1]:
                        start, end = int(match[1]), min(int(match[2]) if match[2] else end, end)
                    else:
                        start = max(0, len(content) - int(match[2]))
                    if start > end:
                        self.send_page(416, b"", {"Content-Range": f"bytes */{len(content)}"})
                        return
                    status = 206
                stall = owner._take_stall(self.path.split("?")[0], start, end) if self.with_body else None
                if stall is not None and stall.after is None:
                    self._hold()
                    return
                self.send_response(status)
                headers = {"Content-Type": "application/zip", **(headers or {})}
                self.send_header("Accept-Ranges", "bytes")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(end - start + 1))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(content)}")
                self.end_headers()
                if not self.with_body:
                    return
                if stall is not None and stall.after is not None:  # (a stall with no `after` held above)
                    self.wfile.write(content[start : start + stall.after])
                    self.wfile.flush()
                    self._hold()
                    return
                if cut_after is None:
                    self.wfile.write(content[start : end + 1])
                    return
                # A dropped connection: part of the announced body, then the socket closes.
                self.wfile.write(content[start : start + cut_after])
                self.wfile.flush()
                self.close_connection = True

            def send_endless(self, head: bytes):
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                sent, block = 0, head + bytes((1 << 16) - len(head))
                try:
                    while sent < ENDLESS_LIMIT:
                        self.wfile.write(block)
                        sent, block = sent + len(block), bytes(1 << 16)
                except OSError:  # the client hung up
                    owner.endless_ended = "client closed"
                else:
                    owner.endless_ended = "limit"
                owner.endless_done.set()

            def _hold(self):
                """Keep the client waiting until the test releases it, then drop the connection unanswered."""
                owner.stalled.set()
                owner.released.wait()
                self.close_connection = True

        return Handler
