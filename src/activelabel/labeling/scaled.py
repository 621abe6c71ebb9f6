"""A round's scoring and selection handed to Ray above a pool size (``ray_above_items``).

The project's cached features are written once as Parquet shards beside its arrays
(``shards-<fingerprint>/``, rebuilt when the features are), then :mod:`activelabel.scale`
scores every shard in its own Ray task, keeps each shard's best candidates and picks the
batch among them with the round's strategy. Ray is the one this worker process already runs,
the cluster named by ``RAY_ADDRESS`` in the server's environment, or a local Ray started on
the first such round. For a cluster the data folder must be shared storage mounted at the
same path on every node (docs/deployment.md).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..scale import DEFAULT_SHARD_ROWS, ScaleQuery, score_and_select, write_shards
from ..store import Storage
from .featurize import ProjectFeatures

__all__ = ["on_ray", "project_shards", "score_on_ray"]

_DONE = "complete"


def on_ray(settings: Mapping[str, Any], n_items: int) -> bool:
    """Whether a round of a project with ``n_items`` items scores on Ray."""
    above = settings.get("ray_above_items")
    return above is not None and n_items >= int(above)


def project_shards(storage: Storage, project_id: int, feats: ProjectFeatures,
                   shard_rows: int = DEFAULT_SHARD_ROWS) -> Path:
    """The folder of the project's features as Parquet shards, written when missing; shards
    of older features are removed."""
    base = storage.arrays.project_dir(project_id)
    folder = base / f"shards-{feats.fingerprint}"
    if (folder / _DONE).is_file():
        return folder
    for old in base.glob("shards-*"):
        shutil.rmtree(old, ignore_errors=True)
    separate = feats.X is not feats.embeddings
    for start in range(0, feats.n_items, shard_rows):  # a block at a time: bounded memory
        stop = min(start + shard_rows, feats.n_items)
        write_shards(folder, feats.X[start:stop],
                     embeddings=np.asarray(feats.embeddings[start:stop]) if separate else None,
                     rows=np.arange(start, stop), shard_rows=shard_rows,
                     start_index=start // shard_rows)
    (folder / _DONE).write_text(str(feats.n_items))
    return folder


def score_on_ray(storage: Storage, project_id: int, feats: ProjectFeatures, model: Any, *,
                 strategy: str, k: int, candidates: NDArray[np.intp],
                 labeled_rows: NDArray[np.intp], settings: Mapping[str, Any],
                 committee: Any = None, class_weights: NDArray[np.float64] | None = None,
                 multilabel: bool = False, seed: int = 0
                 ) -> tuple[NDArray[np.float32], NDArray[np.intp], NDArray[np.float64]]:
    """Every item's probabilities (n_items, n_classes) and the batch among ``candidates``
    (rows, best first, and their scores), computed on Ray."""
    folder = project_shards(storage, project_id, feats)
    exclude = np.setdiff1d(np.arange(feats.n_items, dtype=np.int64), candidates)
    labeled = np.asarray(feats.embeddings[labeled_rows]) if labeled_rows.shape[0] else None
    query = ScaleQuery(strategy, max(1, int(k)), model, committee=committee, exclude=exclude,
                       labeled_embeddings=labeled, class_weights=class_weights,
                       multilabel=multilabel, n_neighbors=settings.get("ray_neighbors"),
                       seed=seed, keep_probs=True)
    result = score_and_select(folder, query, executor="ray")
    probs = result.probs
    if probs is None or probs.shape[0] != feats.n_items:
        raise RuntimeError(f"the shards of project {project_id} hold "
                           f"{0 if probs is None else probs.shape[0]} items, the features "
                           f"{feats.n_items}; delete {folder} to have them written again")
    return probs, result.rows.astype(np.intp), result.scores
