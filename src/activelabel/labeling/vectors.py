"""A project's own embeddings: one vector per item, kept in the array store by item row.

Layout beside the other arrays of the project: ``vectors.f32`` (float32, row-major, item
row ``r`` at offset ``r * dim``), ``vectors.mask`` (one byte per row: 1 when the row has a
vector) and ``vectors.json`` (the dimension). Rows are written in place, so an import adds
the vectors of its new items without rewriting the others; an import writes a batch's
vectors before it commits the batch's items, and a batch that fails leaves rows no item
holds (the next batch's items take them and write their own vectors or clear the mask).

The ``vectors`` featurizer reads them (:func:`load_vectors`): strategies and models then
work on the team's embeddings.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store import InvalidInput, Storage, count_items, item_ids_by_external_id
from ..store.files import atomic_write
from ..store.models import Item

__all__ = [
    "VECTOR_FILES",
    "ProjectVectors",
    "import_vector_file",
    "load_vectors",
    "purge_vectors",
    "vector_dim",
    "write_vectors",
]

VECTOR_FILES = ("vectors.f32", "vectors.mask", "vectors.json")


@dataclass(frozen=True)
class ProjectVectors:
    """``vectors`` (n, dim) float32 (a read-only memory map) and ``present`` (n,) bool."""

    vectors: NDArray[np.float32]
    present: NDArray[np.bool_]

    @property
    def missing(self) -> int:
        return int((~self.present).sum())


def _paths(storage: Storage, project_id: int) -> tuple[Path, Path, Path]:
    folder = storage.arrays.project_dir(project_id)
    return folder / "vectors.f32", folder / "vectors.mask", folder / "vectors.json"


def vector_dim(storage: Storage, project_id: int) -> int | None:
    """The dimension of the project's vectors, or None before the first one is stored."""
    try:
        return int(json.loads(_paths(storage, project_id)[2].read_text())["dim"])
    except (OSError, ValueError, KeyError):
        return None


def _set_dim(storage: Storage, project_id: int, dim: int) -> None:
    known = vector_dim(storage, project_id)
    if known is not None and known != dim:
        raise InvalidInput(f"vectors have {dim} values, the project's vectors have {known}")
    if known is None:
        meta = _paths(storage, project_id)[2]
        meta.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(meta, lambda h: h.write(json.dumps({"dim": dim}).encode()))


def write_vectors(storage: Storage, project_id: int, rows: Sequence[int],
                  vectors: NDArray[np.float32] | None, present: Sequence[bool]) -> None:
    """Write ``vectors[i]`` at item row ``rows[i]`` where ``present[i]``, and mark the other
    rows as having none; ``vectors`` is (len(rows), dim) float32 (None: no row has one).
    Files are flushed to disk before returning (the caller then commits the items)."""
    if not len(rows):
        return
    if vectors is None and vector_dim(storage, project_id) is None:
        return  # the project has no vectors: nothing to mark either
    data, mask_path, _ = _paths(storage, project_id)
    if vectors is not None:
        _set_dim(storage, project_id, int(vectors.shape[1]))
    dim = vector_dim(storage, project_id)
    assert dim is not None
    data.parent.mkdir(parents=True, exist_ok=True)
    rows_arr = np.asarray(rows, dtype=np.int64)
    flags = np.asarray(present, dtype=bool)
    with _open(data) as out:
        if vectors is not None:
            _write_runs(out, rows_arr[flags], np.asarray(vectors, np.float32)[flags], dim * 4)
        out.flush()
        os.fsync(out.fileno())
    with _open(mask_path) as out:
        _write_runs(out, rows_arr, flags.astype(np.uint8).reshape(-1, 1), 1)
        out.flush()
        os.fsync(out.fileno())


def _open(path: Path) -> Any:
    return path.open("r+b" if path.exists() else "w+b")


def _write_runs(handle: Any, rows: NDArray[np.int64], values: NDArray[Any], width: int) -> None:
    """Write ``values[i]`` (``width`` bytes) at ``rows[i] * width``, one write per run of
    consecutive rows (an import's rows are consecutive)."""
    if not len(rows):
        return
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    for start, end in zip(np.r_[0, breaks], np.r_[breaks, len(rows)], strict=True):
        handle.seek(int(rows[start]) * width)
        handle.write(np.ascontiguousarray(values[start:end]).tobytes())


def load_vectors(storage: Storage, project_id: int, n_items: int) -> ProjectVectors | None:
    """The vectors of item rows ``0..n_items-1`` (rows past the file's end have none), or
    None when the project has no vectors."""
    dim = vector_dim(storage, project_id)
    if dim is None:
        return None
    data, mask_path, _ = _paths(storage, project_id)
    present = np.zeros(n_items, dtype=bool)
    if mask_path.exists():
        mask = np.fromfile(mask_path, dtype=np.uint8, count=min(n_items,
                                                                mask_path.stat().st_size))
        present[:len(mask)] = mask.astype(bool)
    stored_rows = data.stat().st_size // (dim * 4) if data.exists() else 0
    present[stored_rows:] = False
    vectors: NDArray[np.float32]
    if stored_rows >= n_items and n_items:
        vectors = np.memmap(data, dtype=np.float32, mode="r", shape=(n_items, dim))
    else:
        vectors = np.zeros((n_items, dim), dtype=np.float32)
        if stored_rows:
            head = np.memmap(data, dtype=np.float32, mode="r", shape=(stored_rows, dim))
            vectors[:stored_rows] = head[:n_items]
    return ProjectVectors(np.asarray(vectors), present)


