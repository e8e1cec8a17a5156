"""Data: readers, built-in corpora, deterministic splits."""

from .builtin import BuiltinData, builtin_names, get_builtin, register_builtin
from .loading import Splits, columns_of, load_splits
from .readers import Columns, read_rows
from .rows import Row, fingerprint
from .split import split_of

__all__ = [
    "BuiltinData",
    "Columns",
    "Row",
    "Splits",
    "builtin_names",
    "columns_of",
    "fingerprint",
    "get_builtin",
    "load_splits",
    "read_rows",
    "register_builtin",
    "split_of",
]
