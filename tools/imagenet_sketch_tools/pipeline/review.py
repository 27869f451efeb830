"""Stage 2 of the pipeline: the manual cleaning, in a local web page, with automatic pre-filters.

The pre-filters flag what a curator should look at (manifest event `flag`, shown as badges): `unreadable`,
`black` (all dark), `blank` (near-uniform), `tiny` (a side under 64 px), `duplicate_of:<path>` (same sha256,
anywhere) and `near_duplicate_of:<path>` (perceptual hash within `NEAR_DUPLICATE_BITS`, same class). They only
flag: rejecting stays the curator's call. Each click is a POST that appends a `decision` row before it is answered,
so closing the browser loses nothing; the page always shows the manifest's state.

Only the served page may change anything. Listening on 127.0.0.1 is not enough: any page open in the same browser
can POST to it (a `text/plain` body needs no preflight), and a DNS-rebinding page can read it under its own name.
So every request must name the server itself in `Host` (`127.0.0.1:<port>` or `localhost:<port>`), and every
POST must carry the per-run token that is embedded in the served page only (header `X-Review-Token`), a JSON
body, and no foreign `Origin`. Anything else is answered 403 and changes nothing.
"""

from __future__ import annotations

import hmac
import io
import json
import os
import secrets
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.common.images import decode, tone
from imagenet_sketch_tools.common.jsonlines import JsonLines
from imagenet_sketch_tools.dataset.classes import class_table, label_of_wnid
from imagenet_sketch_tools.pipeline.manifest import Manifest

PAGE = "review_page.html"
TINY_SIDE = 64
NEAR_DUPLICATE_BITS = 6  # of phash's 64; re-encodes differ by 0-2, unrelated sketches by ~30
REASONS = ("irrelevant", "similar class", "duplicate", "unusable")
THUMB_SIDE = 240
ANALYSIS_CACHE = ".review/analysis.jsonl"
TOKEN_HEADER = "X-Review-Token"
TOKEN_PLACEHOLDER = b"__REVIEW_TOKEN__"  # in review_page.html; replaced by the run's token when served
LOOPBACK_NAMES = ("127.0.0.1", "localhost")


class UnreadableImage(Exception):
    """A collected image that cannot be decoded (for a thumbnail)."""


def image_rows(manifest: Manifest) -> dict[str, dict]:
    """The latest `image` row of each path, in label order then path order."""
    latest = {row["path"]: row for row in manifest.rows("image")}
    labels = label_of_wnid()
    return dict(sorted(latest.items(), key=lambda item: (labels.get(item[1]["wnid"], len(labels)), item[0])))


def image_flags(path: Path) -> tuple[list[str], object | None]:
    """The flags one image earns on its own, and its perceptual hash (None if unreadable or uniform)."""
    import imagehash

    image, _ = decode(path)
    if image is None:
        return ["unreadable"], None
    gray = image.convert("L")
    flags = [found] if (found := tone(gray)) else []
    if min(gray.size) < TINY_SIDE:
        flags.append("tiny")
    # Every uniform image has the same phash; calling them near-duplicates of each other would only add noise.
    return flags, None if {"black", "blank"} & set(flags) else imagehash.phash(gray)


def prefilter(out_dir: str | os.PathLike, images: dict[str, dict]) -> dict[str, list[str]]:
    """Flags for every image path (an empty list when nothing is suspicious)."""
    analysed = analyse(Path(out_dir), list(images))
    flags, hashes, first_of_sha = {}, {}, {}
    for path, row in images.items():
        flags[path], hashes[path] = analysed[path]
        original = first_of_sha.setdefault(row["sha256"], path)
        if original != path:
            flags[path].append(f"duplicate_of:{original}")
    seen_in_class: dict[str, list[str]] = {}
    for path, row in images.items():
        earlier = seen_in_class.setdefault(row["wnid"], [])
        if hashes[path] is not None and not any(flag.startswith("duplicate_of:") for flag in flags[path]):
            for other in earlier:
                if hashes[other] is not None and hashes[path] - hashes[other] <= NEAR_DUPLICATE_BITS:
                    flags[path].append(f"near_duplicate_of:{other}")
                    break
        earlier.append(path)
    return flags


def analyse(out_dir: Path, paths: list[str]) -> dict[str, tuple[list[str], object | None]]:
    """`image_flags` of each path, decoded once per file version: results are kept in `ANALYSIS_CACHE`, keyed by
    path, size and mtime, because decoding 100,000 images again at every start of review would take most of an hour."""
    import imagehash
    from tqdm import tqdm

    cache = JsonLines(out_dir / ANALYSIS_CACHE)
    # a line cut short by a crash is skipped, so that image is simply analysed again
    cached = {row["key"]: row for row in cache.rows()}
    results = {}
    with cache.appending() as add_to_cache:
        for path in tqdm(paths, desc="review: checking images", unit="img", leave=False, disable=None):
            key = file_version(out_dir, path)
            if key not in cached:
                flags, phash = image_flags(out_dir / path)
                cached[key] = {"key": key, "flags": flags, "phash": None if phash is None else str(phash)}
                add_to_cache(cached[key])
            row = cached[key]
            results[path] = (list(row["flags"]), row["phash"] and imagehash.hex_to_hash(row["phash"]))
    return results


