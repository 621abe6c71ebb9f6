"""Share of random sampling's budget per set and strategy, with the label-count budgets and with
budgets small against the pool.

Three setups, the same strategies, seeds and splits in each:

- ``A``: ``benchmarks/label_counts.py``'s sets, subsampling and seed / batch / budget unchanged.
- ``B`` (large pool): no subsampling, and one rule for every set: the budget is at most a fifth
  of the pool (the 70% training split); the batch is a tenth of that cap rounded down to a
  multiple of 25 (at least 25), never more than A's batch; the seed batch is at most one
  batch; the budget is A's budget or the largest multiple of the batch within the cap,
  whichever is smaller.
- ``C`` (a new user's first run): ``activelabel simulate``'s defaults on every set, whole:
  a seed batch of 20, batches of 10, a budget of 300 labels. With many classes this is one or
  two labels a class, where a model's uncertainty says least.

Each (setup, set, repeat) runs :func:`activelabel.simulation.simulate` with one repeat and
``random_state`` = the repeat (the same split and k-means seed batch as repeat ``r`` of
``label_counts.py``) and is written to ``--out-dir`` as JSON; runs already there are skipped, so
several processes may share the work. The table reads every JSON in ``--out-dir``: the share of
random's full-budget accuracy (mean curve over repeats, as ``label_counts.py``), and in
brackets the range of the per-repeat shares (each repeat against its own random run); then
every loop's mean accuracy at 0.6 x the budget. Besides the library's strategies it runs
those of :data:`BENCHMARK_STRATEGIES` (defined here, tried against the sets the default
misses): ``cluster_margin_balanced`` (candidates spread over the predicted classes),
``softrank_margin`` and ``cluster_margin_softrank`` (margin drawn at random with probability
1 / rank), ``cluster_margin_wide`` (30 candidates a pick), ``cluster_margin_typiclust`` (30%
of every batch by TypiClust), ``info_gain`` (uncertainty times what the labels so far leave
unknown about the item's direction, BAIT-like) ``cal`` / ``cal_labels`` (contrastive:
the items whose probabilities differ most from their labeled neighbours') and
``smooth_margin`` (the margin of probabilities averaged over pool neighbours). ``--model-params`` changes the default model's parameters, ``--pseudo-label-mix`` how its
self-training splits the pseudo-labels over the classes, and
``--setup-c`` setup C's seed, batch and budget (each run with its own ``--out-dir``).

    python benchmarks/label_share.py --setups A,B --repeats 5
    python benchmarks/label_share.py --table-only
    python benchmarks/label_share.py --rerun auto  # after a change to the schedule

``--datasets`` also takes text sets made from the shared data that no default was tuned on
(:data:`HELD_OUT_C`, setup C only): ag_news' Business and Sci/Tech rows, clinc150 cut to 10 and
to 30 intents drawn at random, wnut17's sentences labeled by whether they hold an entity; and,
added once every default was set, clinc150 cut to 77 intents and ag_news without Sports.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import label_counts as lc
from activelabel import simulation
from activelabel.models import Classifier
from activelabel.simulation import simulate
from activelabel.strategies import STRATEGIES as REGISTRY
from activelabel.strategies._base import Selection, as_embeddings, as_probs, as_rng, check_k, top_k
from activelabel.strategies.hybrid import ClusterMargin
from activelabel.strategies.uncertainty import scores_of_checked

POOL_SHARE = 0.2  # setup B: the budget is at most this share of the pool
TEST_SIZE = 0.3
OUT_DIR = Path(__file__).resolve().parent / "out" / "label_share"
PSEUDO_LABEL_MIXES = ("equal", "pool", "labels", "min")
_EQUAL_COUNTS = Classifier._pseudo_label_counts


def pseudo_label_mix(mix: str) -> None:
    """Set how the default model's self-training splits its pseudo-labels over the classes
    (``--pseudo-label-mix``): ``equal`` (the library's, the same count a class), ``pool`` (by
    the model's predicted class mix over the unlabeled rows), ``labels`` (by the labels'
    class mix) or ``min`` (by the predicted mix, never more than the equal count)."""
    if mix == "equal":
        Classifier._pseudo_label_counts = _EQUAL_COUNTS  # type: ignore[method-assign]
        return

    def counts(self: Classifier, codes: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        n_classes = len(self.classes_)
        mix_of = np.bincount(codes if mix == "labels" else predicted, minlength=n_classes)
        total = self.pseudo_labels * codes.shape[0]
        by_mix = np.ceil(total * mix_of / mix_of.sum()).astype(np.intp)
        return np.minimum(by_mix, math.ceil(total / n_classes)) if mix == "min" else by_mix

    Classifier._pseudo_label_counts = counts  # type: ignore[method-assign]


class ClusterMarginBalanced(ClusterMargin):
    """Cluster-margin whose candidates are spread over the predicted classes: the candidate
    order takes the most uncertain item predicted as each class, then the second of each, and
    so on (by margin within a round), so a many-class pool's candidates are not all from the
    few most confused classes. Clustering and the round-robin are cluster-margin's."""

    name = "cluster_margin_balanced"

    def _candidates(self, probs: Any, scores: Any, n_cand: int,
                    rng: np.random.Generator) -> Any:
        order = np.argsort(-scores, kind="stable")  # most uncertain first
        pred = probs.argmax(axis=1)[order]
        rank = np.empty_like(order)  # place among the items predicted as the same class
        for c in np.unique(pred):
            members = np.flatnonzero(pred == c)
            rank[members] = np.arange(members.shape[0])
        return order[np.lexsort((np.arange(order.shape[0]), rank))][:n_cand]


