"""Stage 1 of the pipeline: for each class, ask the backends for "sketch of <name>" and download what they found.

Layout under OUT_DIR: `raw/<wnid>/<nnn>.<ext>` (the image's own bytes, as served), `manifest.jsonl` (one `image`
row per kept file), and `.collect/<wnid>.json` (the class's candidate list, then its outcome once done).
Resumable: a class whose state says done is skipped; otherwise its saved candidates are reused (no new search)
and only those without an `image` row are fetched again.

Downloading is polite: per-host rate limit, retries with backoff on 429, 5xx, timeouts and connection errors
(honouring Retry-After), none on 404 and other 4xx, a total timeout per image and a size cap checked while
streaming. Only whole images Pillow can decode are kept; HTML served in their place is rejected and counted.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.pool import ThreadPool
from pathlib import Path
from urllib.parse import urlsplit

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.common.files import write_atomically
from imagenet_sketch_tools.common.images import decode
from imagenet_sketch_tools.dataset.classes import class_table, label_of_wnid
from imagenet_sketch_tools.pipeline.manifest import Manifest
from imagenet_sketch_tools.pipeline.search import Candidate, search

RAW_FOLDER = "raw"
STATE_FOLDER = ".collect"
EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}

USER_AGENT = "imagenet-sketch-collect/1.0 (research dataset rebuild; honours 429 and Retry-After)"
CHUNK = 1 << 16
MAX_RETRY_AFTER = 60.0


class FetchFailed(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


@dataclass(frozen=True)
class Decoded:
    format: str
    mode: str
    width: int
    height: int


class RateLimiter:
    """At most `rate` requests per second to each host; `clock` and `sleep` are injectable for tests."""

    def __init__(
        self, rate: float, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep
    ):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock, self.sleep = clock, sleep
        self.next_time: dict[str, float] = {}
        self.lock = threading.Lock()

    def wait(self, host: str) -> None:
        with self.lock:
            now = self.clock()
            start = max(now, self.next_time.get(host, now))
            self.next_time[host] = start + self.interval
        if start > now:
            self.sleep(start - now)


class Fetcher:
    def __init__(
        self,
        *,
        rate: float = 2.0,
        timeout: float = 20.0,
        max_bytes: int = 20_000_000,
        retries: int = 3,
        backoff: float = 1.0,
    ):
        self.limiter = RateLimiter(rate)
        self.timeout, self.max_bytes, self.retries, self.backoff = timeout, max_bytes, retries, backoff

    def fetch(self, url: str) -> tuple[bytes, str]:
        """The body and Content-Type of `url`, retrying what may recover."""
        for attempt in range(self.retries + 1):
            self.limiter.wait(urlsplit(url).netloc)
            try:
                return self._get(url)
            except FetchFailed as failure:
                if not is_transient(failure.reason) or attempt == self.retries:
                    raise
                wait = failure.retry_after if failure.retry_after is not None else self.backoff * 2**attempt
                time.sleep(wait)
        raise AssertionError("unreachable")

    def _get(self, url: str) -> tuple[bytes, str]:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "image/*,*/*;q=0.5"})
        deadline = time.monotonic() + self.timeout
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                if int(response.headers.get("Content-Length") or 0) > self.max_bytes:
                    raise FetchFailed("too_large")
                return self._read_capped(response, deadline), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            reason = "not_found" if error.code == 404 else f"http_{error.code}"
            raise FetchFailed(reason, retry_after_seconds(error.headers.get("Retry-After"))) from None
        except TimeoutError:
            raise FetchFailed("timeout") from None
        except urllib.error.URLError as error:
            reason = "timeout" if isinstance(error.reason, TimeoutError) else "connection"
            raise FetchFailed(reason) from None
        except (OSError, http.client.HTTPException):
            raise FetchFailed("connection") from None

    def _read_capped(self, response, deadline: float) -> bytes:
        """Stream the body, stopping as soon as it passes the cap or the deadline."""
        body = bytearray()
        while chunk := response.read(CHUNK):
            body += chunk
            if len(body) > self.max_bytes:
                raise FetchFailed("too_large")
            if time.monotonic() > deadline:
                raise FetchFailed("timeout")
        return bytes(body)


def is_transient(reason: str) -> bool:
    return reason in ("timeout", "connection", "http_429") or reason.startswith("http_5")


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) as seconds to wait, capped; None if absent or unreadable."""
    if not value:
        return None
    if value.strip().isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, min(when - time.time(), MAX_RETRY_AFTER))


def decode_image(content: bytes, content_type: str = "") -> Decoded:
    """Check `content` is a whole, decodable image (Pillow); HTML served in its place is told apart."""
    head = content[:512].lstrip().lower()
    if "html" in content_type.lower() or head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        raise FetchFailed("html")
    image, _ = decode(content)
    if image is None:
        raise FetchFailed("not_image")
    return Decoded(image.format or "", image.mode, image.width, image.height)


def query_of(wnid: str) -> str:
    """The authors' query: "sketch of " and the class's first name, underscores as spaces."""
    _, names = class_table()
    name = names[label_of_wnid()[wnid]].split(",")[0].replace("_", " ").strip()
    return f"sketch of {name}"


