"""The pretraining corpus, tokenised in worker processes and packed into fixed-length blocks on disk.

Token ids and word-start flags are appended to two flat files as they are produced and read back through
``np.memmap``: memory stays flat however large the corpus. Documents are concatenated with [SEP] between
them and cut into blocks of ``block_size - 2`` tokens, each wrapped in [CLS] ... [SEP]: no padding, ever.
"""

from __future__ import annotations

import json
import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import torch

from ..data.script import converted_texts
from .vocab import is_cjk

_WORKER: dict[str, Any] = {}


def _init_worker(tokenizer_dir: str, segmenter: str | None) -> None:
    from transformers import AutoTokenizer

    from ..data.segment import get_segmenter

    _WORKER["tok"] = AutoTokenizer.from_pretrained(tokenizer_dir)
    _WORKER["seg"] = get_segmenter(segmenter) if segmenter else None


def word_starts(text: str, offsets: list[tuple[int, int]], segmenter: Any) -> list[int]:
    """1 where a token begins a word. With a segmenter, words are its words; without one, every CJK
    character is a word. Either way a WordPiece continuation (a token glued to the previous one inside a
    run of letters or digits, ``##ing``) continues its word."""
    boundaries: set[int] | None = None
    if segmenter is not None:
        boundaries, position = set(), 0
        for word in segmenter(text):
            found = text.find(word, position)
            if found >= 0:
                boundaries.add(found)
                position = found + len(word)
    flags, previous_end = [], None
    for start, end in offsets:
        glued = start == previous_end and start > 0
        if boundaries is not None:
            flags.append(0 if glued and start not in boundaries else 1)
        else:
            inside_word = glued and _wordchar(text[start]) and _wordchar(text[start - 1])
            flags.append(0 if inside_word else 1)
        previous_end = end
    return flags


def _wordchar(c: str) -> bool:
    return c.isalnum() and not is_cjk(c)


def _encode(lines: list[str]) -> tuple[list[int], list[int]]:
    tok, seg = _WORKER["tok"], _WORKER["seg"]
    lines = converted_texts(lines, tok)  # in place, character for character: word starts still line up
    # verbose=False: transformers warns that a line longer than the model's maximum "will result in indexing
    # errors"; packing cuts the stream into blocks of block_size, so no such sequence ever reaches the model.
    enc = tok(lines, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    ids: list[int] = []
    starts: list[int] = []
    for text, doc_ids, offsets in zip(lines, enc["input_ids"], enc["offset_mapping"]):
        if not doc_ids:
            continue
        ids.extend(doc_ids)
        starts.extend(word_starts(text, offsets, seg))
        ids.append(tok.sep_token_id)
        starts.append(1)
    return ids, starts


def _chunks(texts: Iterable[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for text in texts:
        chunk.append(text)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def pack(texts: Iterable[str], tokenizer_dir: str, out_prefix: Path, segmenter: str | None, workers: int = 2,
         chunk_lines: int = 512) -> dict:
    """Tokenise ``texts`` into ``<prefix>.ids`` / ``<prefix>.starts``; returns and stores the metadata."""
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    from transformers import AutoTokenizer

    vocab_size = len(AutoTokenizer.from_pretrained(tokenizer_dir))
    dtype = np.uint16 if vocab_size < 2**16 else np.uint32
    total = 0
    with open(f"{out_prefix}.ids", "wb") as fid, open(f"{out_prefix}.starts", "wb") as fst:
        def write(result: tuple[list[int], list[int]]) -> None:
            nonlocal total
            np.asarray(result[0], dtype=dtype).tofile(fid)
            np.asarray(result[1], dtype=np.uint8).tofile(fst)
            total += len(result[0])

        if workers > 1:
            ctx = mp.get_context("spawn")  # fork after torch/tokenizers threads start can deadlock
            with ctx.Pool(workers, initializer=_init_worker, initargs=(tokenizer_dir, segmenter)) as pool:
                for result in pool.imap(_encode, _chunks(texts, chunk_lines), chunksize=1):
                    write(result)
        else:
            _init_worker(tokenizer_dir, segmenter)
            for chunk in _chunks(texts, chunk_lines):
                write(_encode(chunk))
    meta = {"tokens": total, "dtype": np.dtype(dtype).name}
    Path(f"{out_prefix}.json").write_text(json.dumps(meta), encoding="utf-8")
    return meta


@dataclass
class PackedBlocks(torch.utils.data.Dataset):
    """Fixed-length blocks over the memory-mapped token stream."""

    prefix: Path
    block_size: int
    cls_id: int
    sep_id: int

    def __post_init__(self) -> None:
        meta = json.loads(Path(f"{self.prefix}.json").read_text(encoding="utf-8"))
        self.ids = np.memmap(f"{self.prefix}.ids", dtype=meta["dtype"], mode="r") if meta["tokens"] else np.zeros(0, int)
        self.starts = np.memmap(f"{self.prefix}.starts", dtype=np.uint8, mode="r") if meta["tokens"] else np.zeros(0, int)
        self.body = self.block_size - 2

    def __len__(self) -> int:
        return len(self.ids) // self.body

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        lo, hi = i * self.body, (i + 1) * self.body
        ids = np.concatenate([[self.cls_id], self.ids[lo:hi], [self.sep_id]]).astype(np.int64)
        starts = np.concatenate([[1], self.starts[lo:hi], [1]]).astype(np.int64)
        return {"input_ids": torch.from_numpy(ids), "word_starts": torch.from_numpy(starts)}