def softrank_order(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The pool in the order of a draw without replacement with probability 1 / rank of
    ``scores`` (highest first): the Gumbel top-k of ``-log(rank)`` (Kirsch et al. 2023,
    "Stochastic batch acquisition", softrank with beta 1)."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(order.shape[0], dtype=np.float64)
    ranks[order] = np.arange(1, order.shape[0] + 1)
    return np.argsort(-(rng.gumbel(size=ranks.shape[0]) - np.log(ranks)), kind="stable")


class SoftrankMargin(ClusterMargin):
    """Margin sampling drawn by :func:`softrank_order`, not the top k: a batch that spreads
    over the uncertain items instead of the k most uncertain."""

    name = "softrank_margin"

    def query(self, k: int, *, probs: Any = None, embeddings: Any = None,
              labeled_embeddings: Any = None, class_weights: Any = None,
              random_state: Any = None) -> Selection:
        k = check_k(k)
        scores = scores_of_checked(as_probs(probs), "margin")
        idx = softrank_order(scores, as_rng(random_state))[:k]
        return Selection(idx, scores[idx])


class ClusterMarginSoftrank(ClusterMargin):
    """Cluster-margin whose candidates are drawn by :func:`softrank_order`."""

    name = "cluster_margin_softrank"

    def _candidates(self, probs: Any, scores: Any, n_cand: int,
                    rng: np.random.Generator) -> Any:
        cand = softrank_order(scores, rng)[:n_cand]
        return cand[np.argsort(-scores[cand], kind="stable")]


class ClusterMarginWide(ClusterMargin):
    """Cluster-margin over 30 candidates a pick (the library's: 10)."""

    name = "cluster_margin_wide"

    def __init__(self, **params: Any) -> None:
        super().__init__(**{"candidate_factor": 30.0, **params})


class ClusterMarginTypiclust(ClusterMargin):
    """Cluster-margin for 70% of each batch, TypiClust for the other 30%: representative
    items kept in every batch, not only while the model is young."""

    name = "cluster_margin_typiclust"
    typical_share = 0.3

    def query(self, k: int, *, probs: Any = None, embeddings: Any = None,
              labeled_embeddings: Any = None, class_weights: Any = None,
              random_state: Any = None) -> Selection:
        k = check_k(k)
        rng = as_rng(random_state)
        p = as_probs(probs)
        X = as_embeddings(embeddings, n_rows=p.shape[0])
        m = round(self.typical_share * k)
        typical = (REGISTRY["typiclust"]().query(
            m, embeddings=X, labeled_embeddings=labeled_embeddings, random_state=rng).indices
            if m else np.zeros(0, dtype=np.intp))
        rest = np.setdiff1d(np.arange(p.shape[0]), typical)
        picked = ClusterMargin().query(k - m, probs=p[rest], embeddings=X[rest],
                                       random_state=rng).indices
        idx = np.concatenate([rest[picked], typical]).astype(np.intp)
        return Selection(idx, scores_of_checked(p, "margin")[idx])


class InfoGain(ClusterMargin):
    """Greedy expected information gain of a Bayesian linear-logistic model over the (row
    normalised) embeddings, as BAIT (Ash et al. 2021) does with Fisher information: each pick
    maximises ``u(x) * x' S x``, ``u`` the pool item's uncertainty (1 - sum of squared
    probabilities), ``S`` the weights' posterior covariance given the labeled items and the
    picks so far (prior precision 1, each item weighted by C times its logistic weight, C the
    default model's 30; a pick updates ``S`` and every ``x' S x`` by one rank-one step). Where
    margin asks only how unsure the model is, this also asks how little the labels so far say
    about the item's direction, so a noisy boundary region stops drawing picks once covered."""

    name = "info_gain"
    C = 30.0

    def query(self, k: int, *, probs: Any = None, embeddings: Any = None,
              labeled_embeddings: Any = None, class_weights: Any = None,
              random_state: Any = None) -> Selection:
        k = check_k(k)
        p = as_probs(probs).astype(np.float64)
        X = _unit_rows(as_embeddings(embeddings, n_rows=p.shape[0]))
        A = np.eye(X.shape[1])
        if labeled_embeddings is not None and len(labeled_embeddings):
            L = _unit_rows(np.asarray(labeled_embeddings))
            A += self.C * 0.25 * (L.T @ L)  # labeled: the logistic weight at p = 0.5
        S = np.linalg.inv(A)
        u = 1.0 - (p ** 2).sum(axis=1)
        q = np.einsum("ij,ij->i", X @ S, X)
        picked: list[int] = []
        for _ in range(min(k, X.shape[0])):
            gain = u * q
            gain[picked] = -np.inf
            i = int(np.argmax(gain))
            picked.append(i)
            v = S @ X[i]
            denom = 1.0 / max(self.C * u[i] / 2, 1e-9) + float(X[i] @ v)  # p(1 - p) ~ u / 2
            S -= np.outer(v, v) / denom
            q -= (X @ v) ** 2 / denom
        idx = np.asarray(picked, dtype=np.intp)
        return Selection(idx, u[idx])


class Contrastive(ClusterMargin):
    """Contrastive active learning (CAL, Margatina et al. 2021): each pool item's score is the
    mean KL divergence from the model's probabilities at its ``k_nn`` nearest labeled items
    (cosine over the embeddings) to its own, so the picks are the items the model sees unlike
    their labeled neighbours; the top k. ``from_labels`` reads the neighbours' labels instead
    of the model's probabilities at them (the mean cross-entropy of the item's probabilities
    against them). The library's strategies are not given the labeled items' probabilities
    or labels: :func:`_query_with_labeled` hands them over (:data:`LABELED`) in the
    simulation. Without them (nothing labeled yet), cluster-margin."""

    name = "cal"
    k_nn = 10
    from_labels = False

    def query(self, k: int, *, probs: Any = None, embeddings: Any = None,
              labeled_embeddings: Any = None, class_weights: Any = None,
              random_state: Any = None) -> Selection:
        k = check_k(k)
        p = as_probs(probs).astype(np.float64)
        X = as_embeddings(embeddings, n_rows=p.shape[0])
        n_lab = 0 if labeled_embeddings is None else len(labeled_embeddings)
        if not n_lab or LABELED.get("n") != n_lab:
            return super().query(k, probs=p, embeddings=X, random_state=random_state)
        sims = _unit_rows(X) @ _unit_rows(labeled_embeddings).T
        kk = min(self.k_nn, n_lab)
        near = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]  # pool x kk labeled positions
        logp = np.log(np.clip(p, 1e-9, 1.0))
        if self.from_labels:
            score = -np.take_along_axis(logp, LABELED["labels"][near], axis=1).mean(axis=1)
        else:
            q = np.clip(LABELED["probs"], 1e-9, 1.0)[near]  # pool x kk x classes
            score = (q * (np.log(q) - logp[:, None, :])).sum(axis=2).mean(axis=1)
        idx = top_k(score, k)
        return Selection(idx, score[idx])


