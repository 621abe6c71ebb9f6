"""strategy_inputs: every strategy gets what it reads, and nothing else is computed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from activelabel.strategies import (
    COMMITTEE_STRATEGIES,
    STRATEGIES,
    get_strategy,
    strategy_inputs,
)

from .conftest import make_pool


def _counted(calls: Counter[str], name: str, value: Any) -> Callable[[], Any]:
    def thunk() -> Any:
        calls[name] += 1
        return value
    return thunk


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_each_strategy_is_given_what_it_reads_and_nothing_else_is_computed(name: str) -> None:
    probs, emb = make_pool(n=120)
    committee = np.stack([np.roll(probs, s, axis=1) for s in range(3)])
    calls: Counter[str] = Counter()
    cls = STRATEGIES[name]
    kwargs = strategy_inputs(cls, embeddings=emb, probs=_counted(calls, "probs", probs),
                             committee_probs=_counted(calls, "committee", committee),
                             labeled_embeddings=_counted(calls, "labeled", emb[:10]))
    wanted = {"probs": cls.needs_probs and not cls.needs_committee,
              "committee": cls.needs_committee, "labeled": cls.needs_embeddings}
    assert calls == Counter(k for k, read in wanted.items() if read)
    assert (name in COMMITTEE_STRATEGIES) == cls.needs_committee
    chosen = get_strategy(name).query(7, random_state=0, **kwargs)
    assert len(set(chosen.indices.tolist())) == 7


def test_nothing_labeled_yet_leaves_labeled_embeddings_out() -> None:
    _, emb = make_pool(n=50)
    kwargs = strategy_inputs(STRATEGIES["kcenter"], embeddings=emb, probs=lambda: None,
                             labeled_embeddings=None)
    assert set(kwargs) == {"embeddings"}


def test_a_committee_strategy_without_a_committee_is_refused_with_the_way_out() -> None:
    _, emb = make_pool(n=50)
    with pytest.raises(ValueError, match=r"committee_probs=.*'entropy'"):
        strategy_inputs(STRATEGIES["bald"], embeddings=emb, probs=lambda: None)