def purge_vectors(storage: Storage, project_id: int, rows: Sequence[int]) -> None:
    """Overwrite the vectors of purged items with zeros (as a purged text reads empty): an
    embedding could give the removed content back."""
    dim = vector_dim(storage, project_id)
    if dim is None or not len(rows):
        return
    order = np.sort(np.asarray(rows, dtype=np.int64))
    write_vectors(storage, project_id, order.tolist(),
                  np.zeros((len(order), dim), dtype=np.float32), [True] * len(order))


# ---- a file of vectors aligned by external id ------------------------------------------------


def _read_vector_file(path: Path, ids_path: Path | None) -> tuple[list[str], NDArray[np.float32]]:
    """(external ids, (n, dim) vectors) of a ``.npy`` file with its ids (a text file, one id a
    line, or a JSON list), or of a Parquet file with ``external_id`` and ``vector`` columns."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            # numpy's own message may advise loading pickles: nothing here ever does.
            raise InvalidInput(f"{path.name} is not a numeric .npy array: save the vectors "
                               "with numpy.save(path, array) (float, items x dimensions)"
                               ) from None
        if ids_path is None:
            raise InvalidInput("a .npy file of vectors needs its external ids: a text file "
                               "with one id a line, in the array's row order")
        text = ids_path.read_text(encoding="utf-8")
        ids = json.loads(text) if text.lstrip().startswith("[") else text.splitlines()
        ids = [str(i) for i in ids if str(i).strip()]
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise InvalidInput(f"{path.name} is not a Parquet file that can be read ({exc})"
                               ) from None
        names = set(table.column_names)
        if not {"external_id", "vector"} <= names:
            raise InvalidInput(f"{path.name} has columns {sorted(names)}: vectors need "
                               "'external_id' and 'vector' (a list of numbers)")
        ids = [str(i) for i in table.column("external_id").to_pylist()]
        try:
            array = np.asarray(table.column("vector").to_pylist(), dtype=np.float32)
        except (TypeError, ValueError):
            raise InvalidInput("the vector column holds lists of different lengths or "
                               "values that are not numbers: give each item one vector of "
                               "the same length") from None
    else:
        raise InvalidInput(f"vectors come in a .npy (with an ids file) or .parquet file, not "
                           f"{suffix or '(no extension)'}")
    if array.ndim != 2 or array.shape[1] < 1:
        raise InvalidInput(f"vectors must be a 2-d array (items x dimensions), got shape "
                           f"{array.shape}")
    if len(ids) != array.shape[0]:
        raise InvalidInput(f"{len(ids)} ids for {array.shape[0]} vectors: give one id per "
                           "vector, in the same order")
    return ids, array.astype(np.float32, copy=False)


def import_vector_file(storage: Storage, project_id: int, path: Path,
                       ids_path: Path | None = None) -> dict[str, Any]:
    """Store the vectors of a file for the project's items, matched by external id.

    Every vector is checked first (the project's dimension, finite values, known and
    unrepeated ids); nothing is written when one is wrong, and the error lists the first
    offenders. Returns ``{stored, dim, items_without_vector}``.
    """
    ids, array = _read_vector_file(path, ids_path)
    problems: list[str] = []
    known = vector_dim(storage, project_id)
    if known is not None and array.shape[1] != known:
        problems.append(f"vectors have {array.shape[1]} values, the project's have {known}")
    bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
    problems += [f"vector {i + 1} ({ids[i]!r}) holds NaN or infinity" for i in bad[:5]]
    seen: set[str] = set()
    repeated = [i for i in ids if i in seen or seen.add(i)]  # type: ignore[func-returns-value]
    problems += [f"external id {i!r} has two vectors" for i in repeated[:5]]
    with storage.read_sessions() as session:
        found = item_ids_by_external_id(session, project_id, ids)
        rows = _rows_of(session, project_id, list(found.values()))
        n_items = count_items(session, project_id)
    unknown = [i for i in ids if i not in found]
    problems += [f"external id {i!r} is no item of the project" for i in unknown[:5]]
    if problems:
        more = len(bad) + len(repeated) + len(unknown) - sum(
            min(5, n) for n in (len(bad), len(repeated), len(unknown)))
        tail = f" (and {more} more)" if more > 0 else ""
        raise InvalidInput("no vector stored: " + "; ".join(problems) + tail)
    order = np.asarray([rows[found[i]] for i in ids], dtype=np.int64)
    sort = np.argsort(order, kind="stable")
    write_vectors(storage, project_id, order[sort].tolist(), array[sort],
                  [True] * len(order))
    stored = load_vectors(storage, project_id, n_items)
    return {"stored": len(ids), "dim": int(array.shape[1]),
            "items_without_vector": 0 if stored is None else stored.missing}


def _rows_of(session: Session, project_id: int, item_ids: list[int]) -> dict[int, int]:
    """Item id -> array-store row of ``item_ids``."""
    out: dict[int, int] = {}
    for start in range(0, len(item_ids), 5000):
        stmt = select(Item.id, Item.row).where(Item.project_id == project_id,
                                               Item.id.in_(item_ids[start:start + 5000]))
        out.update({int(i): int(r) for i, r in session.execute(stmt)})
    return out
