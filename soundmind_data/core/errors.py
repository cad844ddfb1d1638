"""Errors the library raises; the CLI turns them into one-line messages and exit codes."""


class UsageError(Exception):
    """The command was called wrongly (missing file, bad option): exit code 2."""


class DataError(Exception):
    """Input data is wrong in a way that stops the whole stage: exit code 1.

    Per-line problems are not raised; stages record them as rejects and go on.
    """
