"""A project's sentence vectors, computed once, apart from its rounds, and kept in the array store.

Where the sentence model is installed, the text featurizer reads all-MiniLM-L6-v2's vectors
beside the TF-IDF (:class:`~activelabel.features.TextFeaturizer`, ``sentence_weight``). The
model reads 30 (news paragraphs, one thread) to 200 (text messages, two threads) texts a
second, so no round waits for a whole pool: a build of the features embeds at most
:data:`INLINE_TEXTS` missing texts itself (a small project, or the items of a later import),
and a worker with no job embeds the rest, a few seconds at a time (:func:`embed_step`,
called by the worker loop). While more are missing a project's features
are built without them; the first build with at most that many missing embeds those and reads
them all. Where the model fails (a broken install), builds go without it for a while and say
so in the log.

The vectors are appended to ``sentences.f32`` (float32, 384 a row, row = ``Item.row``) and,
after them, their keys to ``sentence_keys.u64``: the first 8 bytes of each text's BLAKE2b
digest, so a vector is used only for the text it was computed from, and a write cut short
leaves at most vectors without keys (not read). ``sentences.model`` names the model version
they were computed with: vectors of another version count as none and are dropped, under the
lock, before anything is read or appended (a new model package embeds the project again,
apart from its rounds as the first time; vectors stored before the version was recorded are
taken as the installed version's). A file lock per project keeps two processes
from writing at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import features
from ..store import Storage, count_items, iter_items, list_projects, settings_of
from ..store.files import atomic_write

__all__ = ["INLINE_TEXTS", "KEYS", "SENTENCES", "can_complete", "complete_vectors", "embed_step",
           "note_failure", "purge_rows", "stored_rows", "text_keys", "vectors_from_row",
           "wanted_weight"]

log = logging.getLogger("activelabel.sentences")

SENTENCES = "sentences"
KEYS = "sentence_keys"
#: Missing texts a build of the features embeds itself (about 5 to 15 s on two cores); with
#: more missing, the build goes without the vectors and idle workers embed them.
INLINE_TEXTS = 1_000
#: Most texts embedded between two saves of an idle step, and between two looks for a
#: queued job.
STEP_TEXTS = 256
#: Seconds a chunk of an idle step aims at: its texts are what the model read in that time
#: in the chunk before (200 text messages on two quiet cores, 5 news paragraphs on a loaded
#: one), so a round asked meanwhile waits about that long for the worker.
CHUNK_SECONDS = 1.0
#: Fewest texts a chunk embeds (each chunk saves, with two syncs).
MIN_CHUNK_TEXTS = 4
#: Texts a second assumed for a project's first chunk in this process (news paragraphs on a
#: loaded machine read about that many; shorter texts lift the next chunk).
FIRST_RATE = 16.0
#: Seconds an idle worker spends embedding before it looks for jobs again.
STEP_SECONDS = 5.0
#: Seconds a project whose embedding failed is left alone by idle steps.
_RETRY_SECONDS = 300.0
#: Seconds idle steps wait before looking again after finding nothing to embed (a look
#: counts every project's items).
RESCAN_SECONDS = 30.0
_failed: dict[tuple[str, int], float] = {}
_quiet_until: dict[str, float] = {}
#: Texts a second the model read in the project's last chunk, by (data folder, project).
_rate: dict[tuple[str, int], float] = {}


def text_keys(texts: Sequence[str]) -> NDArray[np.uint64]:
    """One key per text: the first 8 bytes of its BLAKE2b digest."""
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(t.encode("utf-8", "surrogatepass"),
                                        digest_size=8).digest(), "little") for t in texts),
        dtype=np.uint64, count=len(texts))


#: The key of the empty text: what a purged row is stored under (see :func:`purge_rows`).
_EMPTY_KEY = text_keys([""])[0]


def wanted_weight(settings: Mapping[str, Any], n_items: int) -> float | None:
    """The sentence weight a project's text features take at ``n_items`` items (None: none);
    ``settings`` as its features read them (``featurize.feature_settings``)."""
    if settings.get("featurizer") != "text":
        return None
    params = settings.get("featurizer_params") or {}
    return features.resolve_sentence_weight(params.get("sentence_weight", "auto"), n_items)


@contextlib.contextmanager
def _locked(storage: Storage, project_id: int, *, wait: bool) -> Iterator[bool]:
    """The project's sentence lock; yields False when ``wait`` is off and another has it."""
    folder = storage.arrays.project_dir(project_id)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "sentences.lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _files(storage: Storage, project_id: int) -> tuple[Path, Path]:
    folder = storage.arrays.project_dir(project_id)
    return folder / f"{SENTENCES}.f32", folder / f"{KEYS}.u64"


