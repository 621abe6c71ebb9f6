"""What the pages read beside the resources, without HTTP: the labeled items (with their
consensus) that related examples and label counts come from, kept until the labels change."""

from __future__ import annotations

from activelabel.labeling.insights import labeled_rows
from activelabel.labeling.projects import change_project
from activelabel.store import Storage, get_project
from tests.support.projects import label_rows, new_project, text_rows


def test_labeled_rows_follow_every_new_label_and_the_consensus_setting(
        engine_storage: Storage) -> None:
    seeded = new_project(engine_storage, labels=["a", "b"], rows=text_rows(6))
    label_rows(engine_storage, seeded, [0, 1], ["a", "b"])
    with engine_storage.read_sessions() as session:
        first = labeled_rows(session, get_project(session, seeded.project_id))
        again = labeled_rows(session, get_project(session, seeded.project_id))
    assert {row: info["label"] for row, info in first.items()} == {0: "a", 1: "b"}
    assert again is first  # unchanged labels: read once
    label_rows(engine_storage, seeded, [2], ["b"])
    with engine_storage.read_sessions() as session:
        later = labeled_rows(session, get_project(session, seeded.project_id))
    assert {row: info["label"] for row, info in later.items()} == {0: "a", 1: "b", 2: "b"}
    with engine_storage.sessions() as session, session.begin():
        change_project(session, get_project(session, seeded.project_id), seeded.owner_id,
                       {"settings": {"consensus": "dawid_skene"}})
    with engine_storage.read_sessions() as session:
        method_changed = labeled_rows(session, get_project(session, seeded.project_id))
    assert method_changed is not later
