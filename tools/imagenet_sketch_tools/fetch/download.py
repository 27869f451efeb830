"""A verified, resumable HTTP download of the release archive: the transfer every URL mirror shares.

The bytes go to `<output>.partial` and are renamed to `output` only once their size and sha256 match; an
interrupted transfer is picked up with a Range request. A verified copy is recorded in `<output>.verified`
(size, mtime, sha256), so asking again for a file already in place does no network work and no re-hashing.
One download at a time writes `output` (common.locks); a second one says which process holds it and waits,
then finds the verified file. No more than the expected size is ever written, whatever the server sends.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from tqdm.auto import tqdm

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.common.files import cache_folder, file_sha256, write_atomically
from imagenet_sketch_tools.common.locks import exclusive, lock_of
from imagenet_sketch_tools.dataset.release import ARCHIVE_NAME, release_checksum

# Transient failures within one run are resumed in place this many times before the run gives up.
RETRIES = 2
NETWORK_ERRORS = (httpx.TransportError,)


class MirrorError(UserError):
    """One mirror could not serve a verified archive; the chain moves on to the next."""


@dataclass(frozen=True)
class Expected:
    """What the archive must be: its size in bytes and sha256 (None: not checked)."""

    size: int | None
    sha256: str | None

    @classmethod
    def release(cls, size: int | None = None, sha256: str | None = None) -> Expected:
        """The release's figures (dataset.release), or only the caller's when any is given.

        A given figure describes another archive, so none of the release's still applies to it: a sha256 alone
        keeps the release's size from refusing a file of any other size.
        """
        if size is None and sha256 is None:
            size, sha256 = release_checksum()
        return cls(size, sha256.lower() if sha256 else None)


def default_output() -> Path:
    """Where the archive lands unless told otherwise: the user's cache folder (XDG_CACHE_HOME honoured)."""
    return cache_folder() / ARCHIVE_NAME


def is_zip_start(head: bytes) -> bool:
    return head.startswith(b"PK")


def describe_non_zip(head: bytes) -> str:
    """What a body that should have been a zip looks like, for the error message."""
    text = head.lstrip()[:200].decode("utf-8", "replace")
    if text[:1] == "<":
        start = text.lower().find("<title>")
        title = text[start + len("<title>") :].split("<", 1)[0].strip() if start >= 0 else ""
        return f"an HTML page ({title!r})" if title else "an HTML page"
    return f"a file that is not a zip (it starts with {head[:8]!r})"


def verified_copy(path: Path, expected: Expected) -> bool:
    """True if `path` holds the archive; False if absent; UserError if it is there but is something else.

    A file that fails verification is never deleted or overwritten: it may be the user's own.
    """
    if not path.is_file():
        return False
    status = path.stat()
    stamp = Path(f"{path}.verified")
    record = {"size": status.st_size, "mtime_ns": status.st_mtime_ns, "sha256": expected.sha256}
    if stamp.is_file() and _read_json(stamp) == record:
        return True
    problem = mismatch(path, expected)
    if problem:
        raise UserError(f"{path} already exists but {problem}; move it away or choose another --output")
    _write_stamp(path, expected)
    return True


def fetch(
    url: str,
    output: Path,
    expected: Expected,
    *,
    mirror: str,
    client: httpx.Client | None = None,
    headers: dict[str, str] | None = None,
    retries: int = RETRIES,
    denied_hint: str = "try later or another --mirror",
) -> Path:
    """Download `url` to `output`, resuming `<output>.partial`, and verify it; return `output`."""
    output = Path(output)
    if verified_copy(output, expected):
        return output
    output.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(lock_of(output), busy=lambda holder: f"waiting for {holder}, downloading {output}", wait=True):
        if verified_copy(output, expected):  # the download this one waited for got it
            return output
        own_client = client is None
        client = client or httpx.Client(follow_redirects=True, timeout=httpx.Timeout(60.0, connect=30.0))
        try:
            received = _transfer_with_retries(
                client, url, output, expected, mirror, headers or {}, retries, denied_hint
            )
        finally:
            if own_client:
                client.close()
        return _verify_into_place(output, expected, url=url, mirror=mirror, received=received)


def _transfer_with_retries(client, url, output, expected, mirror, headers, retries, hint) -> tuple[int, float]:
    """Transfer into `<output>.partial`, resuming after a dropped connection; (bytes received, seconds)."""
    partial = Path(f"{output}.partial")
    started, received = time.monotonic(), [0]  # bytes received over every attempt, dropped ones included
    for attempt in range(retries + 1):
        try:
            _transfer(client, url, partial, expected, received, mirror=mirror, headers=headers, hint=hint)
            break
        except NETWORK_ERRORS as error:
            if attempt == retries and isinstance(error, httpx.ConnectError):
                raise MirrorError(
                    f"could not reach {mirror} ({error}); check the network or try another --mirror"
                ) from error
            if attempt == retries:
                raise MirrorError(
                    f"the transfer from {mirror} stopped at {_size_of(partial):,} bytes ({error}); "
                    f"run the command again to resume it from there"
                ) from error
    return received[0], time.monotonic() - started


