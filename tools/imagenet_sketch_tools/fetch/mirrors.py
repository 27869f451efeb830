"""Where the release archive can be fetched from, tried in order: the hub, Google Drive, Kaggle; or the user's own.

Every base URL can be redirected (HF_ENDPOINT for the hub, IMAGENET_SKETCH_GDRIVE_ENDPOINT for Drive), which
is how a mirror of a mirror, or a test's loopback server, stands in for the real service.
"""

from __future__ import annotations

import os
import sys
import urllib.parse
from pathlib import Path

import httpx

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.dataset.release import GDRIVE_FILE_ID, KAGGLE_DATASET, hub_url

from .download import (
    Expected,
    MirrorError,
    default_output,
    describe_non_zip,
    fetch,
    is_zip_start,
    mismatch,
    verified_copy,
)

MIRRORS = ("hf", "gdrive", "kaggle")
GDRIVE_HOSTS = ("drive.google.com", "drive.usercontent.google.com", "docs.google.com")
GDRIVE_ENDPOINT_VARIABLE = "IMAGENET_SKETCH_GDRIVE_ENDPOINT"
EXTRA_HINT = "pip install 'imagenet-sketch[download]'"
# Drive's words on the page it serves instead of a file whose daily download quota is used up.
GDRIVE_QUOTA_WORDS = ("too many users have viewed or downloaded", "quota exceeded", "download quota")


def download(mirror: str | None = None, output: str | os.PathLike | None = None, expected: Expected | None = None):
    """The archive (a verified zip, or Kaggle's extracted folder): from `mirror`, or from the first that works.

    `mirror` is hf, gdrive, kaggle, an http(s) URL, or a local zip/folder (used in place, nothing downloaded).
    """
    expected = expected or Expected.release()
    output = Path(output) if output else default_output()
    if mirror is not None:
        return fetch_from(mirror, output, expected)
    if verified_copy(output, expected):
        return output
    failures = []
    for name in MIRRORS:
        try:
            return fetch_from(name, output, expected)
        except UserError as error:
            failures.append(f"{name}: {error}")
            print(f"mirror {name} failed: {error}", file=sys.stderr)
    raise UserError(
        "no mirror could serve ImageNet-Sketch.zip (" + "; ".join(failures) + "); pass --mirror URL or a local file"
    )


def fetch_from(mirror: str, output: Path, expected: Expected):
    if mirror == "hf":
        return fetch_hub(output, expected)
    if mirror == "gdrive":
        return fetch_gdrive(output, expected)
    if mirror == "kaggle":
        return fetch_kaggle()
    if mirror.startswith(("http://", "https://")):
        return fetch(mirror, output, expected, mirror=urllib.parse.urlsplit(mirror).netloc)
    return local_copy(Path(mirror).expanduser(), expected)


def fetch_hub(output: Path, expected: Expected) -> Path:
    from huggingface_hub import get_token

    token = get_token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    hint = "set HF_TOKEN or run `hf auth login`, or try another --mirror"
    return fetch(hub_url(), output, expected, mirror="hf", headers=headers, denied_hint=hint)


def gdrive_url() -> str:
    endpoint = os.environ.get(GDRIVE_ENDPOINT_VARIABLE, "https://drive.google.com").rstrip("/")
    return f"{endpoint}/uc?export=download&id={GDRIVE_FILE_ID}"


def fetch_gdrive(output: Path, expected: Expected) -> Path:
    """Drive answers a large file with a "can't scan for viruses" page; its form leads to the file itself."""
    if verified_copy(output, expected):
        return output
    with httpx.Client(follow_redirects=True, timeout=httpx.Timeout(60.0, connect=30.0)) as client:
        try:
            url = resolve_gdrive(client, gdrive_url())
        except httpx.TransportError as error:
            raise MirrorError(
                f"could not reach Google Drive ({error}); check the network or try another --mirror"
            ) from error
        return fetch(url, output, expected, mirror="gdrive", client=client)


