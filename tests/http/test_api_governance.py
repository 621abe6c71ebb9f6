"""Governance over HTTP: guideline versions, the decision log beside rounds, snapshots (export,
restore without deleting), calibration sessions, purging payloads, the audit trail as a file and
that no route can change it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import func, select

from activelabel.http.app import create_app
from activelabel.labeling.featurize import ensure_features
from activelabel.store.models import AuditEvent
from tests.support.api import Api, Person, assert_error


def _items(api: Api, pid: int, owner: Person) -> list[int]:
    return [i["id"] for i in api.get(f"/projects/{pid}/items", owner).json()["items"]]


def _label(api: Api, pid: int, who: Person, item_id: int, label: Any) -> dict[str, Any]:
    answer = api.post(f"/projects/{pid}/annotations", who,
                      json={"item_id": item_id, "labels": [label]})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def test_guideline_versions_are_kept_and_labels_record_the_version(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=2, guidelines="v1: be kind")
    ann = api.member(pid, "annotator")
    items = _items(api, pid, owner)
    assert _label(api, pid, ann, items[0], "pos")["guidelines_version"] == 1
    api.patch(f"/projects/{pid}", owner, json={"guidelines": "v2: be precise"})
    assert _label(api, pid, ann, items[1], "neg")["guidelines_version"] == 2
    versions = api.get(f"/projects/{pid}/versions", ann).json()
    assert [(v["version"], v["guidelines"]) for v in versions] == [(1, "v1: be kind"),
                                                                    (2, "v2: be precise")]
    assert versions[1]["author"] == owner.username
    assert versions[0]["labels"] == ["pos", "neg"]


def test_decisions_are_logged_and_shown_beside_the_rounds_they_affect(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=4)
    reviewer = api.member(pid, "reviewer")
    first = api.post(f"/projects/{pid}/decisions", owner, json={
        "topic": "strategy", "text": "margin: classes are balanced"})
    assert first.status_code == 201, first.text
    assert first.json()["from_round"] == 1
    api.post(f"/projects/{pid}/decisions", owner, json={
        "topic": "strategy", "text": "entropy from round 3", "from_round": 3})
    assert_error(api.post(f"/projects/{pid}/decisions", reviewer,
                          json={"topic": "x", "text": "y"}), 403, "forbidden")
    assert_error(api.post(f"/projects/{pid}/decisions", owner,
                          json={"topic": "x", "text": "   "}), 400, "invalid_input")
    log = api.get(f"/projects/{pid}/decisions", reviewer).json()
    assert [d["text"] for d in log] == ["margin: classes are balanced", "entropy from round 3"]
    assert api.post(f"/projects/{pid}/rounds", owner).status_code == 202
    (round_one,) = api.get(f"/projects/{pid}/rounds", owner).json()
    assert [d["text"] for d in round_one["decisions"]] == ["margin: classes are balanced"]


def test_snapshot_freezes_labels_and_restore_adds_revisions(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=3, private_fields=["secret"])
    ann = api.member(pid, "annotator")
    items = _items(api, pid, owner)
    _label(api, pid, ann, items[0], "pos")
    _label(api, pid, ann, items[1], "neg")
    made = api.post(f"/projects/{pid}/snapshots", owner, json={"note": "before review"})
    assert made.status_code == 201, made.text
    snap = made.json()
    assert snap["n_items"] == 2
    assert snap["guidelines_version"] == 1
    exported = api.get(f"/projects/{pid}/snapshots/{snap['id']}/export", owner)
    assert exported.status_code == 200
    header, *lines = exported.text.splitlines(keepends=True)
    assert json.loads(header)["snapshot"]["content_hash"] == snap["content_hash"]
    assert hashlib.sha256("".join(lines).encode()).hexdigest() == snap["content_hash"]
    rows = [json.loads(line) for line in lines]
    assert [r["consensus"] for r in rows] == ["pos", "neg"]
    assert all("secret" not in r["data"] for r in rows)
    # Labels change after the snapshot; restoring brings them back as new revisions.
    _label(api, pid, ann, items[0], "neg")
    restored = api.post(f"/projects/{pid}/snapshots/{snap['id']}/restore", owner)
    assert restored.status_code == 200, restored.text
    assert restored.json() == {"snapshot_id": snap["id"], "restored": 1, "unchanged": 1,
                               "missing": 0}
    history = api.get(f"/projects/{pid}/items/{items[0]}", owner).json()["history"]
    assert [r["labels"] for r in history] == [["pos"], ["neg"], ["pos"]]
    assert history[-1]["reason"] == f"restore snapshot {snap['id']}"
    assert history[-1]["annotator_id"] == ann.id
    assert len(api.get(f"/projects/{pid}/snapshots", owner).json()) == 1
    assert_error(api.post(f"/projects/{pid}/snapshots", ann), 403, "forbidden")


def test_a_tampered_snapshot_is_refused(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=1)
    _label(api, pid, owner, _items(api, pid, owner)[0], "pos")
    snap = api.post(f"/projects/{pid}/snapshots", owner).json()
    with api.storage.sessions() as session:
        from activelabel.store.models import Snapshot

        path = session.get(Snapshot, snap["id"]).path  # type: ignore[union-attr]
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"item_id": 1}\n')
    assert_error(api.get(f"/projects/{pid}/snapshots/{snap['id']}/export", owner), 409,
                 "conflict")
    assert_error(api.post(f"/projects/{pid}/snapshots/{snap['id']}/restore", owner), 409,
                 "conflict")


def test_calibration_report_shows_who_disagrees_and_the_guidelines_seen(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=4, settings={"overlap": 1})
    a, b = api.member(pid, "annotator", "cal_a"), api.member(pid, "annotator", "cal_b")
    items = _items(api, pid, owner)
    made = api.post(f"/projects/{pid}/calibrations", owner,
                    json={"name": "week 1", "item_ids": items[:2]})
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    # Both annotators get both calibration items despite overlap 1.
    for who in (a, b):
        ids = {t["item"]["id"] for t in api.get(f"/projects/{pid}/tasks/next", who,
                                                params={"n": 4}).json()}
        assert set(items[:2]) <= ids
    _label(api, pid, a, items[0], "pos")
    _label(api, pid, b, items[0], "pos")
    _label(api, pid, a, items[1], "pos")
    _label(api, pid, b, items[1], "neg")
    # Labeled already (with an overlap of 1), the calibration items still go to a newcomer.
    late = api.member(pid, "annotator", "cal_c")
    ids = [t["item"]["id"] for t in api.get(f"/projects/{pid}/tasks/next", late,
                                            params={"n": 4}).json()]
    assert set(items[:2]) <= set(ids)
    report = api.get(f"/projects/{pid}/calibrations/{cid}", owner).json()
    assert report["n_items"] == 2
    assert [d["item_id"] for d in report["disagreements"]] == [items[1]]
    (pair,) = report["pairs"]
    assert {pair["a"], pair["b"]} == {a.username, b.username}
    assert pair["agreement"] == 0.5
    assert pair["disagree_on"] == [items[1]]
    assert {x["guidelines_version"] for it in report["items"] for x in it["labels"]} == {1}
    assert api.get(f"/projects/{pid}/calibrations", owner).json()[0]["item_ids"] == items[:2]
    assert_error(api.get(f"/projects/{pid}/calibrations/{cid}", a), 403, "forbidden")


def test_purge_removes_payloads_keeps_labels_and_audits(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=2)
    items = _items(api, pid, owner)
    _label(api, pid, owner, items[0], "pos")
    assert ensure_features(api.storage, pid).n_items == 2
    answer = api.post(f"/projects/{pid}/items/purge", owner, json={"external_ids": ["x0"]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"purged": [items[0]]}
    item = api.get(f"/projects/{pid}/items/{items[0]}", owner).json()
    assert item["data"] == {}
    assert item["purged_at"] is not None
    assert [r["labels"] for r in item["current"]] == [["pos"]]
    event = api.get(f"/projects/{pid}/audit", owner).json()[0]
    assert event["action"] == "purge"
    assert event["actor"] == owner.username
    assert event["before"] == {"external_id": "x0", "fields": ["secret", "text"]}
    assert "item 0" not in json.dumps(event)
    assert_error(api.post(f"/projects/{pid}/items/purge", owner, json={"external_ids": ["zz"]}),
                 400, "invalid_input")
    # Features derived from the payload are dropped, and rebuild without it.
    rebuilt = ensure_features(api.storage, pid)
    assert rebuilt.rebuilt
    assert rebuilt.n_items == 2


def test_a_purged_item_is_handed_out_no_more_not_even_to_who_held_it(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=4)
    holder, other = api.member(pid, "annotator"), api.member(pid, "annotator")
    held = api.get(f"/projects/{pid}/tasks/next?n=2", holder).json()
    purged = held[0]["item"]["id"]
    answer = api.post(f"/projects/{pid}/items/purge", owner, json={"item_ids": [purged]})
    assert answer.status_code == 200, answer.text
    again = [t["item"]["id"] for t in api.get(f"/projects/{pid}/tasks/next?n=10", holder).json()]
    assert purged not in again  # the lease ended with the payload ...
    assert held[1]["item"]["id"] in again  # ... the other one is still theirs
    rest = [t["item"]["id"] for t in api.get(f"/projects/{pid}/tasks/next?n=10", other).json()]
    assert purged not in rest
    assert len(again) + len(rest) == 3


def test_audit_exports_as_jsonl_and_no_route_alters_it(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=2)
    api.post(f"/projects/{pid}/decisions", owner, json={"topic": "t", "text": "why"})
    exported = api.get(f"/projects/{pid}/audit/export", owner)
    assert exported.status_code == 200
    events = [json.loads(line) for line in exported.text.splitlines()]
    assert [e["action"] for e in events][:1] == ["create"]
    assert events == sorted(events, key=lambda e: e["id"])
    with api.storage.sessions() as session:
        count = session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    # Every route that could touch audit events is a read: no PUT/PATCH/DELETE under /audit.
    app = create_app(storage=api.storage)
    for route in app.routes:
        path = getattr(route, "path", "")
        if "audit" in path:
            assert set(getattr(route, "methods", set())) <= {"GET", "HEAD"}, path
    for method in ("DELETE", "PUT", "PATCH", "POST"):
        answer = api.request(method, f"/projects/{pid}/audit", owner)
        assert answer.status_code == 405, (method, answer.text)
    with api.storage.sessions() as session:
        after = session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    assert after == count


def test_no_code_updates_or_deletes_audit_events() -> None:
    """The audit trail is append-only in the code too: no UPDATE or DELETE of its table."""
    import re
    from pathlib import Path

    src = Path(__file__).resolve().parents[2] / "src" / "activelabel"
    pattern = re.compile(r"(update|delete)\(\s*(AuditEvent|audit_events)|"
                         r"(UPDATE|DELETE FROM)\s+audit_events", re.IGNORECASE)
    offenders = [str(p.relative_to(src)) for p in src.rglob("*.py")
                 if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
    assert pattern.search("session.execute(update(AuditEvent).values(action='x'))")


def test_the_bundle_exports_labels_with_the_audit_trail(api: Api) -> None:
    import io
    import zipfile

    owner = api.person("owner")
    pid = api.project(owner, n_items=2, private_fields=["secret"])
    reviewer = api.member(pid, "reviewer")
    _label(api, pid, owner, _items(api, pid, owner)[0], "pos")
    api.post(f"/projects/{pid}/decisions", owner, json={"topic": "strategy", "text": "margin"})
    answer = api.get(f"/projects/{pid}/export/bundle", owner)
    assert answer.status_code == 200, answer.text
    bundle = zipfile.ZipFile(io.BytesIO(answer.content))
    assert sorted(bundle.namelist()) == ["audit.jsonl", "decisions.jsonl", "labels.jsonl",
                                         "versions.jsonl"]

    def lines(member: str) -> list[dict[str, Any]]:
        return [json.loads(x) for x in bundle.read(member).decode().splitlines()]

    (labeled,) = lines("labels.jsonl")
    assert labeled["labels"] == "pos"
    assert "secret" not in labeled["data"]
    audit = lines("audit.jsonl")
    assert [e["entity"] for e in audit][:1] == ["project"]
    assert "decision" in {e["entity"] for e in audit}
    assert [d["text"] for d in lines("decisions.jsonl")] == ["margin"]
    assert [v["version"] for v in lines("versions.jsonl")] == [1]
    assert_error(api.get(f"/projects/{pid}/export/bundle", reviewer), 403, "forbidden")
