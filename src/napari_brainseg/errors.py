"""The one exception type users see: its message is a single sentence naming the input and the problem."""


class BrainsegInputError(ValueError):
    """Bad input (file, folder, array or layer) that the plugin cannot use, with a one-line reason."""


def first_line(exc: BaseException, limit: int | None = 200) -> str:
    """An exception's message cut to its first line (libraries' messages can span many) and to
    ``limit`` characters (None: no limit); the exception's type name when the message is empty."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if limit is None or len(line) <= limit else line[: limit - 3] + "..."