def file_version(out_dir: Path, path: str) -> str:
    try:
        stat = (out_dir / path).stat()
    except OSError:
        return f"{path}|missing"
    return f"{path}|{stat.st_size}|{stat.st_mtime_ns}"


def record_flags(manifest: Manifest, flags: dict[str, list[str]]) -> int:
    """Append a `flag` row for each path whose flags changed since its last one; return how many were added."""
    recorded = {row["path"]: row["flags"] for row in manifest.rows("flag")}
    changed = [path for path, path_flags in flags.items() if recorded.get(path, []) != path_flags]
    for path in changed:
        manifest.append("flag", path=path, flags=flags[path])
    return len(changed)


class Review:
    """What the page shows and changes: the images by class, their flags and the curator's decisions."""

    def __init__(self, out_dir: str | os.PathLike):
        self.out_dir = Path(out_dir)
        self.manifest = Manifest(self.out_dir)
        self.images = image_rows(self.manifest)
        if not self.images:
            raise UserError(
                f"no collected images in {self.out_dir}; run `imagenet-sketch collect {self.out_dir}` first"
            )
        self.flags = prefilter(self.out_dir, self.images)
        record_flags(self.manifest, self.flags)
        self.decisions = {row["path"]: row for row in self.manifest.rows("decision")}
        self.lock = threading.Lock()
        self.names = dict(zip(*class_table()))

    def classes(self) -> list[dict]:
        by_class: dict[str, list[str]] = {}
        for path, row in self.images.items():
            by_class.setdefault(row["wnid"], []).append(path)
        return [
            {
                "wnid": wnid,
                "name": self.names.get(wnid, wnid),
                "images": len(paths),
                "rejected": sum(self.decision_of(path) == "reject" for path in paths),
                "undecided": sum(self.decision_of(path) is None for path in paths),
            }
            for wnid, paths in by_class.items()
        ]

    def decision_of(self, path: str) -> str | None:
        row = self.decisions.get(path)
        return row["decision"] if row else None

    def class_images(self, wnid: str) -> dict:
        images = [
            {
                "path": path,
                "flags": self.flags[path],
                "decision": self.decision_of(path),
                "reason": self.decisions.get(path, {}).get("reason", ""),
                "width": row.get("width"),
                "height": row.get("height"),
            }
            for path, row in self.images.items()
            if row["wnid"] == wnid
        ]
        if not images:
            raise LookupError(wnid)
        query = next(row["query"] for row in self.images.values() if row["wnid"] == wnid)
        return {"wnid": wnid, "name": self.names.get(wnid, wnid), "query": query, "images": images}

    def decide(self, path: str, decision: str, reason: str = "") -> dict:
        """Append the decision to the manifest (durably) before anything else sees it."""
        if path not in self.images or decision not in ("reject", "keep"):
            raise ValueError("expected a collected image path and a decision of 'reject' or 'keep'")
        if decision == "reject" and reason not in REASONS:
            raise ValueError(f"a rejection needs a reason among {', '.join(REASONS)}")
        with self.lock:
            row = self.manifest.append(
                "decision", path=path, decision=decision, reason=reason if decision == "reject" else ""
            )
            self.decisions[path] = row
        return row

    def keep_rest(self, wnid: str) -> int:
        """Record `keep` for the class's images the curator saw and did not reject (moving on to the next class)."""
        undecided = [p for p, row in self.images.items() if row["wnid"] == wnid and self.decision_of(p) is None]
        for path in undecided:
            self.decide(path, "keep")
        return len(undecided)

    def thumbnail(self, path: str) -> bytes:
        """A JPEG thumbnail of a collected image; UnreadableImage if it cannot be decoded."""
        image, unreadable = decode(self.out_dir / path, draft=("RGB", (THUMB_SIDE, THUMB_SIDE)))
        if image is None:
            raise UnreadableImage(unreadable)
        image.thumbnail((THUMB_SIDE, THUMB_SIDE))
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, "JPEG", quality=85)
        return buffer.getvalue()


