"""The one exception type whose message is shown to users as is."""


class UserError(Exception):
    """Bad input or an unmet precondition; the message is one line saying what is wrong and what to do."""


def user_message(error: BaseException) -> str | None:
    """The UserError behind `error` (datasets wraps generation errors), as one line, or None."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, UserError):
            return " ".join(str(error).split())
        error = error.__cause__ or error.__context__
    return None
