"""Pool-based active learning against an oracle: how many labels each strategy needs.

Every row of a fully labeled :class:`~activelabel.datasets.Dataset` starts hidden. Per repeat the
data is split into a training pool and a test set; a seed batch is picked from the pool's
embeddings alone; then each strategy runs its own loop (train, evaluate on the test set, score the
pool, reveal the labels of the next batch) until the label budget is spent. Curves are averaged
over repeats; the full-data model (trained on the whole pool) sets the target accuracy.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.model_selection import train_test_split

from activelabel import metrics
from activelabel.datasets import Dataset
from activelabel.features import FeatureSet
from activelabel.models import (
    MODEL_NAMES,
    BootstrapCommittee,
    is_import_path,
    make_model,
    plugin_names,
    pseudo_label_rows,
    pseudo_label_share,
)
from activelabel.pace import schedule_strategy
from activelabel.strategies import (
    COMMITTEE_MEMBERS,
    COMMITTEE_STRATEGIES,
    STRATEGIES,
    cold_start,
    select,
    strategy_inputs,
)

__all__ = [
    "COMMITTEE_STRATEGIES",
    "TARGET_FRACTION",
    "CurvePoint",
    "SimulationResult",
    "SimulationStep",
    "curve_grid",
    "simulate",
]

#: The target accuracy is this fraction of the full-data model's accuracy.
TARGET_FRACTION = 0.95
#: The strategy schedule (:func:`activelabel.pace.schedule_strategy`), as a project's "auto".
AUTO = "auto"

IntArray = NDArray[np.intp]


@dataclass(frozen=True)
class SimulationStep:
    """Progress report passed to ``on_step`` after each evaluated point of a curve."""

    strategy: str
    repeat: int
    n_labeled: int
    accuracy: float
    done: int
    total: int


@dataclass(frozen=True)
class CurvePoint:
    """One point of a mean learning curve: test metrics after ``n_labeled`` labels."""

    n_labeled: int
    accuracy: float
    accuracy_std: float
    macro_f1: float
    ece: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_labeled": self.n_labeled,
            "accuracy": self.accuracy,
            "accuracy_std": self.accuracy_std,
            "macro_f1": self.macro_f1,
            "ece": self.ece,
        }


@dataclass
class SimulationResult:
    """Mean curves over repeats and what they say about label efficiency.

    ``labels_to_target[s]`` is the first ``n_labeled`` where the mean accuracy curve of ``s``
    reaches ``target`` (None if never); ``labels_to_target_per_repeat[s]`` the same per repeat,
    which shows the spread. ``labels_saved_vs_random[s]`` compares with ``"random"`` when it ran.
    """

    dataset: str
    config: dict[str, Any]
    curves: dict[str, list[CurvePoint]]
    full_data_accuracy: float
    full_data_accuracy_std: float
    target: float
    labels_to_target: dict[str, int | None]
    labels_to_target_per_repeat: dict[str, list[int | None]]
    area_under_curve: dict[str, float]
    labels_saved_vs_random: dict[str, float | None]
    seconds: dict[str, float]
    dataset_info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document written as ``results.json``."""
        return {
            "dataset": self.dataset,
            "config": dict(self.config),
            "curves": {s: [p.to_dict() for p in pts] for s, pts in self.curves.items()},
            "full_data_accuracy": self.full_data_accuracy,
            "labels_to_target": {
                s: {"target": self.target, "n_labeled": n} for s, n in self.labels_to_target.items()
            },
            "full_data_accuracy_std": self.full_data_accuracy_std,
            "labels_to_target_per_repeat": self.labels_to_target_per_repeat,
            "area_under_curve": self.area_under_curve,
            "labels_saved_vs_random": self.labels_saved_vs_random,
            "seconds": self.seconds,
            "dataset_info": self.dataset_info,
        }


@dataclass(frozen=True)
class _Config:
    strategies: tuple[str, ...]
    seed_size: int
    batch_size: int
    budget: int
    repeats: int
    test_size: float
    random_state: int
    model: str
    model_params: dict[str, Any] = field(default_factory=dict)
    featurizer: str = "auto"
    featurizer_params: dict[str, Any] = field(default_factory=dict)

    def make(self, classes: list[int], random_state: int | None) -> Any:
        """A fresh, unfitted model over ``classes``."""
        return make_model(
            self.model, classes=classes, random_state=random_state, **self.model_params
        )


@dataclass(frozen=True)
class _Split:
    """One repeat's data: the training pool and the test set, features already computed."""

    X_train: Any
    y_train: IntArray
    emb_train: NDArray[np.floating[Any]]
    X_test: Any
    y_test: IntArray
    seed: IntArray


