"""Errors a user can act on: the CLI prints them without a traceback and exits non-zero."""

from __future__ import annotations


class LangbertError(Exception):
    """Something the user can fix (bad input, bad config, missing file)."""


class ConfigError(LangbertError):
    """A recipe or a flag is invalid."""


class DataError(LangbertError):
    """Bad input data, located by file, line and field so it can be fixed at the source."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None, field: str | None = None):
        self.path, self.line, self.field, self.reason = path, line, field, message
        where = ""
        if path is not None:
            where = f"{path}:{line}" if line is not None else f"{path}"
        if field is not None:
            where = f"{where}: field '{field}'" if where else f"field '{field}'"
        super().__init__(f"{where}: {message}" if where else message)
