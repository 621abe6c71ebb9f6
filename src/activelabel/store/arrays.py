"""Per-project array store: features, embeddings and scores as .npy files beside the database.

Layout: ``root/project_<id>/<name>.npy``. Writes are atomic (temporary file in the same
directory, fsync, ``os.replace``), so a reader sees the old array or the new one, never half.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .files import atomic_write

__all__ = ["ArrayStore"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class ArrayStore:
    """Arrays of each project under ``root``; ``load`` memory-maps by default."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def project_dir(self, project_id: int) -> Path:
        return self.root / f"project_{int(project_id)}"

    def path(self, project_id: int, name: str) -> Path:
        if not _NAME.match(name) or name.endswith(".npy"):
            raise ValueError(f"invalid array name {name!r}: use letters, digits and _.- "
                             "(no extension), e.g. 'embeddings' or 'scores_round_3'")
        return self.project_dir(project_id) / f"{name}.npy"

    def save(self, project_id: int, name: str, array: np.ndarray[Any, Any]) -> Path:
        """Write ``array`` (any shape, numeric dtype) atomically; returns its path."""
        array = np.asarray(array)
        if array.dtype == object:
            raise ValueError(f"array {name!r} has dtype object: store numeric arrays only")
        return atomic_write(self.path(project_id, name),
                            lambda handle: np.save(handle, array, allow_pickle=False))

    def load(self, project_id: int, name: str, *, mmap: bool = True) -> np.ndarray[Any, Any] | None:
        """The stored array (read-only memory map when ``mmap``), or None when missing."""
        target = self.path(project_id, name)
        if not target.exists():
            return None
        return np.load(target, mmap_mode="r" if mmap else None, allow_pickle=False)

    def exists(self, project_id: int, name: str) -> bool:
        return self.path(project_id, name).exists()

    def names(self, project_id: int) -> list[str]:
        folder = self.project_dir(project_id)
        return sorted(p.stem for p in folder.glob("*.npy")) if folder.exists() else []

    def delete(self, project_id: int, name: str) -> bool:
        target = self.path(project_id, name)
        existed = target.exists()
        target.unlink(missing_ok=True)
        return existed

    def delete_project(self, project_id: int) -> None:
        shutil.rmtree(self.project_dir(project_id), ignore_errors=True)
