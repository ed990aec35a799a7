"""One error type for bad input, so the CLI can print it as one clear line instead of a traceback."""


class UnveilError(ValueError):
    """Bad input or configuration. The message names the file (and line) and the problem."""


class DataError(UnveilError):
    """A data source could not be read."""
