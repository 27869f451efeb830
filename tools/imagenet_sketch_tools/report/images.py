"""The images behind the numbers: read from the dataset source by path (only the members shown are read, as
`peek` reads a class), and made into small WebP thumbnails inlined as data URIs."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

from imagenet_sketch_tools.common.images import decode
from imagenet_sketch_tools.dataset import archive, cache

THUMB = 112  # the longest side of a thumbnail, in pixels
QUALITY = 70  # WebP quality: line drawings stay legible at ~2-5 KB each

# {row: path} -> {path: stored bytes}: predictions.parquet's `row` (the row of the source evaluated, for a reader
# that goes by row, as eval's own does) and `path` (`<wnid>/<file>`, the same in every copy of the dataset)
ImageFetcher = Callable[[dict[int, str]], dict[str, bytes]]


def from_archive(location: str) -> ImageFetcher:
    """Images read by path from an archive (zip, folder or URL): only the members asked for are read."""

    def fetch(wanted: dict[int, str]) -> dict[str, bytes]:
        reader = archive.open_archive(location)
        try:
            paths = set(wanted.values())
            members = [member for member in reader.members() if member.path in paths]
            return {member.path: content for member, content in reader.read(members)}
        finally:
            reader.close()

    return fetch


def from_prepared(cache_dir: str | None) -> ImageFetcher | None:
    """Images of the prepared copy of the release in the cache (the one `load()` picks); None if there is none."""
    if not cache.prepared_hash(cache_dir):
        return None

    def fetch(wanted: dict[int, str]) -> dict[str, bytes]:
        import imagenet_sketch  # the builder: imported only when a prepared copy is read

        return read_paths(imagenet_sketch.load(cache_dir=cache_dir), set(wanted.values()))

    return fetch


def read_paths(dataset, paths: set[str]) -> dict[str, bytes]:
    """{path: bytes} of the rows of a prepared dataset whose image path is in `paths`."""
    listed = [path for chunk in dataset.data.column("image").chunks for path in chunk.field("path").to_pylist()]
    index_of = {path: index for index, path in enumerate(listed)}  # only the path field is read, not the bytes
    found = sorted((path for path in paths if path in index_of), key=index_of.__getitem__)
    images = dataset.with_format("arrow")[[index_of[path] for path in found]].column("image").combine_chunks()
    return dict(zip(found, images.field("bytes").to_pylist()))


def thumbnail_uri(content: bytes | None) -> str | None:
    """A WebP data URI of the image fitted into THUMB x THUMB; None when the bytes do not decode."""
    image, _ = decode(content, draft=("RGB", (THUMB, THUMB)))
    if image is None:
        return None
    image = image.convert("RGB")
    image.thumbnail((THUMB, THUMB))
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", quality=QUALITY, method=6)
    return "data:image/webp;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def thumbnails(fetch: ImageFetcher | None, wanted: dict[int, str]) -> dict[str, str]:
    """{path: data URI} for the images that could be read and decoded."""
    if fetch is None or not wanted:
        return {}
    uris = {path: thumbnail_uri(content) for path, content in fetch(wanted).items()}
    return {path: uri for path, uri in uris.items() if uri is not None}
