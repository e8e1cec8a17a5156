"""Checkpoints that count only once complete, so a run killed at any instant resumes cleanly.

HF ``Trainer`` writes a checkpoint file by file into ``checkpoint-N``; a SIGKILL in the middle leaves a
folder that ``get_last_checkpoint`` would happily pick. We write a ``COMPLETE`` marker (fsync'd temp file
then ``os.replace``, which is atomic) after everything else, rotate old checkpoints only after that, and
resume from the newest marked checkpoint.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from ..artifacts import atomic_write_text

logger = logging.getLogger(__name__)

MARKER = "COMPLETE"
_STEP = re.compile(r"^checkpoint-(\d+)$")


def mark_complete(checkpoint: str | Path) -> None:
    atomic_write_text(Path(checkpoint) / MARKER, "ok\n")


def checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """All ``checkpoint-N`` folders, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := _STEP.match(p.name))]
    return sorted(found)


def last_complete(folder: str | Path) -> Path | None:
    """The newest complete checkpoint; incomplete ones newer than it are removed (they hold nothing usable)."""
    found = checkpoints(folder)
    for step, path in reversed(found):
        if (path / MARKER).is_file():
            return path
        logger.warning("removing incomplete checkpoint %s (the run was interrupted while writing it)", path)
        shutil.rmtree(path, ignore_errors=True)
    return None


def rotate(folder: str | Path, keep: int, protect: str | None) -> None:
    """Keep the ``keep`` newest complete checkpoints plus ``protect`` (the best one)."""
    complete = [p for _, p in checkpoints(folder) if (p / MARKER).is_file()]
    protected = {Path(protect).resolve()} if protect else set()
    surplus = [p for p in complete[:-keep] if p.resolve() not in protected] if len(complete) > keep else []
    for path in surplus:
        shutil.rmtree(path, ignore_errors=True)
