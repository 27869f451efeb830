"""Where the builder reads a source from: the user's own location as given, or the release from its mirrors."""

from __future__ import annotations

from imagenet_sketch_tools.dataset.release import hub_url
from imagenet_sketch_tools.dataset.sources import DEFAULT_SOURCE
from imagenet_sketch_tools.fetch.mirrors import download


def resolve(source: str, streaming: bool = True) -> str:
    """The location the archive is read from (a path or URL) for a builder `source`.

    The default source is read remotely from the hub when streaming (nothing downloaded first); a build
    downloads it through the mirror chain, verified, and reads the local copy.
    """
    if source != DEFAULT_SOURCE:
        return source
    if streaming:
        return hub_url()
    return str(download())
