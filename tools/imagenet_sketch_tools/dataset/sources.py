"""What a builder `source` is: the user's archive, or the release (read from its mirrors), and its cache key."""

from __future__ import annotations

import hashlib
import json
import os

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.dataset.archive import is_remote
from imagenet_sketch_tools.dataset.release import HUB_ZIP_URL
from imagenet_sketch_tools.dataset.sample import sample_archive

# No source means the release; `fetch.locate` turns this into the hub URL or a verified local download.
DEFAULT_SOURCE = HUB_ZIP_URL
# The builder config that reads the embedded sample: a copy of its own, never standing in for the release.
SAMPLE_CONFIG = "sample"
# What a server says about a file that changes when the file is replaced (fsspec's names for them).
REMOTE_IDENTITY_FIELDS = ("size", "ETag", "Last-Modified", "Content-MD5", "Digest", "blob_id", "lfs")


def source_of_config(config: str, source: str | None) -> str:
    """What a config reads: `sample` the embedded sample archive, any other the source given, else the release."""
    if config == SAMPLE_CONFIG:
        if source is not None:
            raise UserError(f"the {SAMPLE_CONFIG} config reads the embedded sample archive; give no source with it")
        return sample_archive()
    return DEFAULT_SOURCE if source is None else str(source)


def fingerprint(source: str, config: str = "default") -> str:
    """The cache hash of a source: a rebuilt, edited or replaced archive gets a fresh prepared copy.

    Another config of the same source gets another hash: datasets refuses a cache lookup that finds two configs
    under one hash.
    """
    identity = source_identity(source)
    if config != "default":
        identity = f"{config}:{identity}"
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def source_identity(source: str) -> str:
    if source == DEFAULT_SOURCE:
        return source  # the release is only located when built (the builder then keys it by its local copy)
    if is_remote(source):
        return remote_identity(source)
    if os.path.isdir(source):
        return folder_identity(source)
    if os.path.exists(source):
        status = os.stat(source)
        return f"{os.path.abspath(source)}:{status.st_size}:{status.st_mtime_ns}"
    return source


def folder_identity(folder: str) -> str:
    """The folder and every file under it (relative path, size, mtime): editing a class folder changes it."""
    listing = []
    for parent, directories, files in os.walk(folder):
        directories.sort()
        for name in sorted(files):
            path = os.path.join(parent, name)
            try:
                status = os.stat(path)
            except OSError:
                continue  # a dangling link: the build skips what it cannot read as well
            listing.append(f"{os.path.relpath(path, folder)}\0{status.st_size}\0{status.st_mtime_ns}")
    digest = hashlib.sha256("\n".join(listing).encode()).hexdigest()
    return f"{os.path.abspath(folder)}:{digest}"


def remote_identity(url: str) -> str:
    """The URL with what its server says about the file (ETag, Last-Modified, size), when it says anything.

    A server that cannot be asked (or says nothing) leaves the URL alone as the identity.
    """
    import fsspec

    try:
        filesystem, path = fsspec.core.url_to_fs(url)
        filesystem.invalidate_cache(path)  # a cached listing would hide a replaced file
        info = filesystem.info(path)
    except Exception:  # noqa: BLE001 - any failure to describe the file only costs the finer identity
        return url
    described = {field: info[field] for field in REMOTE_IDENTITY_FIELDS if info.get(field) is not None}
    return f"{url}:{json.dumps(described, sort_keys=True, default=str)}"
