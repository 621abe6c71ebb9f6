"""Project items -> model features and embeddings, cached in the project's array store.

The featurizer named by the project settings (``featurizer`` + ``featurizer_params``) is fitted
over every item, streamed from the database by row, and applied in chunks. The results are
kept beside the database: ``embeddings.npy`` (dense float32, row = ``Item.row``), the model
matrix as ``features.npy`` (dense featurizers) or ``features.npz`` (TF-IDF, sparse CSR, saved
with :func:`scipy.sparse.save_npz`), the fitted featurizer (``featurizer.pkl``) and a small
``features.json`` holding the fingerprint they were built for. The fingerprint covers the item
count, the featurizer settings and the project's purge stamp, so the cache is rebuilt when a
file is missing, new items were imported, the settings changed or payloads were purged (and
no model trained on features from before a purge is taken for one of the rebuilt features).
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from .. import features as featurizers
from ..features import (
    Featurizer,
    ImageFeaturizer,
    TextFeaturizer,
    VectorFeaturizer,
    make_featurizer,
    missing_model_message,
    record_texts,
)
from ..store import Storage, count_items, get_project, iter_items, settings_of
from ..store.files import atomic_write
from ..store.models import Project
from . import sentences

__all__ = [
    "EMBEDDINGS",
    "FEATURES",
    "ProjectFeatures",
    "cached_fingerprint",
    "cached_sentence_model",
    "ensure_features",
    "feature_fingerprint",
    "features_status",
    "featurize_records",
    "load_featurizer",
    "new_purge_stamp",
    "pixel_reader",
    "project_records",
    "purge_stamp",
    "slim_record",
    "transform_items",
]

log = logging.getLogger("activelabel.features")

FEATURES = "features"
EMBEDDINGS = "embeddings"
_META = "features.json"
_FEATURIZER = "featurizer.pkl"
_PURGES = "purges"
#: Items transformed per pass (bounds the temporaries of a transform).
TRANSFORM_CHUNK = 20_000
#: Items read from the database per query.
READ_BATCH = 10_000
#: A span project's text featurizer without the blocks only a classifier reads, unless its
#: settings ask for them: the tagger reads its own token features, and the cold start and the
#: diversity read the LSA, as measured (docs/benchmarks.md, "Span labeling").
SPAN_TEXT_DEFAULTS = {"lsa_weight": None, "sentence_weight": None}


@dataclass(frozen=True)
class ProjectFeatures:
    """A project's features: ``X`` for the model (dense array or CSR), ``embeddings`` dense
    float32, both with one row per item in ``Item.row`` order."""

    X: Any
    embeddings: NDArray[np.float32]
    fingerprint: str
    rebuilt: bool
    seconds: float

    @property
    def n_items(self) -> int:
        return int(self.embeddings.shape[0])


def feature_settings(task: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """A project's settings as its features read them: a span project's text featurizer takes
    :data:`SPAN_TEXT_DEFAULTS` where its ``featurizer_params`` say nothing."""
    if task != "spans" or settings.get("featurizer") != "text":
        return dict(settings)
    return {**settings, "featurizer_params": {**SPAN_TEXT_DEFAULTS,
                                              **(settings.get("featurizer_params") or {})}}


def feature_fingerprint(n_items: int, settings: Mapping[str, Any]) -> str:
    """Hex digest of what the cached features depend on: item count and featurizer settings
    (``settings``: every setting, as ``settings_of(...).model_dump()`` gives them)."""
    key = json.dumps({"n_items": int(n_items), "featurizer": settings["featurizer"],
                      "params": settings.get("featurizer_params") or {},
                      **({"vectors": settings["vectors_stamp"]} if "vectors_stamp" in settings
                         else {}),
                      **({"sentences": settings["sentences"]} if "sentences" in settings
                         else {}),
                      # features from payloads read before a purge are not the current ones
                      **({"purges": settings["purge_stamp"]} if settings.get("purge_stamp")
                         else {}),
                      # vectors of another model version are embedded again (their keys differ)
                      **({"sentence_model": featurizers.sentence_model_version()}
                         if settings.get("sentences") else {})}, sort_keys=True, default=str)
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _featurizer_for(settings: Mapping[str, Any]) -> Featurizer:
    kind = str(settings["featurizer"])
    params = dict(settings.get("featurizer_params") or {})
    try:
        return make_featurizer(kind, **params)
    except TypeError as exc:
        raise ValueError(f"featurizer_params {params} do not fit featurizer {kind!r}: {exc}; "
                         "fix the project settings") from exc


Pixels = Callable[[Mapping[str, Any]], Any]


def pixel_reader(storage: Storage, project_id: int, featurizer: Featurizer) -> Pixels | None:
    """For an image featurizer: what turns a stored image's reference into its pixels, resized
    to the featurizer's shape (fitted, else asked for, else 32 x 32 grey); None otherwise."""
    if not isinstance(featurizer, ImageFeaturizer):
        return None
    from .images import DEFAULT_PIXEL_SHAPE, image_path, load_pixels

    shape = getattr(featurizer, "shape_", None) or featurizer.shape or DEFAULT_PIXEL_SHAPE

    def read(ref: Mapping[str, Any]) -> Any:
        try:
            return load_pixels(image_path(storage, project_id, ref), shape)
        except (OSError, SyntaxError) as exc:
            raise ValueError(f"image {ref.get('name')!r} cannot be read from the data folder "
                             f"({exc}): import it again") from None
    return read


