"""A pool stored as Parquet shards: one file per block of rows, read one shard at a time.

Each shard holds ``row`` (int64, the item's row in the whole pool), the model's input ``x``
and, when it differs from ``x``, the ``embedding`` the diversity strategies read. A dense
``x`` is a fixed-size list of float32 per row; a sparse one (CSR, such as TF-IDF) is two list
columns, ``x_indices`` (int32) and ``x_values`` (float32), whose list offsets are the CSR row
pointer, so a shard reads back as a CSR matrix without a copy of its values. The number of
features is in the file's metadata. A task that reads a shard holds that shard only, never
the pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["DEFAULT_SHARD_ROWS", "Shard", "list_shards", "read_shard", "write_shards"]

#: Rows per shard unless told otherwise: about 13 MB of float32 for 32 features.
DEFAULT_SHARD_ROWS = 100_000
_N_FEATURES = b"activelabel.n_features"
_SUFFIX = ".parquet"


@dataclass(frozen=True)
class Shard:
    """One shard in memory: ``rows`` (n,) pool rows, ``X`` (n, n_features) dense array or CSR,
    ``embeddings`` (n, d) float32 (``X`` itself when the shard stores no separate ones)."""

    path: Path
    rows: NDArray[np.int64]
    X: Any
    embeddings: NDArray[np.float32]

    def __len__(self) -> int:
        return int(self.rows.shape[0])


def write_shards(out_dir: str | Path, X: Any, *, embeddings: Any = None,
                 rows: Sequence[int] | NDArray[np.integer[Any]] | None = None,
                 shard_rows: int = DEFAULT_SHARD_ROWS, start_index: int = 0) -> list[Path]:
    """Write ``X`` (n, n_features), dense or scipy sparse, as Parquet shards of ``shard_rows``
    rows in ``out_dir`` (created); ``embeddings`` (n, d) dense, needed when ``X`` is sparse;
    ``rows`` the pool row of each line (default ``0..n-1``). Returns the files, in order.

    Shards are named ``shard-<index>.parquet`` from ``start_index`` on, so a pool too big to
    hold in memory is written block by block with successive calls.
    """
    import scipy.sparse as sp

    n = int(X.shape[0])
    if shard_rows < 1:
        raise ValueError(f"shard_rows must be at least 1, got {shard_rows}")
    if sp.issparse(X) and embeddings is None:
        raise ValueError("a sparse X needs dense embeddings=... (n, d) for the diversity "
                         "strategies; pass the featurizer's embeddings")
    row_ids = np.arange(n, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    if row_ids.shape != (n,):
        raise ValueError(f"rows must give one pool row per line of X: {n} lines, "
                         f"{row_ids.shape[0]} rows")
    if embeddings is not None and int(np.shape(embeddings)[0]) != n:
        raise ValueError(f"embeddings has {np.shape(embeddings)[0]} rows but X has {n}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, start in enumerate(range(0, n, shard_rows)):
        stop = min(start + shard_rows, n)
        emb = None if embeddings is None else embeddings[start:stop]
        path = out / f"shard-{start_index + i:05d}{_SUFFIX}"
        _write_one(path, row_ids[start:stop], X[start:stop], emb)
        paths.append(path)
    return paths


def _fixed_list(values: Any) -> Any:
    import pyarrow as pa

    arr = np.ascontiguousarray(values, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-d array, got shape {arr.shape}")
    return pa.FixedSizeListArray.from_arrays(pa.array(arr.reshape(-1)), int(arr.shape[1]))


def _write_one(path: Path, rows: NDArray[np.int64], X: Any, emb: Any) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import scipy.sparse as sp

    columns: dict[str, Any] = {"row": pa.array(rows)}
    if sp.issparse(X):
        csr = sp.csr_matrix(X)
        offsets = pa.array(csr.indptr.astype(np.int32))
        columns["x_indices"] = pa.ListArray.from_arrays(offsets,
                                                        pa.array(csr.indices.astype(np.int32)))
        columns["x_values"] = pa.ListArray.from_arrays(offsets,
                                                       pa.array(csr.data.astype(np.float32)))
    else:
        columns["x"] = _fixed_list(X)
    if emb is not None:
        columns["embedding"] = _fixed_list(emb)
    table = pa.table(columns).replace_schema_metadata({_N_FEATURES: str(X.shape[1]).encode()})
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)  # a reader never sees half a shard


def list_shards(where: str | Path | Sequence[str | Path]) -> list[Path]:
    """The shard files of a folder (sorted by name), or the given list of files, checked."""
    if isinstance(where, (str, Path)):
        folder = Path(where)
        if not folder.is_dir():
            raise ValueError(f"shard folder {folder} does not exist; write the pool with "
                             "activelabel.scale.write_shards first")
        paths = sorted(folder.glob(f"*{_SUFFIX}"))
        if not paths:
            raise ValueError(f"no *{_SUFFIX} shard in {folder}")
        return paths
    paths = [Path(p) for p in where]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValueError(f"shard files not found: {', '.join(missing[:3])}")
    if not paths:
        raise ValueError("no shard given")
    return paths


def _matrix(column: Any) -> NDArray[np.float32]:
    flat = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    width = flat.type.list_size
    values = flat.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float32).reshape(-1, width)


def read_shard(path: str | Path) -> Shard:
    """One shard's rows, model input and embeddings (see the module's docstring)."""
    import pyarrow.parquet as pq
    import scipy.sparse as sp

    path = Path(path)
    table = pq.read_table(path)
    names = set(table.column_names)
    rows = table.column("row").to_numpy().astype(np.int64, copy=False)
    if "x" in names:
        X: Any = _matrix(table.column("x"))
    elif {"x_indices", "x_values"} <= names:
        meta = table.schema.metadata or {}
        if _N_FEATURES not in meta:
            raise ValueError(f"sparse shard {path} has no feature count in its metadata; "
                             "write it again with write_shards")
        idx = table.column("x_indices").combine_chunks()
        val = table.column("x_values").combine_chunks()
        indptr = idx.offsets.to_numpy()
        X = sp.csr_matrix((val.flatten().to_numpy(zero_copy_only=False),
                           idx.flatten().to_numpy(zero_copy_only=False),
                           indptr - indptr[0]),
                          shape=(rows.shape[0], int(meta[_N_FEATURES])))
    else:
        raise ValueError(f"{path} is not an activelabel shard (no x column); write the pool "
                         "with activelabel.scale.write_shards")
    emb = _matrix(table.column("embedding")) if "embedding" in names else X
    if sp.issparse(emb):
        raise ValueError(f"sparse shard {path} has no embedding column")
    return Shard(path, rows, X, emb)
