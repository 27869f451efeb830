"""One class's rows as an Arrow table, as the builder's split generation writes them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from imagenet_sketch_tools.dataset.archive import FolderArchive, ZipArchive
from imagenet_sketch_tools.dataset.members import Member

# How datasets stores an Image feature: the file's bytes and its path.
IMAGE_STORAGE = pa.struct({"bytes": pa.binary(), "path": pa.string()})
# `binary` offsets are 32-bit: one class's images must fit in 2 GiB (the release's largest class holds ~10 MB).
MAX_CLASS_BYTES = (1 << 31) - 1


def class_table(reader: ZipArchive | FolderArchive, members: list[Member]) -> pa.Table:
    """The rows of one class's `members`, in order: `image` {bytes, path}, `label`, `wnid`.

    The images are inflated into one buffer that becomes the Arrow column as it is: no copy per image.
    """
    content, offsets = reader.read_contiguous(members, most=MAX_CLASS_BYTES)
    images = pa.Array.from_buffers(
        pa.binary(), len(members), [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(content)]
    )
    paths = pa.array([member.path for member in members], pa.string())
    return pa.table(
        {
            "image": pa.StructArray.from_arrays([images, paths], fields=list(IMAGE_STORAGE)),
            "label": pa.array([member.label for member in members], pa.int64()),
            "wnid": pa.array([member.wnid for member in members], pa.string()),
        }
    )
