"""The one rule deciding whether saved work still holds: "same source, same model" for every kind of each.

A run's finished folder and its saved batches are reused only when the identity they were made under is the one
asked for now. Identities come from content where that is cheap, and from what changes with the content
otherwise: a file's path, size and modification time (a checkpoint, a package's shard); a remote shard's content
hash or ETag; a prepared dataset's fingerprint (datasets derives it from the source it was built from); a model in
memory by the digest of its weights.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

from fsspec import AbstractFileSystem

from imagenet_sketch_tools.evaluation.models import weights_digest
from imagenet_sketch_tools.evaluation.spec import Loaded, Spec

DIGEST_CHARS = 16
# what fsspec backends report that changes with a file's content: the hub's LFS hash or git blob id, S3's and
# GCS's ETag, a local or SFTP file's modification time
CHANGES_WITH_CONTENT = ("lfs", "blob_id", "ETag", "etag", "md5Hash", "mtime", "LastModified", "last_modified")


def identity(thing: Any, filesystem: AbstractFileSystem | None = None) -> str:
    """The identity of `thing`: a file path (on `filesystem`, else local), a sequence of them (a package's
    shards, in order), a `datasets.Dataset`, a model spec (its library's weights are named by it), a loaded
    model or a torch module (their weights). Equal identities mean the same content."""
    if isinstance(thing, Spec):
        return f"spec:{thing.text}"
    if isinstance(thing, Loaded):
        return f"loaded:{thing.name}:{identity(thing.module)}"
    if isinstance(thing, (str, os.PathLike)):
        path = os.fspath(thing)
        if filesystem is None:
            status = os.stat(path)
            return f"file:{os.path.abspath(path)}:{status.st_size}:{status.st_mtime_ns}"
        info = filesystem.info(path)
        changes = next((info[key] for key in CHANGES_WITH_CONTENT if info.get(key)), None)
        protocol = filesystem.protocol if isinstance(filesystem.protocol, str) else filesystem.protocol[0]
        return f"{protocol}:{path}:{info.get('size')}:{changes}"
    if isinstance(thing, Sequence):
        return "files:" + digest("\n".join(identity(path, filesystem) for path in thing))
    if hasattr(thing, "_fingerprint"):  # a datasets.Dataset: its fingerprint follows the source and each transform
        return f"dataset:{thing._fingerprint}"
    if hasattr(thing, "state_dict"):
        return f"module:{type(thing).__name__}:{weights_digest(thing)}"
    raise TypeError(f"no identity rule for a {type(thing).__name__}")


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_CHARS]