def resolve_gdrive(client: httpx.Client, url: str) -> str:
    """The URL Drive serves the file's bytes at: `url` itself, or the target of its confirmation page."""
    with client.stream("GET", url) as response:
        chunks = response.iter_bytes()
        head = next(chunks, b"")
        if response.status_code in (200, 206) and is_zip_start(head):
            return str(response.url)
        page = (head + b"".join(chunks)).decode("utf-8", "replace")
    if response.status_code in (403, 429) or any(words in page.lower() for words in GDRIVE_QUOTA_WORDS):
        raise MirrorError(
            f"Google Drive refused the download (HTTP {response.status_code}: its download quota for this file "
            f"is used up, it resets within a day); try --mirror hf or --mirror kaggle"
        )
    if response.status_code != 200:
        raise MirrorError(f"Google Drive answered {url} with HTTP {response.status_code}; try another --mirror")
    try:
        from gdown.download import get_url_from_gdrive_confirmation
        from gdown.exceptions import FileURLRetrievalError
    except ImportError as error:
        raise UserError(f"the Google Drive mirror needs gdown: {EXTRA_HINT}") from error
    try:
        target = get_url_from_gdrive_confirmation(page)
    except FileURLRetrievalError as error:
        raise MirrorError(
            f"Google Drive served {describe_non_zip(head)} without a download link ({' '.join(str(error).split())})"
        ) from error
    return rebase_gdrive(target, url)


def rebase_gdrive(target: str, asked: str) -> str:
    """A Drive link (absolute, to Drive's hosts) moved onto the endpoint that was asked, when it was redirected."""
    parts, asked_parts = urllib.parse.urlsplit(target), urllib.parse.urlsplit(asked)
    if parts.hostname in GDRIVE_HOSTS and asked_parts.hostname not in GDRIVE_HOSTS:
        parts = parts._replace(scheme=asked_parts.scheme, netloc=asked_parts.netloc)
    return urllib.parse.urlunsplit(parts)


def fetch_kaggle() -> Path:
    """Kaggle's copy, through kagglehub into its cache (KAGGLEHUB_CACHE); Kaggle serves it extracted, a folder."""
    try:
        import kagglehub
        from kagglehub.config import get_kaggle_credentials
        from kagglehub.exceptions import KaggleApiHTTPError
    except ImportError as error:
        raise UserError(f"the Kaggle mirror needs kagglehub: {EXTRA_HINT}") from error
    how = (
        "set KAGGLE_USERNAME and KAGGLE_KEY (or KAGGLE_API_TOKEN), or put kaggle.json in ~/.kaggle "
        "(from kaggle.com > Settings > API), or run python -c 'import kagglehub; kagglehub.login()'"
    )
    try:
        credentials = get_kaggle_credentials()
    except ValueError as error:
        raise MirrorError(f"Kaggle credentials are unreadable ({error}); {how}") from error
    if credentials is None:
        raise MirrorError(f"the Kaggle mirror needs Kaggle credentials: {how}")
    try:
        folder = kagglehub.dataset_download(KAGGLE_DATASET)
    except KaggleApiHTTPError as error:
        status = error.response.status_code if error.response is not None else "?"
        if status in (401, 403):
            raise MirrorError(f"Kaggle rejected the credentials (HTTP {status}); {how}") from error
        raise MirrorError(f"Kaggle answered HTTP {status} for {KAGGLE_DATASET}; try another --mirror") from error
    except OSError as error:
        raise MirrorError(f"the Kaggle download failed ({error}); run again or try another --mirror") from error
    print(
        f"using Kaggle's copy, served extracted so not checked against the zip's sha256 (prepared as a copy of "
        f"its own): {folder}",
        file=sys.stderr,
    )
    return Path(folder)


def local_copy(path: Path, expected: Expected) -> Path:
    """A zip or folder the user already has: a zip is verified, a folder is used as it is."""
    if path.is_dir():
        return path
    if not path.exists():
        raise UserError(f"--mirror {path}: no such file or folder; give hf, gdrive, kaggle, a URL or an existing path")
    problem = mismatch(path, expected)
    if problem:
        raise UserError(f"{path} is not the release archive: it {problem}; pass --sha256/--size if it is another")
    return path
