"""Projects as owners change them, without HTTP: finding one by id or name, the rules of a
change (labels only added, names unique, every change audited), the last owner, and the counts
the stats endpoint and `activelabel status` share."""

from __future__ import annotations

import pytest

from activelabel.labeling.projects import change_project, find_project, remove_role, set_role
from activelabel.labeling.stats import project_counts
from activelabel.store import (
    Conflict,
    InvalidInput,
    NotFound,
    Storage,
    create_user,
    get_project,
    get_user,
    list_audit,
    role_of,
)
from tests.support.projects import label_rows, new_project, text_rows


def test_find_project_by_id_then_by_name_and_unknown_lists_the_projects(
        engine_storage: Storage) -> None:
    seeded = new_project(engine_storage, labels=["a", "b"])
    with engine_storage.read_sessions() as session:
        project = get_project(session, seeded.project_id)
        assert find_project(session, str(seeded.project_id)).id == seeded.project_id
        assert find_project(session, f"  {project.name} ").id == seeded.project_id
        with pytest.raises(NotFound, match="projects: .*" + project.name):
            find_project(session, "no-such-project")
        with pytest.raises(NotFound):  # beyond any id column: not found, never a crash
            find_project(session, "9" * 30)


def test_a_change_keeps_labels_names_unique_and_is_audited(engine_storage: Storage) -> None:
    first = new_project(engine_storage, labels=["a", "b"])
    second = new_project(engine_storage, labels=["a", "b"])
    with engine_storage.sessions() as session, session.begin():
        project = get_project(session, first.project_id)
        other = get_project(session, second.project_id)
        with pytest.raises(InvalidInput, match="added, not removed"):
            change_project(session, project, first.owner_id, {"labels": ["a"]})
        with pytest.raises(Conflict, match="already exists"):
            change_project(session, project, first.owner_id, {"name": other.name})
        with pytest.raises(InvalidInput, match="cannot change task"):
            change_project(session, project, first.owner_id, {"task": "multilabel"})
        with pytest.raises(InvalidInput, match="nothing to change"):
            change_project(session, project, first.owner_id, {"name": None})
        version = project.guidelines_version
        change_project(session, project, first.owner_id,
                       {"labels": ["a", "b", "c"], "settings": {"batch_size": 7}})
        assert project.labels == ["a", "b", "c"]
        assert project.guidelines_version == version + 1
        assert project.settings["batch_size"] == 7
        assert project.settings["overlap"] == 1  # merged, not replaced
        event = list_audit(session, project_id=project.id, limit=1)[0]
        assert (event.action, event.actor_id) == ("update", first.owner_id)
        assert event.before is not None
        assert event.after is not None
        assert (event.before["labels"], event.after["labels"]) == (["a", "b"], ["a", "b", "c"])


def test_the_last_owner_stays_owner(engine_storage: Storage) -> None:
    seeded = new_project(engine_storage, labels=["a", "b"])
    with engine_storage.sessions() as session, session.begin():
        helper = create_user(session, f"helper_{seeded.project_id}")
        session.flush()
        owner_name = get_user(session, seeded.owner_id).username
        with pytest.raises(Conflict, match="last owner"):
            set_role(session, seeded.project_id, seeded.owner_id, owner_name, "annotator")
        with pytest.raises(Conflict, match="last owner"):
            remove_role(session, seeded.project_id, seeded.owner_id, owner_name)
        set_role(session, seeded.project_id, seeded.owner_id, helper.username, "owner")
        set_role(session, seeded.project_id, seeded.owner_id, owner_name, "reviewer")
        assert role_of(session, seeded.project_id, seeded.owner_id) == "reviewer"
        with pytest.raises(InvalidInput, match="does not exist"):
            set_role(session, seeded.project_id, seeded.owner_id, "nobody_here", "annotator")


def test_counts_per_split_backlog_and_labeled(engine_storage: Storage) -> None:
    rows = text_rows(12)
    for row in rows[:3]:
        row["split"] = "holdout"
    seeded = new_project(engine_storage, labels=["a", "b"], rows=rows)
    label_rows(engine_storage, seeded, [0, 1, 5, 6], ["a", "b", "a", "b"])
    with engine_storage.read_sessions() as session:
        counts = project_counts(session, seeded.project_id)
    assert counts.items == {"pool": 9, "holdout": 3, "gold": 0}
    assert counts.labeled == {"pool": 2, "holdout": 2, "gold": 0}
    assert (counts.n_items, counts.n_labeled, counts.backlog) == (12, 4, 7)
    assert counts.open_flags == 0


def test_class_weights_must_name_the_project_labels_on_create_and_change(
        engine_storage: Storage) -> None:
    with pytest.raises(InvalidInput, match="labels the project does not have: c"):
        new_project(engine_storage, labels=["a", "b"], settings={"class_weights": {"c": 2}})
    seeded = new_project(engine_storage, labels=["a", "b"], settings={"class_weights": {"a": 2}})
    with engine_storage.sessions() as session, session.begin():
        project = get_project(session, seeded.project_id)
        with pytest.raises(InvalidInput, match="labels the project does not have: c"):
            change_project(session, project, seeded.owner_id,
                           {"settings": {"class_weights": {"c": 2}}})
        change_project(session, project, seeded.owner_id,
                       {"labels": ["a", "b", "c"], "settings": {"class_weights": {"c": 2}}})
        assert project.settings["class_weights"] == {"c": 2.0}
