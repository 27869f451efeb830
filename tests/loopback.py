"""A loopback HTTP server that serves files as a real static host does: HEAD, GET and single Range requests.

Tests register paths with `serve(url_path, file_or_bytes)` and read `requests` to see what was asked.
`serve` also takes how to answer, as a misbehaving image host would: a `content_type`, a `delay` in seconds
before answering, or `failures`: a list of (status, headers) answered first, one per request, before the file.
"""

from __future__ import annotations

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class RangeServer:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.content_types: dict[str, str] = {}
        self.delays: dict[str, float] = {}
        self.failures: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def serve(
        self,
        path: str,
        content: bytes | Path,
        *,
        content_type: str = "application/zip",
        delay: float = 0.0,
        failures: list[tuple[int, dict[str, str]]] | None = None,
    ) -> str:
        self.files[path] = content.read_bytes() if isinstance(content, Path) else content
        self.content_types[path], self.delays[path], self.failures[path] = content_type, delay, list(failures or [])
        return self.url + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self._answer(body=False)

            def do_GET(self):
                self._answer(body=True)

            def _answer(self, body: bool):
                owner.requests.append((self.command, self.path, self.headers.get("Range")))
                path = self.path.split("?")[0]
                content = owner.files.get(path)
                time.sleep(owner.delays.get(path, 0.0))
                failures = owner.failures.get(path)
                if content is None or failures:
                    status, headers = failures.pop(0) if failures else (404, {})
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start, end, status = 0, len(content) - 1, 200
                match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range") or "")
                if match:
                    if match[1]:
                        start, end = int(match[1]), min(int(match[2]) if match[2] else end, end)
                    else:
                        start = max(0, len(content) - int(match[2]))
                    if start > end:
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(content)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                self.send_response(status)
                self.send_header("Content-Type", owner.content_types[path])
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(end - start + 1))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(content)}")
                self.end_headers()
                if body:
                    self.wfile.write(content[start : end + 1])

        return Handler