def _verify_into_place(output: Path, expected: Expected, *, url: str, mirror: str, received) -> Path:
    partial = Path(f"{output}.partial")
    problem = mismatch(partial, expected)
    if problem:
        partial.unlink()
        raise MirrorError(f"the file {mirror} served ({url}) {problem}; it was discarded; try another --mirror")
    os.replace(partial, output)
    _write_stamp(output, expected)
    _summary(output, mirror, *received)
    return output


def _transfer(client: httpx.Client, url: str, partial: Path, expected: Expected, received, *, mirror, headers, hint):
    """One request: append the rest of the file to `partial` (or start over if the server cannot resume).

    A dropped connection raises after keeping what arrived; `received[0]` counts the bytes.
    """
    offset = _size_of(partial)
    if expected.size is not None and offset > expected.size:
        offset = 0
    request_headers = {**headers, "Accept-Encoding": "identity"}
    if offset:
        request_headers["Range"] = f"bytes={offset}-"
    with client.stream("GET", url, headers=request_headers) as response:
        if response.status_code == 416 and offset == expected.size:
            return  # the previous run had every byte; verification follows
        _check_status(response, mirror, url, hint)
        if response.status_code == 206 and _range_start(response) == offset:
            mode = "ab"
        else:
            offset, mode = 0, "wb"  # the server sent the whole file: start over
        chunks = response.iter_bytes()
        first = next(chunks, b"")
        # Judged from the bytes, before any size or checksum: an HTML page is never mistaken for a bad zip.
        if (offset == 0 and not is_zip_start(first)) or "text/html" in response.headers.get("Content-Type", ""):
            raise MirrorError(
                f"{mirror} answered {url} with {describe_non_zip(first)} instead of the zip; try another --mirror"
            )
        total = _total_size(response)
        if expected.size is not None and total is not None and total != expected.size:
            raise MirrorError(
                f"{mirror} serves {total:,} bytes at {url}, expected {expected.size:,}; try another --mirror"
            )
        limit = expected.size if expected.size is not None else total
        try:
            _write_body([first], chunks, partial, mode, offset, total, received, mirror=mirror, limit=limit)
        except _TooLong:
            partial.unlink()
            raise MirrorError(
                f"{mirror} sent more than the expected {limit:,} bytes at {url}; the transfer was stopped and "
                f"discarded; try another --mirror"
            ) from None


class _TooLong(Exception):
    """The server sent more bytes than the file has."""


def _write_body(first: list[bytes], chunks, partial: Path, mode: str, offset: int, total, received, *, mirror, limit):
    """Write every chunk to `partial` as it comes, so a dropped connection keeps what arrived; never past `limit`
    bytes (the expected size, else the size the server announced), so an endless answer cannot fill the disk."""
    with (
        open(partial, mode) as file,
        tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, desc=mirror) as bar,
    ):
        written = offset
        for chunk in itertools.chain(first, chunks):
            written += len(chunk)
            if limit is not None and written > limit:
                raise _TooLong
            file.write(chunk)
            file.flush()  # on disk at once: what arrived survives however this process stops, and shows progress
            bar.update(len(chunk))
            received[0] += len(chunk)


def _check_status(response: httpx.Response, mirror: str, url: str, denied_hint: str) -> None:
    status = response.status_code
    if status in (200, 206):
        return
    if status == 429:
        raise MirrorError(f"{mirror} refused the download (HTTP 429: rate limit); try later or another --mirror")
    if status in (401, 403):
        raise MirrorError(f"{mirror} refused {url} (HTTP {status}: access denied or quota exceeded); {denied_hint}")
    if status == 404:
        raise MirrorError(f"{mirror} has no file at {url} (HTTP 404); try another --mirror")
    raise MirrorError(f"{mirror} answered {url} with HTTP {status}; try again later or another --mirror")


def _total_size(response: httpx.Response) -> int | None:
    content_range = response.headers.get("Content-Range", "")
    if response.status_code == 206 and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _range_start(response: httpx.Response) -> int | None:
    unit, _, span = response.headers.get("Content-Range", "").partition(" ")
    start = span.split("-", 1)[0]
    return int(start) if unit == "bytes" and start.isdigit() else None


def mismatch(path: Path, expected: Expected) -> str | None:
    """Why `path` is not the expected archive, or None if it is."""
    size = path.stat().st_size
    if expected.size is not None and size != expected.size:
        return f"has {size:,} bytes, expected {expected.size:,}"
    with open(path, "rb") as file:
        head = file.read(512)
    if not is_zip_start(head):
        return f"is {describe_non_zip(head)}"
    if expected.sha256 is not None:
        digest = file_sha256(path, progress=True)
        if digest != expected.sha256:
            return f"has sha256 {digest}, expected {expected.sha256}"
    return None


def _write_stamp(path: Path, expected: Expected) -> None:
    status = path.stat()
    record = {"size": status.st_size, "mtime_ns": status.st_mtime_ns, "sha256": expected.sha256}
    stamp = Path(f"{path}.verified")
    try:
        write_atomically(stamp, json.dumps(record))
    except OSError:
        pass  # a read-only folder only costs a re-hash next time


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _size_of(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _summary(output: Path, mirror: str, received: int, seconds: float) -> None:
    rate = received / seconds / 1e6 if seconds > 0 else 0.0
    print(
        f"downloaded {received / 1e6:,.1f} MB from {mirror} in {seconds:.1f} s ({rate:,.1f} MB/s), verified: {output}",
        file=sys.stderr,
    )