def slim_record(featurizer: Featurizer, data: Mapping[str, Any],
                pixels: Pixels | None = None) -> Any:
    """The part of an item's payload the featurizer reads (less memory for wide payloads).
    A purged item (payload ``{}``) reads as an empty text; a stored image's reference, as its
    pixels when ``pixels`` (:func:`pixel_reader`) is given."""
    field = getattr(featurizer, "field", None)
    if isinstance(field, str):
        value = data.get(field, "" if not data else None)
        if pixels is not None and isinstance(value, Mapping) and "image_file" in value:
            value = pixels(value)
        elif value is None and not isinstance(featurizer, ImageFeaturizer):
            image = next((k for k, v in data.items()
                          if isinstance(v, Mapping) and "image_file" in v), None)
            if image is not None:
                raise ValueError(
                    f"the items are image files (field {image!r}) but the featurizer reads "
                    f"field {field!r}: set the project's featurizer to image "
                    f'({{"featurizer": "image", "featurizer_params": {{"field": "{image}", '
                    '"shape": [32, 32]}}), or to vectors with the team\'s own embeddings')
        return {field: value}
    return data


def _records(storage: Storage, project_id: int, featurizer: Featurizer) -> Any:
    """Every item's payload (slimmed), in row order, read page by page with a read session;
    for the ``vectors`` featurizer, every item's stored vector."""
    if isinstance(featurizer, VectorFeaturizer):
        return _stored_vectors(storage, project_id)
    out: list[Any] = []
    purged: list[int] = []
    pixels = pixel_reader(storage, project_id, featurizer)
    with storage.read_sessions() as session:
        for batch in iter_items(session, project_id, batch_size=READ_BATCH):
            for row in batch:
                if row.purged_at is not None:
                    purged.append(len(out))
                out.append(slim_record(featurizer, row.data or {}, pixels))
    if purged and not isinstance(featurizer, TextFeaturizer):
        # a purged item reads as blank: another item's record with every value zero or empty
        # (an image's pixels, a row's numbers), so that non-text featurizers read it too
        left = set(purged)
        model = next((r for i, r in enumerate(out) if i not in left), None)
        if model is not None:
            blank = _blank_like(model)
            for i in purged:
                out[i] = blank
    return out


def _blank_like(value: Any) -> Any:
    """``value`` with every number 0 and every string empty, its shape kept."""
    if isinstance(value, Mapping):
        return {k: _blank_like(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_blank_like(v) for v in value]
    if isinstance(value, np.ndarray):
        return np.zeros_like(value)
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return 0
    return "" if isinstance(value, str) else value


def _stored_vectors(storage: Storage, project_id: int) -> NDArray[np.float32]:
    """The project's own vectors, one per item in row order; ValueError when items lack one."""
    from .vectors import load_vectors

    with storage.read_sessions() as session:
        n_items = count_items(session, project_id)
    stored = load_vectors(storage, project_id, n_items)
    if stored is None:
        raise ValueError(f"project {project_id} has no vectors: the vectors featurizer reads "
                         "the project's own embeddings (map a vector column on import, or "
                         "`activelabel vectors` / POST .../vectors), or choose another "
                         "featurizer")
    if stored.missing:
        first = np.flatnonzero(~stored.present)[:5].tolist()
        raise ValueError(f"{stored.missing} of {n_items} items have no vector (rows {first}): "
                         "store their vectors or choose another featurizer")
    return stored.vectors


def purge_stamp(storage: Storage, project_id: int) -> str:
    """What changes with every purge of the project's payloads ("" before the first)."""
    try:
        return (storage.arrays.project_dir(project_id) / _PURGES).read_text(encoding="utf-8")
    except OSError:
        return ""


def new_purge_stamp(storage: Storage, project_id: int) -> None:
    """A purge of payloads happened: a new stamp, so features built from payloads read before
    it match no fingerprint (a build under way does not keep them; a model trained on the old
    features is not applied to the rebuilt ones), and the cached features and featurizer
    dropped (the next round rebuilds them). A purge renews it before and after its commit."""
    folder = storage.arrays.project_dir(project_id)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / _PURGES, lambda h: h.write(uuid.uuid4().hex.encode()))
    for path in _paths(storage, project_id).values():
        path.unlink(missing_ok=True)


