"""Rounds train on consensus labels: majority vote, or Dawid-Skene when the project says so."""

from __future__ import annotations

import numpy as np

from activelabel.labeling.consensus import collect_votes, votes_consensus
from activelabel.labeling.rounds import _consensus_rows, _Snapshot


def _crowd() -> tuple[dict[int, list[list[str]]], dict[int, list[int]]]:
    """Rows 0-29: annotators 1 and 2 give the truth, 3 is wrong on every other row. Row 30:
    annotator 1 says 'a', annotator 3 says 'b' (a tie for the majority)."""
    rng = np.random.default_rng(0)
    labels: dict[int, list[list[str]]] = {}
    who: dict[int, list[int]] = {}
    for row in range(30):
        truth = str(rng.choice(["a", "b"]))
        other = "b" if truth == "a" else "a"
        labels[row] = [[truth], [truth], [other if row % 2 else truth]]
        who[row] = [1, 2, 3]
    labels[30], who[30] = [["a"], ["b"]], [1, 3]
    return labels, who


def test_dawid_skene_breaks_a_tie_towards_the_reliable_annotator() -> None:
    labels, who = _crowd()
    votes = collect_votes(((r, w, given) for r in labels
                           for w, given in zip(who[r], labels[r], strict=True)), ["a", "b"])
    found = votes_consensus(votes, multilabel=False, method="dawid_skene").as_dict()
    assert found[30] == "a"
    assert all(found[r] == labels[r][0][0] for r in range(30))


def test_the_consensus_setting_chooses_the_method() -> None:
    labels, who = _crowd()

    def snap(method: str) -> _Snapshot:
        return _Snapshot(project_id=1, task="classification", classes=["a", "b"],
                         settings={"consensus": method}, item_ids=np.arange(31),
                         splits=np.asarray(["pool"] * 31), labels=labels, n_labels=31,
                         active_version_id=None, previous=None, annotators=who)

    assert 30 not in _consensus_rows(snap("majority"))  # the tie waits for review
    assert _consensus_rows(snap("dawid_skene"))[30] == "a"


def test_a_labeled_gold_item_trains_on_its_known_answer() -> None:
    labels, who = _crowd()
    base = _Snapshot(project_id=1, task="classification", classes=["a", "b"], settings={},
                     item_ids=np.arange(32), splits=np.asarray(["pool"] * 32), labels=labels,
                     n_labels=31, active_version_id=None, previous=None, annotators=who,
                     gold={30: ["b"], 31: ["a"]})
    truth = _consensus_rows(base)
    assert truth[30] == "b"  # the tie is settled by the known answer
    assert 31 not in truth  # nobody labeled it yet: not part of the training set