class ContrastiveLabels(Contrastive):
    """CAL against the labeled neighbours' labels (:class:`Contrastive`)."""

    name = "cal_labels"
    from_labels = True


class SmoothMargin(ClusterMargin):
    """Cluster-margin over candidates ranked by the margin of smoothed probabilities: each
    pool item's averaged with its ``k_nn`` nearest pool items' (cosine over the embeddings,
    computed a block of rows at a time), so an ambiguous item among confident neighbours
    (label noise, an outlier) ranks below a region the boundary runs through."""

    name = "smooth_margin"
    k_nn = 10

    def query(self, k: int, *, probs: Any = None, embeddings: Any = None,
              labeled_embeddings: Any = None, class_weights: Any = None,
              random_state: Any = None) -> Selection:
        p = as_probs(probs).astype(np.float64)
        X = as_embeddings(embeddings, n_rows=p.shape[0])
        U = _unit_rows(X)
        kk = min(self.k_nn, p.shape[0] - 1)
        smooth = p.copy()
        for a in range(0, U.shape[0], 2048):
            near = np.argpartition(-(U[a:a + 2048] @ U.T), kk, axis=1)[:, :kk + 1]  # self too
            smooth[a:a + 2048] = p[near].mean(axis=1)
        return super().query(k, probs=smooth, embeddings=X, random_state=random_state)


#: The labeled items' predicted probabilities and labels for :class:`Contrastive`, set by
#: :func:`_query_with_labeled` before each query of the simulation.
LABELED: dict[str, Any] = {}
_library_query = simulation._query


def _query_with_labeled(split: Any, name: str, k: int, clf: Any, lab: Any, *args: Any) -> Any:
    LABELED.clear()
    if issubclass(REGISTRY[name], Contrastive):
        LABELED.update(n=len(lab), probs=clf.predict_proba(split.X_train[lab]),
                       labels=np.asarray(split.y_train[lab]))
    return _library_query(split, name, k, clf, lab, *args)


def _unit_rows(X: Any) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


#: Strategies defined here (not the library's), registered when the script runs.
BENCHMARK_STRATEGIES = (ClusterMarginBalanced, SoftrankMargin, ClusterMarginSoftrank,
                        ClusterMarginWide, ClusterMarginTypiclust, InfoGain, Contrastive,
                        ContrastiveLabels, SmoothMargin)
STRATEGIES = ("random", "cluster_margin", "margin", "badge", "typiclust", "auto",
              ClusterMarginBalanced.name)