def simulate(
    dataset: Dataset,
    *,
    strategies: Sequence[str],
    seed_size: int,
    batch_size: int,
    budget: int,
    repeats: int = 3,
    test_size: float = 0.3,
    random_state: int = 0,
    model: str = "logistic_regression",
    on_step: Callable[[SimulationStep], None] | None = None,
    features: FeatureSet | None = None,
    model_params: Mapping[str, Any] | None = None,
    featurizer: str = "auto",
    featurizer_params: Mapping[str, Any] | None = None,
) -> SimulationResult:
    """Run the active-learning loop with an oracle for each strategy, ``repeats`` times.

    ``budget`` counts every label, the seed batch included; the last batch is clipped to it and a
    run stops early when the pool runs out. ``featurizer`` and ``featurizer_params`` choose the
    features (:meth:`~activelabel.datasets.Dataset.features`); ``features`` may be passed instead
    to reuse a featurization. ``model`` is a name of :data:`~activelabel.models.MODEL_NAMES` and
    ``model_params`` go to :func:`~activelabel.models.make_model` (e.g. ``{"C": 10}``,
    ``{"calibrate": "auto"}``). Raises ValueError with a one-line message on bad input.
    """
    cfg = _check_config(
        strategies, seed_size, batch_size, budget, repeats, test_size, random_state, model
    )
    cfg = replace(cfg, model_params=dict(model_params or {}), featurizer=featurizer,
                  featurizer_params=dict(featurizer_params or {}))
    _check_model(cfg)
    n_train = _check_dataset(dataset, cfg)
    feats = features if features is not None else dataset.features(
        cfg.featurizer, **cfg.featurizer_params)
    grid = curve_grid(cfg.seed_size, cfg.batch_size, cfg.budget, n_train)
    progress = _Progress(on_step, cfg.repeats * len(cfg.strategies) * len(grid))
    runs: dict[str, list[NDArray[np.float64]]] = {s: [] for s in cfg.strategies}
    seconds = dict.fromkeys(cfg.strategies, 0.0)
    full_acc: list[float] = []
    for repeat in range(cfg.repeats):
        split = _split(dataset, feats, cfg, repeat)
        full_acc.append(_full_data_accuracy(split, dataset.n_classes, cfg, repeat))
        for name in cfg.strategies:
            start = time.perf_counter()
            report = progress.reporter(name, repeat)
            runs[name].append(_run_strategy(split, name, dataset.n_classes, cfg, repeat, report))
            seconds[name] += time.perf_counter() - start
    return _summarize(dataset, cfg, runs, full_acc, seconds, n_train)


class _Progress:
    """Counts evaluated curve points and forwards each to the ``on_step`` callback."""

    def __init__(self, on_step: Callable[[SimulationStep], None] | None, total: int) -> None:
        self.on_step = on_step
        self.total = total
        self.done = 0

    def reporter(self, strategy: str, repeat: int) -> Callable[[int, float], None]:
        def report(n_labeled: int, accuracy: float) -> None:
            self.done += 1
            if self.on_step is not None:
                step = SimulationStep(strategy, repeat, n_labeled, accuracy, self.done, self.total)
                self.on_step(step)

        return report


def curve_grid(seed_size: int, batch_size: int, budget: int, n_train: int) -> list[int]:
    """The ``n_labeled`` of each curve point: seed, seed + batch, ..., up to budget or pool size."""
    stop = min(budget, n_train)
    points = [min(seed_size, stop)]
    while points[-1] < stop:
        points.append(min(points[-1] + batch_size, stop))
    return points


# ---- validation ----------------------------------------------------------------------------------


def _check_config(
    strategies: Sequence[str],
    seed_size: int,
    batch_size: int,
    budget: int,
    repeats: int,
    test_size: float,
    random_state: int,
    model: str,
) -> _Config:
    if isinstance(strategies, str):
        strategies = [s.strip() for s in strategies.split(",")]
    names = tuple(dict.fromkeys(s for s in strategies if s))
    if not names:
        raise ValueError(f"no strategies given; choose from: {', '.join(STRATEGIES)}")
    unknown = [s for s in names if s not in STRATEGIES and s != AUTO]
    if unknown:
        raise ValueError(
            f"unknown strategy {', '.join(map(repr, unknown))}; choose from: "
            f"{', '.join([*STRATEGIES, AUTO])}"
        )
    _check_int("seed size", seed_size, 1)
    _check_int("batch size", batch_size, 1)
    _check_int("repeats", repeats, 1)
    _check_int("budget", budget, seed_size)
    if isinstance(random_state, bool) or not isinstance(random_state, int | np.integer):
        raise ValueError(f"random state must be an integer, got {random_state!r}")
    if not isinstance(test_size, float | int) or not 0.0 < float(test_size) < 1.0:
        raise ValueError(f"test size must be a fraction strictly between 0 and 1, got {test_size}")
    return _Config(
        names, seed_size, batch_size, budget, repeats, float(test_size), int(random_state), model
    )