def _vectors_stamp(storage: Storage, project_id: int) -> str:
    """What changes when the project's vectors do (size and time of their files)."""
    folder = storage.arrays.project_dir(project_id)
    parts = []
    for name in ("vectors.f32", "vectors.mask"):
        try:
            stat = (folder / name).stat()
        except OSError:
            continue
        parts.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}")
    return ",".join(parts)


def _chunks(records: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(records), TRANSFORM_CHUNK):
        yield records[start:start + TRANSFORM_CHUNK]


def transform_items(featurizer: Featurizer, records: list[Any], *,
                    sentence_vectors: NDArray[np.float32] | None = None,
                    ) -> tuple[Any, NDArray[np.float32]]:
    """(X, embeddings) of ``records`` with a fitted featurizer, transformed chunk by chunk;
    ``sentence_vectors``: the records' vectors, embedded before (a text featurizer's)."""
    parts_x: list[Any] = []
    parts_e: list[NDArray[np.float32]] = []
    for start, chunk in zip(range(0, len(records), TRANSFORM_CHUNK), _chunks(records),
                            strict=True):
        if sentence_vectors is not None and isinstance(featurizer, TextFeaturizer):
            fs = featurizer.transform(chunk, sentence_vectors=sentence_vectors[
                start:start + len(chunk)])
        else:
            fs = featurizer.transform(chunk)
        parts_x.append(fs.X)
        parts_e.append(np.asarray(fs.embeddings, dtype=np.float32))
    if parts_x and sp.issparse(parts_x[0]):
        X: Any = sp.vstack(parts_x, format="csr", dtype=np.float32)
    else:
        X = np.concatenate([np.asarray(x, dtype=np.float32) for x in parts_x])
    return X, np.concatenate(parts_e)


def _fit_transform(featurizer: Featurizer, records: list[Any],
                   sentence_vectors: NDArray[np.float32] | None = None,
                   ) -> tuple[Any, NDArray[np.float32]]:
    if isinstance(featurizer, TextFeaturizer):  # vectorizes the texts once
        fs = featurizer.fit_transform(records, sentence_vectors=sentence_vectors)
        return sp.csr_matrix(fs.X, dtype=np.float32), np.asarray(fs.embeddings, np.float32)
    featurizer.fit(records)
    return transform_items(featurizer, records)


def featurize_records(settings: Mapping[str, Any], payloads: list[Mapping[str, Any]],
                      storage: Storage | None = None, project_id: int | None = None) -> Any:
    """Features (``X``) of item payloads with a featurizer of the project's settings fitted on
    just these payloads (a sample compared on equal terms; nothing is cached). Stored images
    are read from the project (``storage``, ``project_id``) when given."""
    if settings.get("featurizer") == "text":  # a sample, not the pool: no vectors to embed
        settings = {**settings, "featurizer_params": {
            **(settings.get("featurizer_params") or {}), "sentence_weight": None}}
    featurizer = _featurizer_for(settings)
    pixels = None if storage is None or project_id is None else pixel_reader(
        storage, project_id, featurizer)
    X, _ = _fit_transform(featurizer, [slim_record(featurizer, p, pixels) for p in payloads])
    return X


def _paths(storage: Storage, project_id: int) -> dict[str, Path]:
    folder = storage.arrays.project_dir(project_id)
    return {"meta": folder / _META, "featurizer": folder / _FEATURIZER,
            "sparse": folder / f"{FEATURES}.npz", "dense": storage.arrays.path(project_id, FEATURES),
            "embeddings": storage.arrays.path(project_id, EMBEDDINGS)}