#: Version of a strategy whose rule changed: a stored run of another version is stale, run again
#: and left out of the tables. auto 2: mature once the labels reach 5 a class on average (1: once
#: the rarest class had 5); auto 4: TypiClust, not k-means sampling, while immature, and
#: mature at 3 labels a class on average without a holdout stability check.
VERSIONS = {"auto": 4}
#: Version of the library's default model: a stored run of another one is refused (its
#: out-dir mixes models). 2: the default logistic regression self-trains (pseudo_labels).
MODEL_VERSION = 2


def current(run: dict[str, Any], strategy: str) -> bool:
    """Whether ``run`` holds ``strategy``'s curve from its current version."""
    return (strategy in run["curves"]
            and run.get("versions", {}).get(strategy, 1) == VERSIONS.get(strategy, 1))


def pool_size(n_rows: int) -> int:
    """Rows in the training split (scikit-learn rounds the test share up)."""
    return n_rows - int(np.ceil(TEST_SIZE * n_rows))


def large_pool_spec(spec: lc.Spec, n_rows: int) -> lc.Spec:
    """Setup B's seed / batch / budget for a set of ``n_rows`` rows (not subsampled)."""
    cap = int(POOL_SHARE * pool_size(n_rows))
    batch = min(spec.batch_size, max(25, cap // 10 // 25 * 25))
    budget = min(spec.budget, cap // batch * batch)
    return replace(spec, seed_size=min(spec.seed_size, batch), batch_size=batch,
                   budget=budget, max_rows=None)


#: Setup C: the seed / batch / budget defaults of ``activelabel simulate``.
CLI_DEFAULTS = (20, 10, 300)


def _subset(ds: Any, name: str, keep_labels: set[str]) -> Any:
    """The rows of ``ds`` whose label is in ``keep_labels``, as a set of its own."""
    from activelabel.datasets import Dataset
    keep = [i for i, y in enumerate(ds.y) if ds.classes[y] in keep_labels]
    classes = tuple(sorted({ds.classes[ds.y[i]] for i in keep}))
    y = np.asarray([classes.index(ds.classes[ds.y[i]]) for i in keep], dtype=np.intp)
    return Dataset(name, "text", y, classes, records=[ds.records[i] for i in keep])


def _clinc_intents(n: int) -> Any:
    """clinc150 cut to ``n`` intents drawn at random (seeded), ``oos`` left out."""
    ds = lc.load("clinc150", lc.DATA_DIR)
    intents = sorted(c for c in ds.classes if c != "oos")
    drawn = np.random.default_rng(123).choice(intents, size=n, replace=False)
    return _subset(ds, f"clinc150_{n}", set(drawn.tolist()))


def _wnut17_binary(name: str, classes: tuple[str, str],
                   has: Callable[[list[dict[str, Any]]], bool]) -> Any:
    """wnut17's sentences labeled by whether their spans have a property (two classes)."""
    from activelabel.datasets import Dataset
    records, labels = [], []
    for line in (lc.DATA_DIR / "wnut17.jsonl").read_text().splitlines():
        row = json.loads(line)
        records.append({"text": row["text"]})
        labels.append(int(has(row["spans"])))
    return Dataset(name, "text", np.asarray(labels, dtype=np.intp), classes, records=records)


def _wnut17_entity() -> Any:
    """wnut17's sentences labeled by whether they hold a named entity."""
    return _wnut17_binary("wnut17_entity", ("no entity", "entity"), bool)


def _wnut17_person() -> Any:
    """wnut17's sentences labeled by whether they name a person."""
    return _wnut17_binary("wnut17_person", ("no person", "person"),
                          lambda spans: any(s["label"] == "person" for s in spans))


def _clinc_oos() -> Any:
    """clinc150's queries labeled in scope or out of scope: the 1,200 ``oos`` queries and
    2,400 in-scope ones drawn at random (seeded) over the 150 intents (two classes)."""
    from activelabel.datasets import Dataset
    ds = lc.load("clinc150", lc.DATA_DIR)
    oos = ds.classes.index("oos")
    out = [i for i, y in enumerate(ds.y) if y == oos]
    inside = np.random.default_rng(321).choice(
        [i for i, y in enumerate(ds.y) if y != oos], size=2 * len(out), replace=False)
    keep = sorted([*out, *inside.tolist()])
    y = np.asarray([int(ds.y[i] == oos) for i in keep], dtype=np.intp)
    return Dataset("clinc150_oos", "text", y, ("in scope", "out of scope"),
                   records=[ds.records[i] for i in keep])


#: Text sets made from the shared data that no default was tuned on, run in setup C only.
HELD_OUT_C = {
    "ag_news_business_scitech": lambda: _subset(lc.load("ag_news", lc.DATA_DIR),
                                                "ag_news_business_scitech",
                                                {"Business", "Sci/Tech"}),
    "clinc150_10": lambda: _clinc_intents(10),
    "clinc150_30": lambda: _clinc_intents(30),
    "wnut17_entity": _wnut17_entity,
    # added 2026-12-06 (later), once every default above was set: a many-class set of a
    # common size (77 intents) and ag_news' three overlapping topics (Sports, the easy one, out)
    "clinc150_77": lambda: _clinc_intents(77),
    "ag_news_no_sports": lambda: _subset(lc.load("ag_news", lc.DATA_DIR), "ag_news_no_sports",
                                         {"World", "Business", "Sci/Tech"}),
    # added 2026-12-07 (last), with every default set: a property of a query rather than its
    # topic (out of scope or not), and a binary span-derived set beside entity-or-not
    "clinc150_oos": _clinc_oos,
    "wnut17_person": _wnut17_person,
}


def load_set(name: str) -> Any:
    return HELD_OUT_C[name]() if name in HELD_OUT_C else lc.load(name, lc.DATA_DIR)


def setup_spec(setup: str, name: str, n_rows: int,
               setup_c: tuple[int, int, int] = CLI_DEFAULTS) -> lc.Spec:
    spec = lc.SPECS.get(name, lc.Spec(0, 0, 0, held_out=True))  # HELD_OUT_C: C only
    if setup == "A":
        return spec
    if setup == "C":
        seed, batch, budget = setup_c
        return replace(spec, seed_size=seed, batch_size=batch, budget=budget, max_rows=None)
    return large_pool_spec(spec, n_rows)


def sentence_features(ds: Any, cache_dir: Path) -> Any:
    """The set's all-MiniLM-L6-v2 vectors (the ``sentence`` featurizer), cached per set in
    ``cache_dir``: embedding ag_news takes a minute or two, and every repeat reads the same."""
    import hashlib

    from activelabel.features import FeatureSet
    texts = [str(r[ds.text_field]) for r in ds.records]
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    path = cache_dir / f"{ds.name}-{digest}.npy"
    if path.exists():
        emb = np.load(path)
    else:
        emb = ds.features("sentence").embeddings
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.save(path, emb)
    return FeatureSet(X=emb, embeddings=emb)


def set_features(ds: Any, featurizer: str, params: dict[str, Any], cache_dir: Path) -> Any:
    """The set's features: ``sentence``, the sentence vectors alone; ``auto``, the kind's
    default (for text with the model installed, the sentence vectors read from the cache)."""
    from activelabel.features import TextFeaturizer, sentence_model_installed
    if featurizer == "sentence":
        return sentence_features(ds, cache_dir)
    if ds.kind != "text" or not sentence_model_installed():
        return ds.features("auto", **params)
    made = TextFeaturizer(**{"field": ds.text_field, **params})
    return made.fit_transform(ds.records,
                              sentence_vectors=sentence_features(ds, cache_dir).embeddings)


def run_one(setup: str, name: str, repeat: int, strategies: list[str],
            out_dir: Path, rerun: frozenset[str] = frozenset(),
            featurizer_params: dict[str, Any] | None = None,
            featurizer: str = "auto", model_params: dict[str, Any] | None = None,
            setup_c: tuple[int, int, int] = CLI_DEFAULTS, mix: str = "equal") -> None:
    """Run the strategies missing from the (setup, set, repeat) JSON, and those of ``rerun``
    again (their stored curves replaced)."""
    path = out_dir / f"{setup}_{name}_r{repeat}.json"
    done = json.loads(path.read_text()) if path.exists() else {"curves": {}}
    todo = [s for s in strategies if not current(done, s) or s in rerun]
    if not todo:
        return
    full = load_set(name)
    spec = setup_spec(setup, name, len(full), setup_c)
    asked = {"model_params": model_params or {}, "pseudo_label_mix": mix,
             "featurizer": featurizer,
             "featurizer_params": featurizer_params or {}, "seed_size": spec.seed_size,
             "batch_size": spec.batch_size, "budget": spec.budget}
    if done["curves"]:
        done.setdefault("pseudo_label_mix", "equal")  # runs stored before the flag
    other = {k: done[k] for k, v in asked.items() if k in done and done[k] != v}
    if done["curves"] and done.get("model_version", 1) != MODEL_VERSION:  # an older library's
        other["model_version"] = done.get("model_version", 1)
    asked["model_version"] = MODEL_VERSION
    if other:
        raise SystemExit(f"error: {path} holds runs with {other}, not {asked}: give these "
                         "flags their own --out-dir")
    ds = lc.subsample(full, spec.max_rows) if setup == "A" else full
    t0 = time.perf_counter()
    features = set_features(ds, featurizer, featurizer_params or {},
                            out_dir.parent / "sentence_vectors")
    result = simulate(ds, strategies=todo, seed_size=spec.seed_size,
                      batch_size=spec.batch_size, budget=spec.budget, repeats=1,
                      test_size=TEST_SIZE, random_state=repeat, features=features,
                      model_params=model_params)
    done.update({"setup": setup, "dataset": name, "repeat": repeat, "rows": len(ds),
                 "model_version": MODEL_VERSION,
                 "featurizer": featurizer, "featurizer_params": featurizer_params or {},
                 "model_params": model_params or {}, "pseudo_label_mix": mix,
                 "pool": result.dataset_info["n_train"], "seed_size": spec.seed_size,
                 "batch_size": spec.batch_size, "budget": spec.budget})
    env = environment()
    for s, points in result.curves.items():
        done["curves"][s] = [[p.n_labeled, p.accuracy] for p in points]
        done.setdefault("seconds", {})[s] = result.seconds[s]
        done.setdefault("versions", {})[s] = VERSIONS.get(s, 1)
        done.setdefault("environment", {})[s] = env
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(done) + "\n")
    print(f"  {setup} {name} r{repeat} {','.join(todo)}: {time.perf_counter() - t0:.0f} s",
          file=sys.stderr, flush=True)


def environment() -> dict[str, str]:
    """What a run's numbers depend on besides the code: the numeric libraries and the sentence
    model (the same seeds give other curves, by a checkpoint or two, under other versions)."""
    import platform
    from importlib import metadata

    from activelabel.features import sentence_model_version

    env = {"python": platform.python_version()}
    for dist in ("numpy", "scipy", "scikit-learn"):
        env[dist] = metadata.version(dist)
    env["sentence_model"] = sentence_model_version() or "none"
    return env


def environments_note(runs: list[dict[str, Any]]) -> list[str]:
    """A line naming the environments when the runs of one table come from more than one
    (runs stored before they were recorded count as unknown)."""
    seen = sorted({json.dumps(env, sort_keys=True) if env else "unknown"
                   for run in runs for s in run["curves"]
                   for env in [run.get("environment", {}).get(s)]})
    if len(seen) < 2:
        return []
    return ["", f"Note: these runs come from {len(seen)} environments (the same seeds give "
            "curves a checkpoint or two apart under other library versions; compare cells "
            "run in one): " + "; ".join(seen)]


def fmt(share: float | None) -> str:
    return "n.r." if share is None else f"{share:.2f}"


def table(out_dir: Path, strategies: list[str]) -> str:
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for path in sorted(out_dir.glob("*.json")):
        run = json.loads(path.read_text())
        run["curves"] = {s: c for s, c in run["curves"].items() if current(run, s)}
        runs.setdefault((run["setup"], run["dataset"]), []).append(run)
    shown = [s for s in strategies if s != "random"]
    lines = []
    at_share: list[str] = []  # mean accuracy at MAX_SHARE x budget, per set and loop
    for setup in ("A", "B", "C"):
        lines += ["", f"Setup {setup}", "",
                  "| set | rows | pool | seed / batch / budget | budget / pool | repeats | "
                  "random's acc. | " + " | ".join(shown) + " |",
                  "|---|---:|---:|---|---:|---:|---:|" + "---:|" * len(shown)]
        for name in [*lc.SPECS, *HELD_OUT_C]:
            reps = [r for r in runs.get((setup, name), []) if "random" in r["curves"]]
            if not reps:
                continue
            r0 = reps[0]
            curves = {s: [np.asarray(r["curves"][s]) for r in reps if s in r["curves"]]
                      for s in strategies}
            n = min(c.shape[0] for c in curves["random"])
            random_mean = np.mean([c[:n] for c in curves["random"]], axis=0)
            cells = []
            for s in shown:
                own = [(np.asarray(r["curves"][s]), np.asarray(r["curves"]["random"]))
                       for r in reps if s in r["curves"]]
                if not own:
                    cells.append("")
                    continue
                m = min(c.shape[0] for c, _ in own)
                ref_mean = random_mean  # random's over the same repeats as the loop's
                if len(own) < len(reps):
                    k = min(ref.shape[0] for _, ref in own)
                    ref_mean = np.mean([ref[:k] for _, ref in own], axis=0)
                mean = lc.share_of_budget(np.mean([c[:m] for c, _ in own], axis=0),
                                          ref_mean)
                each = sorted((lc.share_of_budget(c, ref) for c, ref in own),
                              key=lambda v: 9.0 if v is None else v)
                cell = fmt(mean)
                if mean is not None and mean <= lc.MAX_SHARE:
                    cell = f"**{cell}**"
                if len(each) > 1:
                    cell += f" ({fmt(each[0])}-{fmt(each[-1])})"
                if len(own) < len(reps):  # fewer repeats than the table's column says
                    cell += f" [{len(own)} rep.]"
                cells.append(cell)
            held = " (held out)" if name in HELD_OUT_C or lc.SPECS[name].held_out else ""
            n_at = lc.MAX_SHARE * r0["budget"]
            accs = []
            for s in strategies:
                m = min((c.shape[0] for c in curves[s]), default=0)
                a = lc.accuracy_at(np.mean([c[:m] for c in curves[s]], axis=0), int(n_at)) \
                    if m else None
                accs.append("" if a is None else f"{a:.3f}")
            at_share.append(f"| {setup} | {name}{held} | {n_at:,.0f} | "
                            f"{random_mean[-1, 1]:.3f} | " + " | ".join(accs) + " |")
            lines.append(
                f"| {name}{held} | {r0['rows']:,} | {r0['pool']:,} | {r0['seed_size']} / "
                f"{r0['batch_size']} / {r0['budget']:,} | {r0['budget'] / r0['pool']:.0%} | "
                f"{len(reps)} | {random_mean[-1, 1]:.3f} | " + " | ".join(cells) + " |")
    lines += ["", f"Mean accuracy at {lc.MAX_SHARE:g} x the budget (a loop meets the bar when "
              "it has random's full-budget accuracy there)", "",
              "| setup | set | labels | random's full-budget acc. | "
              + " | ".join(strategies) + " |",
              "|---|---|---:|---:|" + "---:|" * len(strategies), *at_share]
    lines += environments_note([run for group in runs.values() for run in group])
    return "\n".join(lines)


def share_intervals(out_dir: Path, strategies: list[str], n_boot: int = 2000,
                    level: float = 0.9) -> str:
    """Setup C's share of random's budget with a bootstrap interval over the repeats (each
    resample draws repeats with replacement, the loop and random sampling of a repeat
    together; a resample whose mean curve never reaches random's full-budget accuracy counts
    as beyond the budget), and how often the share is at most the bar."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(out_dir.glob("C_*.json")):
        run = json.loads(path.read_text())
        run["curves"] = {s: c for s, c in run["curves"].items() if current(run, s)}
        runs.setdefault(run["dataset"], []).append(run)
    lines = ["", f"Setup C: share of random's budget, {level:.0%} bootstrap interval over the "
             f"repeats ({n_boot} resamples), and the resamples at most {lc.MAX_SHARE:g}", "",
             "| set | loop | repeats | share | interval | resamples at the bar |",
             "|---|---|---:|---:|---|---:|"]
    rng = np.random.default_rng(0)
    for name in [*lc.SPECS, *HELD_OUT_C]:
        for s in (x for x in strategies if x != "random"):
            pairs = [(np.asarray(r["curves"][s]), np.asarray(r["curves"]["random"]))
                     for r in runs.get(name, []) if s in r["curves"] and "random" in r["curves"]]
            if len(pairs) < 2:
                continue
            m = min(min(c.shape[0], ref.shape[0]) for c, ref in pairs)
            own = np.stack([c[:m] for c, _ in pairs])
            ref = np.stack([r[:m] for _, r in pairs])
            every = np.arange(len(pairs))
            boots = np.array([_pooled_share(own, ref, rng.integers(0, len(pairs), len(pairs)))
                              for _ in range(n_boot)])
            lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
            whole = _pooled_share(own, ref, every)
            lines.append(f"| {name} | {s} | {len(pairs)} | {fmt(_finite(whole))} | "
                         f"{fmt(_finite(lo))}-{fmt(_finite(hi))} | "
                         f"{np.mean(boots <= lc.MAX_SHARE + 1e-9):.0%} |")
    lines += environments_note([run for group in runs.values() for run in group])
    return "\n".join(lines)


def _pooled_share(own: np.ndarray, ref: np.ndarray, idx: np.ndarray) -> float:
    """The share of the mean curves of repeats ``idx`` (inf: the loop never gets there)."""
    got = lc.share_of_budget(own[idx].mean(axis=0), ref[idx].mean(axis=0))
    return np.inf if got is None else got


def _finite(v: float) -> float | None:
    return None if not np.isfinite(v) else float(v)


def show_schedule() -> None:
    """Print every decision of the strategy schedule to stderr."""
    schedule = simulation.schedule_strategy

    def logged(counts: list[int], accuracies: list[float], *, previous: str | None = None
               ) -> tuple[str, str]:
        choice = schedule(counts, accuracies, previous=previous)
        print(f"  auto: {sum(counts)} labels, rarest class {min(counts)}: {choice[0]} "
              f"({choice[1]})",
              file=sys.stderr, flush=True)
        return choice

    simulation.schedule_strategy = logged  # type: ignore[assignment]


def schedule_with(**params: Any) -> None:
    """Run ``auto`` with other schedule parameters (``stable_within``, ``min_per_class``)."""
    simulation.schedule_strategy = partial(  # type: ignore[assignment]
        simulation.schedule_strategy, **params)


def mature_with(name: str) -> None:
    """Run ``auto`` with ``name`` where the schedule says the model is mature (the library's
    :data:`~activelabel.pace.MATURE_STRATEGY`); its early phase unchanged."""
    from activelabel.pace import MATURE_STRATEGY

    base = simulation.schedule_strategy

    def scheduled(counts: Any, accuracies: Any, *, previous: str | None = None,
                  **params: Any) -> tuple[str, str]:
        choice, why = base(counts, accuracies,
                           previous=MATURE_STRATEGY if previous == name else previous, **params)
        return (name if choice == MATURE_STRATEGY else choice), why

    simulation.schedule_strategy = scheduled  # type: ignore[assignment]


def _json_object(text: str) -> dict[str, Any]:
    """A JSON object of keyword arguments."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, e.g. '{{\"C\": 3}}', got "
                                         f"{text!r}")
    return value


def _seed_batch_budget(text: str) -> tuple[int, int, int]:
    """``SEED,BATCH,BUDGET`` as three positive integers, the budget at least the seed."""
    try:
        seed, batch, budget = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected SEED,BATCH,BUDGET as three integers, e.g. 20,20,1000, got {text!r}"
        ) from None
    if min(seed, batch, budget) < 1 or budget < seed:
        raise argparse.ArgumentTypeError(
            f"seed, batch and budget must be >= 1 and the budget >= the seed, got {text!r}")
    return seed, batch, budget


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--setups", default="A,B,C")
    p.add_argument("--datasets", default=",".join(lc.SPECS))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--first-repeat", type=int, default=0)
    p.add_argument("--strategies", default=",".join(STRATEGIES))
    p.add_argument("--out-dir", type=Path, default=OUT_DIR)
    p.add_argument("--table-only", action="store_true")
    p.add_argument("--interval", action="store_true",
                   help="also print setup C's shares with a bootstrap interval over the repeats")
    p.add_argument("--rerun", default="",
                   help="strategies to run again though stored (e.g. after changing one)")
    p.add_argument("--show-schedule", action="store_true",
                   help="print each round of `auto`: labels, the rarest class's, its choice")
    p.add_argument("--stable-within", type=float, default=None,
                   help="auto's holdout stability threshold (default: none, the library's); use "
                        "with its own --out-dir, the stored auto runs are the default's")
    p.add_argument("--min-per-class", type=int, default=None,
                   help="auto's maturity count, labels a class on average (default: the "
                        "library's); use with its own --out-dir")
    p.add_argument("--featurizer-params", type=_json_object, default=None,
                   help="JSON keyword arguments of the data's featurizer (TF-IDF for text), "
                        "e.g. '{\"char_ngrams\": [2, 5]}'; use with its own --out-dir")
    p.add_argument("--featurizer", choices=("auto", "sentence"), default="auto",
                   help="auto: the data's default featurizer (for text with the sentence "
                        "model installed, its vectors beside the TF-IDF); sentence: the "
                        "vectors alone. The vectors are cached beside --out-dir; use each "
                        "with its own --out-dir")
    p.add_argument("--model-params", type=_json_object, default=None,
                   help="JSON keyword arguments of the default model, e.g. "
                        "'{\"fit_intercept\": true}'; use with its own --out-dir")
    p.add_argument("--pseudo-label-mix", choices=PSEUDO_LABEL_MIXES, default="equal",
                   help="how self-training splits its pseudo-labels over the classes: equal "
                        "(the library's), pool (the predicted mix of the unlabeled rows), "
                        "labels (the labels' mix), min (pool, at most equal); use with its "
                        "own --out-dir")
    p.add_argument("--mature-strategy", default=None,
                   help="auto's strategy once mature (default: the library's), e.g. "
                        "cluster_margin_typiclust; use with its own --out-dir")
    p.add_argument("--setup-c", type=_seed_batch_budget, default=None,
                   metavar="SEED,BATCH,BUDGET",
                   help="setup C's seed, batch and budget (default 20,10,300: simulate's); "
                        "use with its own --out-dir")
    args = p.parse_args(argv)
    if args.featurizer == "sentence" and args.featurizer_params:
        p.error("--featurizer-params set the TF-IDF's parameters; the sentence featurizer "
                "takes none here")
    if args.min_per_class is not None and args.min_per_class < 1:
        p.error(f"--min-per-class must be >= 1, got {args.min_per_class}")
    params = {k: v for k, v in (("stable_within", args.stable_within),
                                ("min_per_class", args.min_per_class)) if v is not None}
    if params:
        schedule_with(**params)
    if args.show_schedule:
        show_schedule()
    pseudo_label_mix(args.pseudo_label_mix)
    for extra in BENCHMARK_STRATEGIES:
        REGISTRY[extra.name] = extra
    if args.mature_strategy is not None:
        if args.mature_strategy not in REGISTRY:
            p.error(f"--mature-strategy: unknown strategy {args.mature_strategy!r}; one of "
                    f"{', '.join(sorted(REGISTRY))}")
        mature_with(args.mature_strategy)
    strategies = [s for s in args.strategies.split(",") if s]
    if "random" not in strategies:
        strategies.insert(0, "random")
    names = [n for n in args.datasets.split(",") if n]
    known = [*lc.SPECS, *HELD_OUT_C]
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise SystemExit(f"error: unknown dataset {unknown}; choose from {', '.join(known)}")
    setups = [x for x in args.setups.split(",") if x]
    if set(setups) - {"A", "B", "C"}:
        raise SystemExit(f"error: unknown setup {sorted(set(setups) - {'A', 'B', 'C'})}; "
                         "choose from A, B, C")
    c_only = sorted(set(names) & set(HELD_OUT_C))
    if c_only and set(setups) - {"C"}:
        raise SystemExit(f"error: {', '.join(c_only)} run in setup C only; pass --setups C")
    if not args.table_only:
        simulation._query = _query_with_labeled
        try:
            for repeat in range(args.first_repeat, args.repeats):
                for setup in setups:
                    for name in names:
                        run_one(setup, name, repeat, strategies, args.out_dir,
                                frozenset(x for x in args.rerun.split(",") if x),
                                args.featurizer_params, args.featurizer, args.model_params,
                                args.setup_c or CLI_DEFAULTS, args.pseudo_label_mix)
        finally:
            simulation._query = _library_query
            pseudo_label_mix("equal")  # the library's split again, for a caller of main()
    print(table(args.out_dir, strategies))
    if args.interval:
        print(share_intervals(args.out_dir, strategies))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
