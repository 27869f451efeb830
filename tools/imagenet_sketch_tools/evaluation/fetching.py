"""Fetching a library's pretrained weights from the Hugging Face hub without a minute of retries.

huggingface_hub retries a refused or timed-out connection five times per file with a backoff (1+2+4+8+8 s) and
logs each retry; timm tries two files, so an unreachable hub cost ~57 s and 20 `Retrying in Ns` lines before a
message. The hub is checked once instead: unreachable, the weights are looked for in the local cache only (with
huggingface_hub's offline mode, which makes no request), and missing there they are a one-line error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import httpx
from huggingface_hub import constants

from imagenet_sketch_tools.evaluation.spec import Spec, unreachable

T = TypeVar("T")
REACH_SECONDS = 5.0  # one request to the hub's front page: a black-holed network fails within this


def hub_endpoint() -> str:
    return constants.ENDPOINT


def hub_unreachable() -> str | None:
    """Why the hub at HF_ENDPOINT cannot be reached (one request, no retry), or None when it answers."""
    try:
        httpx.head(hub_endpoint(), timeout=REACH_SECONDS)
    except httpx.HTTPError as error:
        return f"the hub at {hub_endpoint()} cannot be reached ({type(error).__name__}: {error})"
    return None


@contextmanager
def offline_hub() -> Iterator[None]:
    """huggingface_hub's offline mode (HF_HUB_OFFLINE) for the calls inside: cached files only, no request."""
    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


def fetched(spec: Spec, make: Callable[[], T]) -> T:
    """`make()`, which fetches `spec`'s pretrained weights (or config) from the hub; with the hub unreachable,
    from the local cache only; a one-line UserError saying what to do when neither has them."""
    if constants.HF_HUB_OFFLINE or spec.family == "torchvision":
        reason = None  # the user's own offline mode, or weights not on the hub (torchvision's): nothing to check
    else:
        reason = hub_unreachable()
    if reason is None:
        try:
            return make()
        except Exception as error:
            raise unreachable(spec, error) from error
    try:
        with offline_hub():
            return make()
    except Exception as error:
        raise unreachable(spec, f"{reason}, and they are not in the local cache") from error
