"""Files written whole or not at all: what the array store, cached features, snapshots and
attached simulations use, so that a reader (or a restart after a crash) sees the old file or
the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write"]


def atomic_write(target: Path, write: Callable[[BinaryIO], object], *, mode: int | None = None,
                 overwrite: bool = True) -> Path:
    """``write(handle)`` into a temporary file beside ``target`` (its folder made when
    missing), fsync it, then move it to ``target``; on any error the temporary file goes and
    ``target`` is as it was.

    ``mode`` sets the file's permissions before anything is written (0o600: only its owner
    reads it). Without ``overwrite`` an existing ``target`` is never replaced: FileExistsError,
    also when it appears while the file is written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)  # fails when the target exists: never overwrite
            os.unlink(tmp)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