def _check_model(cfg: _Config) -> None:
    """The model name is known and takes ``model_params`` (checked before any work)."""
    if cfg.model not in MODEL_NAMES and not is_import_path(cfg.model) \
            and cfg.model not in plugin_names():
        raise ValueError(f"unknown model {cfg.model!r}; choose from: {', '.join(MODEL_NAMES)}, "
                         "an activelabel.models entry point or an import path module:factory")
    try:
        estimator = cfg.make([0, 1], cfg.random_state).estimator
        if hasattr(estimator, "_parameter_constraints"):  # scikit-learn's declared bounds
            estimator._validate_params()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad parameters for model {cfg.model!r}: {exc}") from None


def _check_int(what: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    if value < minimum:
        hint = " (the budget counts the seed labels)" if what == "budget" else ""
        raise ValueError(f"{what} must be at least {minimum}, got {value}{hint}")


def _check_dataset(dataset: Dataset, cfg: _Config) -> int:
    """Return the number of training rows per split after checking the dataset can be simulated."""
    n = len(dataset)
    present = np.unique(dataset.y)
    if present.shape[0] < 2:
        only = dataset.classes[int(present[0])] if present.shape[0] else "none"
        raise ValueError(
            f"dataset {dataset.name!r} has a single class ({only!r} in all {n} rows); "
            "simulation needs at least 2 classes"
        )
    n_test = math.ceil(cfg.test_size * n)
    n_train = n - n_test
    if n_test < 1 or n_train < cfg.seed_size:
        raise ValueError(
            f"only {n_train} training rows ({n} rows, test size {cfg.test_size:g}) for a seed "
            f"of {cfg.seed_size}; lower the seed size or the test size"
        )
    return n_train


# ---- one repeat ----------------------------------------------------------------------------------


def _split(dataset: Dataset, feats: FeatureSet, cfg: _Config, repeat: int) -> _Split:
    """Stratified train/test split seeded by ``random_state + repeat``, plus the seed batch."""
    rs = cfg.random_state + repeat
    idx = np.arange(len(dataset))
    try:
        train, test = train_test_split(
            idx, test_size=cfg.test_size, stratify=dataset.y, random_state=rs
        )
    except ValueError:  # a class too small to stratify: plain random split
        train, test = train_test_split(idx, test_size=cfg.test_size, random_state=rs)
    train, test = np.sort(train), np.sort(test)
    emb = np.asarray(feats.embeddings)[train]
    seed = np.asarray(cold_start(emb, cfg.seed_size, random_state=rs), dtype=np.intp)
    return _Split(
        X_train=feats.X[train],
        y_train=dataset.y[train],
        emb_train=emb,
        X_test=feats.X[test],
        y_test=dataset.y[test],
        seed=seed,
    )


def _full_data_accuracy(split: _Split, n_classes: int, cfg: _Config, repeat: int) -> float:
    classes = list(range(n_classes))
    clf = cfg.make(classes, cfg.random_state + repeat)
    clf.fit(split.X_train, split.y_train)
    return float(metrics.evaluate(clf.predict_proba(split.X_test), split.y_test)["accuracy"])


def _run_strategy(
    split: _Split,
    name: str,
    n_classes: int,
    cfg: _Config,
    repeat: int,
    report: Callable[[int, float], None],
) -> NDArray[np.float64]:
    """One strategy's loop from the seed to the budget; rows (n_labeled, accuracy, macro_f1, ece)."""
    rs = cfg.random_state + repeat
    rng = np.random.default_rng([rs, zlib.crc32(name.encode())])
    classes = list(range(n_classes))
    labeled = np.zeros(split.y_train.shape[0], dtype=bool)
    labeled[split.seed] = True
    stop = min(cfg.budget, labeled.shape[0])
    rows: list[tuple[float, float, float, float]] = []
    scheduled: str | None = None  # strategy auto: the schedule's last choice
    while True:
        lab = np.flatnonzero(labeled)
        clf = cfg.make(classes, rs)
        unlabeled = None if pseudo_label_share(clf.pseudo_labels, lab.shape[0]) == 0 else (
            split.X_train[pseudo_label_rows(np.flatnonzero(~labeled), rs)])
        clf.fit(split.X_train[lab], split.y_train[lab], unlabeled=unlabeled)
        scores = metrics.evaluate(clf.predict_proba(split.X_test), split.y_test)
        rows.append((lab.shape[0], scores["accuracy"], scores["macro_f1"], scores["ece"]))
        report(int(lab.shape[0]), float(scores["accuracy"]))
        if lab.shape[0] >= stop:
            return np.asarray(rows, dtype=np.float64)
        pool = np.flatnonzero(~labeled)
        k = min(cfg.batch_size, stop - lab.shape[0], pool.shape[0])
        seed = int(rng.integers(2**31 - 1))
        if name == AUTO:  # the test set stands in for the holdout
            counts = np.bincount(split.y_train[lab], minlength=n_classes)
            scheduled, _ = schedule_strategy(counts.tolist(), [r[1] for r in rows],
                                             previous=scheduled)
        picked = _query(split, scheduled if name == AUTO and scheduled else name, k, clf,
                        lab, pool, classes, seed, cfg)
        labeled[pool[picked]] = True


def _query(
    split: _Split,
    name: str,
    k: int,
    clf: Any,
    lab: IntArray,
    pool: IntArray,
    classes: list[int],
    seed: int,
    cfg: _Config,
) -> IntArray:
    """Ask strategy ``name`` for ``k`` pool positions, computing only the inputs it reads
    (:func:`~activelabel.strategies.strategy_inputs`)."""

    def committee_probs() -> Any:
        committee = BootstrapCommittee(cfg.make(classes, None), n_members=COMMITTEE_MEMBERS,
                                       classes=classes, random_state=seed)
        committee.fit(split.X_train[lab], split.y_train[lab].tolist())
        return committee.predict_proba(split.X_train[pool])

    kwargs = strategy_inputs(STRATEGIES[name], embeddings=split.emb_train[pool],
                             probs=lambda: clf.predict_proba(split.X_train[pool]),
                             committee_probs=committee_probs,
                             labeled_embeddings=lambda: split.emb_train[lab])
    picked = np.asarray(select(name, k, random_state=seed, **kwargs), dtype=np.intp)
    return picked[:k]


# ---- summary ---------------------------------------------------------------------------------


def _summarize(
    dataset: Dataset,
    cfg: _Config,
    runs: dict[str, list[NDArray[np.float64]]],
    full_acc: list[float],
    seconds: dict[str, float],
    n_train: int,
) -> SimulationResult:
    full = float(np.mean(full_acc))
    target = TARGET_FRACTION * full
    curves = {name: _mean_curve(reps) for name, reps in runs.items()}
    to_target: dict[str, int | None] = {}
    per_repeat: dict[str, list[int | None]] = {}
    auc: dict[str, float] = {}
    for name, pts in curves.items():
        n = [p.n_labeled for p in pts]
        acc = [p.accuracy for p in pts]
        to_target[name] = metrics.labels_to_target(n, acc, target)
        per_repeat[name] = [metrics.labels_to_target(r[:, 0], r[:, 1], target) for r in runs[name]]
        auc[name] = float(metrics.area_under_learning_curve(n, acc))
    saved: dict[str, float | None] = {}
    if "random" in to_target:
        base = to_target["random"]
        saved = {
            s: None if n is None or base is None else metrics.labels_saved(n, base)
            for s, n in to_target.items()
        }
    return SimulationResult(
        dataset=dataset.name,
        config=_config_dict(cfg),
        curves=curves,
        full_data_accuracy=full,
        full_data_accuracy_std=float(np.std(full_acc)),
        target=target,
        labels_to_target=to_target,
        labels_to_target_per_repeat=per_repeat,
        area_under_curve=auc,
        labels_saved_vs_random=saved,
        seconds={s: round(v, 3) for s, v in seconds.items()},
        dataset_info={
            "kind": dataset.kind,
            "n_items": len(dataset),
            "n_train": n_train,
            "n_test": len(dataset) - n_train,
            "classes": list(dataset.classes),
        },
    )


def _config_dict(cfg: _Config) -> dict[str, Any]:
    """Every parameter of the run; ``model_params`` and ``featurizer_params`` only when some
    were given."""
    out = asdict(cfg)
    out["strategies"] = list(cfg.strategies)
    for optional in ("model_params", "featurizer_params"):
        if not out[optional]:
            del out[optional]
    return out


def _mean_curve(reps: list[NDArray[np.float64]]) -> list[CurvePoint]:
    """Average (n_points, 4) curves over repeats, point by point (truncated to the shortest)."""
    n_points = min(r.shape[0] for r in reps)
    stack = np.stack([r[:n_points] for r in reps])  # (repeats, n_points, 4)
    mean, std = stack.mean(axis=0), stack.std(axis=0)
    return [
        CurvePoint(
            n_labeled=int(mean[i, 0]),
            accuracy=float(mean[i, 1]),
            accuracy_std=float(std[i, 1]),
            macro_f1=float(mean[i, 2]),
            ece=float(mean[i, 3]),
        )
        for i in range(n_points)
    ]
