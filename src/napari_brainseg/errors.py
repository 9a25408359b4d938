"""The one exception type users see: its message is a single sentence naming the input and the problem."""


class BrainsegInputError(ValueError):
    """Bad input (file, folder, array or layer) that the plugin cannot use, with a one-line reason."""
