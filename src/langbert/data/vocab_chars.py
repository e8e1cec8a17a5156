"""Character classes shared by readers and vocabularies."""

from __future__ import annotations

import re

CJK_CLASS = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
CJK_RUN = re.compile(f"[{CJK_CLASS}]+")
_CJK_CHAR = re.compile(f"[{CJK_CLASS}\u3000-\u303f\uff00-\uffef]")


def is_cjk(token: str) -> bool:
    return bool(token) and CJK_RUN.fullmatch(token) is not None


def joiner(left: str, right: str) -> str:
    """What goes between two tokens when a sentence is rebuilt: nothing next to CJK (and full-width
    punctuation), a space between words of other scripts."""
    return "" if _CJK_CHAR.match(left) or _CJK_CHAR.match(right) else " "