def make_server(review: Review, port: int = 8765) -> ThreadingHTTPServer:
    """The review server, on the loopback interface only (the decisions are the curator's, not the network's).

    Its token is new at every start, so a page served by an earlier run (or guessed at) cannot decide anything.
    """
    try:
        return ThreadingHTTPServer(("127.0.0.1", port), handler_for(review, secrets.token_urlsafe(32)))
    except OSError as error:
        raise UserError(f"cannot listen on 127.0.0.1:{port} ({error.strerror}); choose another --port") from error


def is_own_host(host: str | None, port: int) -> bool:
    """True if a request's Host names this server; a rebound DNS name (evil.example:8765) does not."""
    return (host or "").strip().lower() in {f"{name}:{port}" for name in LOOPBACK_NAMES}


def refusal_of_post(headers, port: int, token: str) -> str | None:
    """Why a state-changing request did not come from the served page, or None if it did."""
    if not hmac.compare_digest((headers.get(TOKEN_HEADER) or "").encode(), token.encode()):
        return f"missing or wrong {TOKEN_HEADER}; reload the review page"
    content_type = (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        return "expected a JSON body (Content-Type: application/json)"
    origin = headers.get("Origin")
    # Browsers send Origin with every POST; a script outside a browser may omit it, but then it also lacks the token.
    if origin is not None and origin.lower() not in {f"http://{name}:{port}" for name in LOOPBACK_NAMES}:
        return f"requests from {origin} are not accepted"
    return None


def string_fields(raw: bytes, *names: str) -> dict[str, str]:
    """The fields `names` of a request body that must be a JSON object of strings (a missing one is "").

    ValueError (answered 400) for anything else: not JSON, not an object, a field that is a list, an object or a
    number, or JSON nested too deeply for the parser."""
    try:
        body = json.loads(raw or b"{}")
    except RecursionError:
        raise ValueError("the JSON body is nested too deeply") from None
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    fields = {name: body.get(name, "") for name in names}
    wrong = [name for name, value in fields.items() if not isinstance(value, str)]
    if wrong:
        raise ValueError(f"expected {', '.join(wrong)} to be a string")
    return fields


def handler_for(review: Review, token: str):
    page = (
        resources.files(__name__.rpartition(".")[0])
        .joinpath(PAGE)
        .read_bytes()
        .replace(TOKEN_PLACEHOLDER, token.encode())
    )

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 (the base method's name for it)
            pass

        @property
        def port(self) -> int:
            server = self.server
            assert isinstance(server, ThreadingHTTPServer)
            return server.server_port

        def refuse_foreign_host(self) -> bool:
            """Answer 403 (and return True) unless the request is addressed to this server by its own name."""
            if is_own_host(self.headers.get("Host"), self.port):
                return False
            self.send_json({"error": "forbidden: unexpected Host"}, HTTPStatus.FORBIDDEN)
            return True

        def do_GET(self):
            if self.refuse_foreign_host():
                return None
            url = urlsplit(self.path)
            query = {key: values[0] for key, values in parse_qs(url.query).items()}
            if url.path == "/":
                return self.send(HTTPStatus.OK, page, "text/html; charset=utf-8")
            if url.path == "/api/classes":
                return self.send_json({"classes": review.classes(), "reasons": list(REASONS)})
            if url.path == "/api/class" and query.get("wnid"):
                try:
                    return self.send_json(review.class_images(query["wnid"]))
                except LookupError:
                    return self.send_json({"error": "no such class"}, HTTPStatus.NOT_FOUND)
            if url.path == "/thumb" and query.get("path") in review.images:  # only collected paths, never others
                try:
                    return self.send(HTTPStatus.OK, review.thumbnail(query["path"]), "image/jpeg")
                except UnreadableImage:
                    return self.send_json({"error": "unreadable image"}, HTTPStatus.UNPROCESSABLE_ENTITY)
            return self.send_json({"error": "not found"}, HTTPStatus.NOT_FOUND)

        def do_POST(self):
            if self.refuse_foreign_host():
                return None
            refusal = refusal_of_post(self.headers, self.port, token)
            if refusal:
                return self.send_json({"error": f"forbidden: {refusal}"}, HTTPStatus.FORBIDDEN)
            try:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/api/decision":
                    fields = string_fields(raw, "path", "decision", "reason")
                    return self.send_json(review.decide(fields["path"], fields["decision"], fields["reason"]))
                if self.path == "/api/keep-rest":
                    return self.send_json({"kept": review.keep_rest(string_fields(raw, "wnid")["wnid"])})
            except ValueError as error:
                return self.send_json({"error": str(error)}, HTTPStatus.BAD_REQUEST)
            return self.send_json({"error": "not found"}, HTTPStatus.NOT_FOUND)

        def send_json(self, value, status=HTTPStatus.OK):
            self.send(status, json.dumps(value).encode(), "application/json")

        def send(self, status, body: bytes, content_type: str):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

    return Handler
