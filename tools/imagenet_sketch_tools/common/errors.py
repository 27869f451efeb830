"""The one exception type whose message is shown to users as is, and how to find it inside wrapped errors."""

from __future__ import annotations

import sys
from collections.abc import Iterator


class UserError(Exception):
    """Bad input or an unmet precondition; the message is one line saying what is wrong and what to do."""


def causes(error: BaseException | None) -> Iterator[BaseException]:
    """`error`, then what caused it, and so on: datasets, process pools and huggingface_hub wrap what happened."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def cause_of(error: BaseException | None, kind: type[BaseException]) -> BaseException | None:
    """The first `kind` in `error`'s chain of causes."""
    return next((cause for cause in causes(error) if isinstance(cause, kind)), None)


def user_message(error: BaseException) -> str | None:
    """The UserError behind `error`, as one line, or None."""
    cause = cause_of(error, UserError)
    return " ".join(str(cause).split()) if cause else None


def ignore_unraisable() -> None:
    """For a worker process being stopped: what its finalisers raise on the way out (a generator closed mid-way,
    a SystemExit landing in `__del__`) is not news to the user, though Python would print each as "Exception
    ignored ..." and break the command's one-line message."""
    sys.unraisablehook = _drop


def _drop(unraisable: object) -> None:
    pass
