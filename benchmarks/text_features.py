"""What the text featurizer's character n-grams cost: fit time, stored size and peak memory.

The LSA block beside the TF-IDF (``lsa_weight``) is left out of both variants, so the figures
are the n-grams' own; docs/benchmarks.md gives what the LSA adds.

Texts are made from ``../shared/data/ag_news_test.jsonl`` (news, about 40 words) or another
shared text file: row ``i`` is row ``i mod n`` with each word dropped with probability 0.15
(seeded), so every text differs while the vocabulary stays that of real text. Each (size,
features) pair runs in a fresh process, so the peak resident memory is its own.

    python benchmarks/text_features.py --sizes 10000,100000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
VARIANTS = {"words": None, "words+chars": [2, 5]}


def texts_like(path: Path, n: int, seed: int = 0) -> list[str]:
    base = [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        words = base[i % len(base)].split()
        kept = [w for w, keep in zip(words, rng.random(len(words)) > 0.15, strict=True) if keep]
        out.append(" ".join(kept) or words[0])
    return out


def measure(path: Path, n: int, chars: list[int] | None) -> dict[str, float]:
    """Fit the text featurizer on ``n`` texts here (call in a fresh process)."""
    from activelabel.features import TextFeaturizer

    texts = texts_like(path, n)
    started = time.perf_counter()
    fs = TextFeaturizer(char_ngrams=None if chars is None else (chars[0], chars[1]),
                        lsa_weight=None, sentence_weight=None,
                        ).fit_transform(texts)  # the n-grams' cost alone
    seconds = time.perf_counter() - started
    X = fs.X
    return {"seconds": seconds, "nnz_per_row": X.nnz / n,
            "mb": (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 1e6,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10000,100000", help="comma-separated text counts")
    p.add_argument("--data", type=Path, default=DATA_DIR / "ag_news_test.jsonl")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # "n:variant", in the child
    args = p.parse_args(argv)
    if args.one:
        n, variant = args.one.split(":")
        print(json.dumps(measure(args.data, int(n), VARIANTS[variant])))
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if not args.data.is_file():
        raise SystemExit(f"error: no file {args.data}; pass --data FILE.jsonl with a text field")
    print(f"texts like {args.data.name}\n")
    print("| texts | features | fit s | non-zeros per row | stored MB | peak RSS MB |")
    print("|---:|---|---:|---:|---:|---:|")
    for n in sizes:
        for variant in VARIANTS:
            child = subprocess.run(
                [sys.executable, __file__, "--data", str(args.data), "--one", f"{n}:{variant}"],
                check=True, capture_output=True, text=True)
            r = json.loads(child.stdout.strip().splitlines()[-1])
            print(f"| {n:,} | {variant} | {r['seconds']:.1f} | {r['nnz_per_row']:.0f} | "
                  f"{r['mb']:.0f} | {r['peak_mb']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