def _load_cached(storage: Storage, project_id: int, fingerprint: str) -> ProjectFeatures | None:
    """The cached features when every file is there and built for ``fingerprint``."""
    paths = _paths(storage, project_id)
    try:
        meta = json.loads(paths["meta"].read_text())
    except (OSError, ValueError):
        return None
    if meta.get("fingerprint") != fingerprint or not paths["featurizer"].exists():
        return None
    start = time.perf_counter()
    embeddings = storage.arrays.load(project_id, EMBEDDINGS)
    if embeddings is None:
        return None
    if meta.get("sparse"):
        if not paths["sparse"].exists():
            return None
        X: Any = sp.load_npz(paths["sparse"]).tocsr()
    else:
        X = storage.arrays.load(project_id, FEATURES)
        if X is None:
            return None
    if X.shape[0] != embeddings.shape[0]:
        return None
    return ProjectFeatures(X, embeddings, fingerprint, False, time.perf_counter() - start)


def _save(storage: Storage, project_id: int, X: Any, embeddings: NDArray[np.float32],
          featurizer: Featurizer, fingerprint: str, kind: str,
          sentences_read: bool = False) -> None:
    paths = _paths(storage, project_id)
    sparse = sp.issparse(X)
    if sparse:
        atomic_write(paths["sparse"], lambda h: sp.save_npz(h, X, compressed=False))
        paths["dense"].unlink(missing_ok=True)
    else:
        storage.arrays.save(project_id, FEATURES, np.asarray(X, dtype=np.float32))
        paths["sparse"].unlink(missing_ok=True)
    storage.arrays.save(project_id, EMBEDDINGS, embeddings)
    atomic_write(paths["featurizer"], lambda h: pickle.dump(featurizer, h, protocol=5))
    meta = {"fingerprint": fingerprint, "sparse": sparse, "n_items": int(embeddings.shape[0]),
            "featurizer": kind, "sentences": bool(sentences_read),
            "sentence_model": (featurizers.sentence_model_version() if sentences_read
                               else None)}
    atomic_write(paths["meta"], lambda h: h.write(json.dumps(meta).encode()))