_ROW_BYTES = features.SENTENCE_DIM * 4


def _model_file(storage: Storage, project_id: int) -> Path:
    return storage.arrays.project_dir(project_id) / f"{SENTENCES}.model"


def _recorded_model(storage: Storage, project_id: int) -> str | None:
    """The model version the stored vectors were computed with (None: not recorded)."""
    try:
        return _model_file(storage, project_id).read_text(encoding="utf-8")
    except OSError:
        return None


def _same_model(storage: Storage, project_id: int) -> None:
    """Under the lock: drop the stored vectors when another model version computed them, and
    record the installed version (vectors stored before it was recorded are taken as its)."""
    current = features.sentence_model_version()
    recorded = _recorded_model(storage, project_id)
    if recorded == current or not current:  # no version to compare with: nothing dropped
        return
    if recorded is not None:
        log.info("project %s: sentence vectors of %s dropped, %s embeds them again",
                 project_id, recorded or "no model", current or "no model")
        _cut(storage, project_id, 0)
    path = _model_file(storage, project_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda h: h.write(current.encode("utf-8")))


def stored_rows(storage: Storage, project_id: int) -> int:
    """Rows of the stored vectors (not checked against the texts; none when another model
    version computed them)."""
    recorded = _recorded_model(storage, project_id)
    current = features.sentence_model_version()
    if recorded is not None and current and recorded != current:
        return 0
    vectors, keys = _files(storage, project_id)
    try:
        return min(vectors.stat().st_size // _ROW_BYTES, keys.stat().st_size // 8)
    except OSError:
        return 0


def _stored(storage: Storage, project_id: int) -> tuple[NDArray[np.float32], NDArray[np.uint64]]:
    n = stored_rows(storage, project_id)
    if n == 0:
        return np.empty((0, features.SENTENCE_DIM), np.float32), np.empty(0, np.uint64)
    vectors_path, keys_path = _files(storage, project_id)
    vectors = np.fromfile(vectors_path, dtype=np.float32, count=n * features.SENTENCE_DIM)
    keys = np.fromfile(keys_path, dtype=np.uint64, count=n)
    return vectors.reshape(n, features.SENTENCE_DIM), keys


def _cut(storage: Storage, project_id: int, rows: int) -> None:
    """Keep the first ``rows`` vectors and keys (what lies beyond is not used)."""
    for path, width in zip(_files(storage, project_id), (_ROW_BYTES, 8), strict=True):
        if path.exists() and path.stat().st_size > rows * width:
            os.truncate(path, rows * width)


def _append(storage: Storage, project_id: int, vectors: NDArray[np.float32],
            keys: NDArray[np.uint64]) -> None:
    """Append rows after the stored ones (vectors first, then keys, each synced)."""
    rows = stored_rows(storage, project_id)
    _cut(storage, project_id, rows)
    rows_data: tuple[bytes, bytes] = (np.ascontiguousarray(vectors, np.float32).tobytes(),
                                      np.ascontiguousarray(keys, np.uint64).tobytes())
    for path, data in zip(_files(storage, project_id), rows_data, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def _valid_prefix(stored_keys: NDArray[np.uint64], keys: NDArray[np.uint64]) -> int:
    """Rows from the first on whose stored vector is their text's; a purged row (blanked,
    keyed by the empty text) counts whatever text was read, as a build that read its text
    before the purge committed still has it: the blank row is kept, not embedded again."""
    n = min(stored_keys.shape[0], keys.shape[0])
    differ = np.flatnonzero((stored_keys[:n] != keys[:n]) & (stored_keys[:n] != _EMPTY_KEY))
    return int(differ[0]) if differ.size else n


def complete_vectors(storage: Storage, project_id: int, texts: Sequence[str], *,
                     inline: int | None = None) -> NDArray[np.float32] | None:
    """The vectors of ``texts`` (every item's, in row order) from the store, the missing ones
    embedded and stored when at most ``inline`` (default :data:`INLINE_TEXTS`); None when more
    are missing."""
    inline = INLINE_TEXTS if inline is None else inline
    keys = text_keys(texts)
    with _locked(storage, project_id, wait=True):
        _same_model(storage, project_id)
        vectors, stored_keys = _stored(storage, project_id)
        valid = _valid_prefix(stored_keys, keys)
        if valid < min(stored_keys.shape[0], keys.shape[0]):  # another text there: dropped
            _cut(storage, project_id, valid)
            vectors = vectors[:valid]
        missing = len(texts) - valid
        if missing > inline:
            return None
        if not missing:
            return vectors[:valid]
        new = features.sentence_vectors(list(texts[valid:]))
        _append(storage, project_id, new, keys[valid:])
        return np.concatenate([vectors[:valid], new])


def vectors_from_row(storage: Storage, project_id: int, first_row: int, rows: int,
                     field: str) -> NDArray[np.float32]:
    """The vectors of the ``rows`` items from row ``first_row`` on (an import's new items),
    in row order: embedded, and stored when the stored vectors end right before them (else
    the next build or idle step stores them), so the next build does not embed them again."""
    texts = _texts_from(storage, project_id, field, first_row, limit=rows)
    vectors = features.sentence_vectors(texts)
    with _locked(storage, project_id, wait=True):
        _same_model(storage, project_id)
        if texts and stored_rows(storage, project_id) == first_row:
            _append(storage, project_id, vectors, text_keys(texts))
    return vectors


def purge_rows(storage: Storage, project_id: int, rows: Sequence[int]) -> None:
    """Overwrite the stored vectors of purged items (rows ``rows``) with zeros, keyed by the
    empty text a purged item reads as: nothing derived from a removed payload stays, and the
    project's other vectors are kept (a purge does not embed the project again, nor do its
    next rounds go without the vectors meanwhile).

    Called once the purge has committed. The vectors are written and synced before the keys:
    a write cut short leaves a purged row's old key beside a zero vector, which no longer
    matches its (empty) text, so the next build drops that row and those after it and embeds
    them again; never the old vector under the new key."""
    if not len(rows) or not storage.arrays.project_dir(project_id).exists():
        return
    with _locked(storage, project_id, wait=True):
        _same_model(storage, project_id)
        stored = stored_rows(storage, project_id)
        hit = sorted({int(r) for r in rows if 0 <= int(r) < stored})
        if not hit:
            return
        vectors_path, keys_path = _files(storage, project_id)
        blank = bytes(_ROW_BYTES)
        empty_key = np.asarray([_EMPTY_KEY], dtype=np.uint64).tobytes()
        for path, width, data in ((vectors_path, _ROW_BYTES, blank), (keys_path, 8, empty_key)):
            with path.open("r+b") as handle:
                for row in hit:
                    handle.seek(row * width)
                    handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        log.info("project %s: sentence vectors of %d purged items overwritten", project_id,
                 len(hit))


def can_complete(storage: Storage, project_id: int, n_items: int) -> bool:
    """Whether a build can have every item's vector: at most :data:`INLINE_TEXTS` missing,
    and the model did not fail for this project lately."""
    if _recently_failed(storage, project_id):
        return False
    return n_items - stored_rows(storage, project_id) <= INLINE_TEXTS


def note_failure(storage: Storage, project_id: int) -> None:
    """The model failed on this project's texts: builds and idle steps leave them for
    a while (:data:`_RETRY_SECONDS`)."""
    _failed[(str(storage.arrays.root), project_id)] = time.monotonic()


def _recently_failed(storage: Storage, project_id: int) -> bool:
    at = _failed.get((str(storage.arrays.root), project_id))
    return at is not None and time.monotonic() - at < _RETRY_SECONDS


def _texts_from(storage: Storage, project_id: int, field: str, row: int,
                limit: int) -> list[str]:
    out: list[str] = []
    with storage.read_sessions() as session:
        for batch in iter_items(session, project_id, batch_size=min(limit, 10_000),
                                from_row=row):
            for item in batch:
                value = (item.data or {}).get(field, "")
                out.append(value if isinstance(value, str) else "")
            if len(out) >= limit:
                break
    return out[:limit]


def _pending(storage: Storage) -> list[tuple[int, str, int]]:
    """(project id, text field, items) of the projects whose vectors are incomplete."""
    from .featurize import feature_settings  # featurize builds on this module

    out = []
    with storage.read_sessions() as session:
        for project in list_projects(session):
            settings = feature_settings(project.task, settings_of(project.settings).model_dump())
            n_items = count_items(session, project.id)
            if n_items and wanted_weight(settings, n_items) and \
                    stored_rows(storage, project.id) < n_items:
                field = (settings.get("featurizer_params") or {}).get("field", "text")
                out.append((project.id, str(field), n_items))
    return out


def embed_step(storage: Storage, seconds: float | None = None, *,
               stop: Callable[[], bool] | None = None) -> bool:
    """Embed the next texts of one project whose vectors are incomplete, for about
    ``seconds`` (default :data:`STEP_SECONDS`) in chunks of about :data:`CHUNK_SECONDS`
    (at most :data:`STEP_TEXTS`), each saved, and ending early at a chunk's end once
    ``stop()`` says so (a job is waiting for the worker); False when no
    project needs it (then no look for :data:`RESCAN_SECONDS`) or the model is not
    installed. The texts are appended after the stored rows; a build of the features checks
    every key and drops what does not match."""
    if not features.sentence_model_installed():
        return False
    seconds = STEP_SECONDS if seconds is None else seconds
    now = time.monotonic()
    where = str(storage.arrays.root)
    if now < _quiet_until.get(where, float("-inf")):
        return False
    for project_id, field, n_items in _pending(storage):
        if _recently_failed(storage, project_id):
            continue
        with _locked(storage, project_id, wait=False) as mine:
            if not mine:
                continue
            try:
                _embed_for(storage, project_id, field, n_items, now + seconds, stop)
            except Exception:  # the next round's build says what is wrong with the texts
                log.exception("sentence vectors of project %s failed; retried in %.0f s",
                              project_id, _RETRY_SECONDS)
                note_failure(storage, project_id)
                continue
        return True
    _quiet_until[where] = now + RESCAN_SECONDS
    return False


def _embed_for(storage: Storage, project_id: int, field: str, n_items: int,
               deadline: float, stop: Callable[[], bool] | None = None) -> None:
    _same_model(storage, project_id)
    rows = stored_rows(storage, project_id)
    where = (str(storage.arrays.root), project_id)
    # loaded before the first chunk is timed: its load (seconds) read as a slow model, and
    # the next chunk was cut to a few texts
    features.load_sentence_model()
    while rows < n_items:  # at least one chunk, then until the deadline
        rate = _rate.get(where, FIRST_RATE)
        size = int(min(max(rate * CHUNK_SECONDS, MIN_CHUNK_TEXTS), STEP_TEXTS))
        texts = _texts_from(storage, project_id, field, rows, size)
        if not texts:
            return
        began = time.monotonic()
        vectors = features.sentence_vectors(texts)
        _rate[where] = len(texts) / max(time.monotonic() - began, 1e-3)
        _append(storage, project_id, vectors, text_keys(texts))
        rows += len(texts)
        if time.monotonic() >= deadline or (stop is not None and stop()):
            return