def chosen_wnids(classes: Iterable[str] | None) -> list[str]:
    if not classes:
        return list(class_table()[0])
    unknown = [wnid for wnid in classes if wnid not in label_of_wnid()]
    if unknown:
        raise UserError(f"unknown wnid {unknown[0]!r} in --classes; give ImageNet-1k wnids such as n01440764")
    return list(dict.fromkeys(classes))


@dataclass
class Summary:
    classes: int = 0
    skipped: int = 0
    kept: int = 0
    failed: Counter = field(default_factory=Counter)

    def line(self) -> str:
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(self.failed.items()))
        failed = f"{sum(self.failed.values())} failed" + (f" ({reasons})" if reasons else "")
        return f"collect: {self.classes} classes ({self.skipped} already done), {self.kept} images kept, {failed}"


@dataclass
class Sources:
    """Which backends to ask, in order, and their inputs."""

    backends: list[str]
    urls_file: str | None = None
    folder: str | None = None

    def candidates(self, wnid: str, query: str, limit: int) -> list[Candidate]:
        found: dict[str, Candidate] = {}
        for backend in self.backends:
            if len(found) >= limit:
                break
            for candidate in search(
                backend, wnid, query, limit - len(found), urls_file=self.urls_file, folder=self.folder
            ):
                found.setdefault(candidate.source, candidate)
        return list(found.values())[:limit]


def collect(
    out_dir: str | os.PathLike,
    wnids: list[str],
    sources: Sources,
    *,
    limit: int = 100,
    fetcher: Fetcher | None = None,
    workers: int = 4,
    on_image: Callable[[dict], None] | None = None,
) -> Summary:
    """Collect every class in `wnids` into `out_dir`; `on_image` is called with each new manifest row.

    Up to `workers` downloads run at once (the per-host rate limit still holds); files and manifest rows are
    written by this thread only, in candidate order, so the manifest never sees two writers. The downloads run in
    daemon threads (a ThreadPool's, not a ThreadPoolExecutor's, which exit waits for): on Ctrl-C the process
    stops at once instead of waiting for a host that holds a download for up to --timeout, once per retry.
    """
    out_dir, fetcher, summary = Path(out_dir), fetcher or Fetcher(), Summary()
    manifest = Manifest(out_dir)
    kept_sources: dict[str, set[str]] = {}
    for row in manifest.rows("image"):
        kept_sources.setdefault(row["wnid"], set()).add(row["url"])
    with ThreadPool(max(1, workers)) as pool:  # leaving it terminates the pool: nothing more starts
        for wnid in wnids:
            summary.classes += 1
            state_path = out_dir / STATE_FOLDER / f"{wnid}.json"
            state = json.loads(state_path.read_text()) if state_path.exists() else None
            if state and state.get("done"):
                summary.skipped += 1
                continue
            if state is None:
                query = query_of(wnid)
                candidates = sources.candidates(wnid, query, limit)
                state = {"wnid": wnid, "query": query, "candidates": [[c.source, c.backend] for c in candidates]}
                write_json_atomically(state_path, state)
            kept = kept_sources.setdefault(wnid, set())
            failed: Counter = Counter()
            missing = [
                (index, candidate, pool.apply_async(fetch_candidate, (fetcher, candidate)))
                for index, candidate in enumerate(Candidate(source, backend) for source, backend in state["candidates"])
                if candidate.source not in kept
            ]
            for index, candidate, fetched in missing:  # in candidate order: the manifest's order is not timing's
                try:
                    content, decoded = fetched.get()
                except FetchFailed as failure:
                    failed[failure.reason] += 1
                    continue
                row = store(out_dir, manifest, state["query"], wnid, index, candidate, content, decoded)
                kept.add(candidate.source)
                summary.kept += 1
                if on_image:
                    on_image(row)
            summary.failed.update(failed)
            write_json_atomically(state_path, {**state, "done": True, "kept": len(kept), "failed": dict(failed)})
    return summary


def fetch_candidate(fetcher: Fetcher, candidate: Candidate) -> tuple[bytes, Decoded]:
    """One candidate's bytes, checked to be a whole image (raises FetchFailed otherwise)."""
    if candidate.is_local:
        try:
            content, content_type = Path(candidate.source).read_bytes(), ""
        except OSError:
            raise FetchFailed("unreadable") from None
    else:
        content, content_type = fetcher.fetch(candidate.source)
    return content, decode_image(content, content_type)


def store(
    out_dir: Path,
    manifest: Manifest,
    query: str,
    wnid: str,
    index: int,
    candidate: Candidate,
    content: bytes,
    decoded: Decoded,
) -> dict:
    """Write the image as `raw/<wnid>/<index>.<ext>` (complete or not at all), then add its manifest row."""
    relative = Path(RAW_FOLDER) / wnid / f"{index:03d}{EXTENSIONS.get(decoded.format, '.img')}"
    path = out_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, content)
    return manifest.append(
        "image",
        wnid=wnid,
        query=query,
        backend=candidate.backend,
        url=candidate.source,
        path=relative.as_posix(),
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
        mode=decoded.mode,
        width=decoded.width,
        height=decoded.height,
    )


def write_json_atomically(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(value, indent=1, sort_keys=True))
