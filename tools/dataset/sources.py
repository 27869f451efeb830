"""What a builder `source` is: the user's archive, or the release (read from its mirrors), and its cache key."""

from __future__ import annotations

import hashlib
import os

from imagenet_sketch_tools.dataset.archive import is_remote
from imagenet_sketch_tools.dataset.release import HUB_ZIP_URL

# No source means the release; `fetch.locate` turns this into the hub URL or a verified local download.
DEFAULT_SOURCE = HUB_ZIP_URL


def fingerprint(source: str) -> str:
    """The cache hash of a source: a rebuilt or replaced local archive gets a fresh prepared copy."""
    if is_remote(source) or not os.path.exists(source):
        identity = source
    else:
        status = os.stat(source)
        identity = f"{os.path.abspath(source)}:{status.st_size}:{status.st_mtime_ns}"
    return hashlib.sha256(identity.encode()).hexdigest()[:16]
