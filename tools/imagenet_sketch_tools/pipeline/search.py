"""Where collect's candidate images come from: pluggable backends, each giving up to N candidates for a query.

- `bing`, `google`: a real image search with the black-and-white colour filter, through icrawler (the `pipeline`
  extra). icrawler's feeder builds the result-page URLs and its parser reads them; its downloader is replaced by one
  that only records the image URLs, because collect downloads them itself (rate limit, retries, size cap, manifest).
- `urls`: a text file of `wnid<TAB>url` lines (blank lines and `#` comments ignored), in the order to try them.
- `folder`: local files `<folder>/<wnid>/*`, in name order.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.dataset.classes import label_of_wnid

if TYPE_CHECKING:  # requests comes with icrawler, in the pipeline extra
    import requests

SEARCH_ENGINES = ("bing", "google")
BACKENDS = (*SEARCH_ENGINES, "urls", "folder")


@dataclass(frozen=True)
class Candidate:
    source: str  # an http(s) URL, or a local file path
    backend: str

    @property
    def is_local(self) -> bool:
        return self.backend == "folder"


def search(
    backend: str,
    wnid: str,
    query: str,
    limit: int,
    *,
    urls_file: str | os.PathLike | None = None,
    folder: str | os.PathLike | None = None,
) -> list[Candidate]:
    """Up to `limit` distinct candidates for one class from one backend."""
    if backend == "urls":
        sources = read_url_list(urls_file).get(wnid, [])
    elif backend == "folder":
        sources = folder_files(folder, wnid)
    elif backend in SEARCH_ENGINES:
        sources = search_engine_urls(backend, query, limit)
    else:
        raise UserError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    return [Candidate(source, backend) for source in dict.fromkeys(sources)][:limit]


def read_url_list(path: str | os.PathLike | None) -> dict[str, list[str]]:
    """The `wnid<TAB>url` file as {wnid: [url, ...]}, checked line by line; parsed once per version of the file."""
    if path is None:
        raise UserError("the urls backend needs --urls FILE (lines of wnid<TAB>url)")
    try:
        stat = os.stat(path)
    except OSError as error:
        raise UserError(f"cannot read the URL list {path}: {error.strerror}") from error
    return parse_url_list(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def parse_url_list(path: str, size: int, mtime_ns: int) -> dict[str, list[str]]:
    urls: dict[str, list[str]] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise UserError(f"the URL list {path} is not UTF-8 text; give lines of wnid<TAB>url") from error
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        wnid, _, url = line.strip().partition("\t")
        if wnid not in label_of_wnid() or not url.startswith(("http://", "https://")):
            raise UserError(f"{path} line {number}: expected 'wnid<TAB>http(s) URL' with an ImageNet-1k wnid")
        urls.setdefault(wnid, []).append(url.strip())
    return urls


def folder_files(folder: str | os.PathLike | None, wnid: str) -> list[str]:
    if folder is None:
        raise UserError("the folder backend needs --folder DIR (images in DIR/<wnid>/)")
    if not Path(folder).is_dir():
        raise UserError(f"--folder {folder} is not a folder; give a folder holding <wnid>/ subfolders of images")
    class_folder = Path(folder) / wnid
    if not class_folder.is_dir():
        return []
    files = sorted(class_folder.iterdir())
    return [str(path.resolve()) for path in files if path.is_file() and not path.name.startswith(".")]


def search_engine_urls(engine: str, query: str, limit: int) -> list[str]:
    """Image URLs from the engine's result pages for `query`, black-and-white only."""
    try:
        from icrawler.builtin import BingImageCrawler, GoogleImageCrawler
        from icrawler.downloader import Downloader
    except ImportError as error:
        raise UserError(f"the {engine} backend needs icrawler: pip install 'imagenet-sketch[pipeline]'") from error

    found: list[str] = []

    class UrlRecorder(Downloader):
        """Keeps the image URLs the parser found instead of downloading them."""

        # icrawler's worker reads download's result as success; its own download is unannotated and returns None
        def download(self, task, default_ext, timeout=5, max_retry=3, overwrite=False, **kwargs):  # pyright: ignore[reportIncompatibleMethodOverride]
            with self.lock:
                if len(found) >= self.max_num:
                    self.signal.set(reach_max_num=True)
                    return False
                found.append(task["file_url"])
                self.fetched_num += 1
                if len(found) >= self.max_num:
                    self.signal.set(reach_max_num=True)
            return True

    crawler_class = {"bing": BingImageCrawler, "google": GoogleImageCrawler}[engine]
    crawler = crawler_class(downloader_cls=UrlRecorder, log_level=logging.CRITICAL, storage={"root_dir": os.devnull})
    page_errors = record_errors(crawler.session)
    crawler.crawl(keyword=query, filters={"color": "blackandwhite"}, max_num=limit)
    if not found and page_errors:
        url, error = page_errors[0]
        reason = " ".join(f"{type(error).__name__}: {error}".split())[:120]
        raise UserError(f"{engine} image search failed for {url} ({reason}...); check the connection, or use --urls")
    return found


def record_errors(session: requests.Session) -> list[tuple[str, Exception]]:
    """Make `session.get` remember the requests that raised (icrawler only logs them), and return that record."""
    errors: list[tuple[str, Exception]] = []
    get = session.get

    def recording_get(url, params=None, **kwargs):
        try:
            return get(url, params, **kwargs)
        except Exception as error:
            errors.append((url, error))
            raise

    session.get = recording_get
    return errors