def _cached_meta(storage: Storage, project_id: int) -> dict[str, Any]:
    try:
        meta = json.loads(_paths(storage, project_id)["meta"].read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def cached_fingerprint(storage: Storage, project_id: int) -> str | None:
    """The fingerprint of the cached features (what the active model was trained on when it
    matches the model's), or None when nothing is cached."""
    found = _cached_meta(storage, project_id).get("fingerprint")
    return None if found is None else str(found)


def cached_sentence_model(storage: Storage, project_id: int) -> str | None:
    """The sentence model version the cached features read (None: they read no vectors)."""
    found = _cached_meta(storage, project_id).get("sentence_model")
    return None if found is None else str(found)


def features_status(storage: Storage, session: Session, project: Project,
                    n_items: int | None = None) -> dict[str, Any]:
    """What the project's model reads, for the dashboard and ``activelabel status``: the
    featurizer its settings name, the items the cached features of that featurizer were built
    for (None: none built yet), and for a text project whose features take sentence vectors
    (or that has some stored), how many of its items have theirs and whether the cached
    features read them, with a sentence saying so. ``n_items``: the project's item count, when
    the caller has it. Reads two file sizes and two small files: cheap enough for every
    dashboard load."""
    settings = feature_settings(project.task, settings_of(project.settings).model_dump())
    kind = str(settings["featurizer"])
    n_items = count_items(session, project.id) if n_items is None else n_items
    meta = _cached_meta(storage, project.id)
    built = meta.get("n_items") if meta.get("featurizer", kind) == kind else None
    out: dict[str, Any] = {"featurizer": kind,
                           "built_for": int(built) if isinstance(built, int) else None,
                           "sentence_vectors": None}
    stored = min(sentences.stored_rows(storage, project.id), n_items)
    wanted = bool(n_items) and bool(sentences.wanted_weight(settings, n_items))
    if not n_items or not (wanted or stored):
        return out
    read = out["built_for"] is not None and bool(meta.get("sentences"))
    if not wanted:
        text = (f"sentence vectors: {stored:,} of {n_items:,} items stored, not read: "
                f"sentence_weight is null, or \"auto\" past "
                f"{featurizers.SENTENCE_AUTO_MAX_TEXTS:,} items or without the sentence model "
                "where this server runs")
    elif read:
        text = f"sentence vectors: read by the model ({stored:,} of {n_items:,} items embedded)"
    elif stored >= n_items:
        text = (f"sentence vectors: all {n_items:,} items embedded; the next round's model "
                "reads them")
    elif sentences.can_complete(storage, project.id, n_items):
        text = (f"sentence vectors: {stored:,} of {n_items:,} items embedded; the next round "
                "embeds the rest and reads them")
    else:
        text = (f"sentence vectors: {stored:,} of {n_items:,} items embedded by idle workers; "
                f"the rounds read them once at most {sentences.INLINE_TEXTS:,} are left")
    out["sentence_vectors"] = {"embedded": stored, "items": n_items, "in_model": read,
                               "text": text}
    return out


def load_featurizer(storage: Storage, project_id: int) -> Featurizer | None:
    """The featurizer fitted for the cached features, or None when none was saved."""
    path = _paths(storage, project_id)["featurizer"]
    if not path.exists():
        return None
    with path.open("rb") as handle:
        featurizer: Featurizer = pickle.load(handle)  # our own file, written by _save
    return featurizer


def project_records(storage: Storage, project_id: int, featurizer: Featurizer) -> list[Any]:
    """Every item's (slimmed) payload in row order: what a stored featurizer transforms."""
    return _records(storage, project_id, featurizer)


def ensure_features(storage: Storage, project_id: int) -> ProjectFeatures:
    """The project's features, from the cache when current, else rebuilt and cached.

    Raises ValueError when the project has no items or the featurizer cannot read them (the
    message names the field or setting to fix).
    """
    with storage.read_sessions() as session:
        project = get_project(session, project_id)
        task = project.task
        settings = settings_of(project.settings).model_dump()
        n_items = count_items(session, project_id)
    settings = feature_settings(task, settings)
    if settings.get("featurizer") == "vectors":  # new vectors for the same items: rebuild
        settings["vectors_stamp"] = _vectors_stamp(storage, project_id)
    settings["purge_stamp"] = purged = purge_stamp(storage, project_id)  # read before the items
    if n_items == 0:
        raise ValueError(f"project {project_id} has no items: import items first")
    wanted = sentences.wanted_weight(settings, n_items)
    if wanted:  # whether the vectors are (or a build can make them) complete
        settings["sentences"] = sentences.can_complete(storage, project_id, n_items)
    fingerprint = feature_fingerprint(n_items, settings)
    cached = _load_cached(storage, project_id, fingerprint)
    if cached is not None:
        return cached
    start = time.perf_counter()
    featurizer = _featurizer_for(settings)
    records = _records(storage, project_id, featurizer)
    vectors = None
    if wanted and isinstance(featurizer, TextFeaturizer):
        if not featurizers.sentence_model_installed():  # "auto" wants none: a weight by name
            raise ValueError(missing_model_message(featurizer.sentence_weight))
        texts = record_texts(records, featurizer.field)
        try:
            if settings["sentences"]:
                vectors = sentences.complete_vectors(storage, project_id, texts)
        except Exception:
            if featurizer.sentence_weight != "auto":
                raise  # asked for by name: the round fails and says why
            log.exception("the sentence model failed on project %s: its features go without "
                          "sentence vectors for now", project_id)
            sentences.note_failure(storage, project_id)
        settings["sentences"] = vectors is not None
        if vectors is None:  # idle workers embed them; until then the features go without
            featurizer = _featurizer_for({**settings, "featurizer_params": {
                **(settings.get("featurizer_params") or {}), "sentence_weight": None}})
    # Items imported between the count and the read change the fingerprint: use what was read.
    fingerprint = feature_fingerprint(len(records), settings)
    X, embeddings = _fit_transform(featurizer, records, vectors)
    del records
    if purge_stamp(storage, project_id) == purged:
        _save(storage, project_id, X, embeddings, featurizer, fingerprint,
              str(settings["featurizer"]), sentences_read=vectors is not None)
    if purge_stamp(storage, project_id) != purged:  # also if a purge came during the save
        # payloads purged since they were read: this round uses them, nothing keeps them
        log.info("project %s: payloads purged during the build, its features not kept",
                 project_id)
        for path in _paths(storage, project_id).values():
            path.unlink(missing_ok=True)
    return ProjectFeatures(X, embeddings, fingerprint, True, time.perf_counter() - start)
