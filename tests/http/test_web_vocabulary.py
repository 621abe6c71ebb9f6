"""The pages' vocabulary (roles, review reasons, job and round statuses) has one source: the
Python enums, embedded as JSON in every page shell. No script or template keeps a copy."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from activelabel.estimates import ACCURACY, MEASURE_NAMES
from activelabel.http.web import STATIC_DIR, TEMPLATES_DIR, vocabulary
from activelabel.labeling.quality import CHECK_STATES
from activelabel.labeling.review import REASONS, Reason
from activelabel.store.models import JobStatus, Role, RoundStatus, TaskType
from tests.support.api import Api

#: Each kind of name the pages use, as the enums define it.
KINDS = {"role": [r.value for r in Role], "reason": [r.value for r in Reason],
         "status": sorted({s.value for s in JobStatus} | {s.value for s in RoundStatus}),
         # "accuracy" is also every metric's key: the F1 measures are the task's words
         "measure": [m for m in MEASURE_NAMES if m != ACCURACY],
         "check state": list(CHECK_STATES.values())}
#: Quoted words that are not the vocabulary, where they stand: the dashboard's backlog chart
#: calls items waiting in the task queue "queued" (an item's state, not a job's or a round's
#: status); the review page's filter sends the query parameter ``annotator`` (a username).
ALLOWED = {"dashboard.js": ['categories: ["queued",'],
           "review.js": ['["f-annotator", "annotator"]']}
FILES = sorted([*STATIC_DIR.glob("*.js"), *TEMPLATES_DIR.glob("*.html")])


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, str] = {}
        self._id: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        given = dict(attrs)
        if tag == "script" and given.get("type") == "application/json":
            self._id = given.get("id")

    def handle_data(self, data: str) -> None:
        if self._id is not None:
            self.found[self._id] = data
            self._id = None


@pytest.mark.parametrize("path", ["/", "/projects/1/review", "/projects/1/settings"])
def test_every_page_shell_embeds_the_vocabulary_of_the_enums(api: Api, path: str) -> None:
    html = api.client.get(path).text
    parser = _Scripts()
    parser.feed(html)
    embedded = json.loads(parser.found["vocabulary"])
    assert embedded == vocabulary()
    assert [(r["value"], r["rank"]) for r in embedded["roles"]] == [
        ("annotator", 0), ("reviewer", 1), ("owner", 2)]
    assert [r["value"] for r in embedded["reasons"]] == list(REASONS)
    by_priority = sorted(embedded["reasons"], key=lambda r: r["priority"])
    assert [r["value"] for r in by_priority] == [
        "gold_miss", "tie", "disagreement", "label_issue", "model_disagrees", "flagged"]
    assert all(r["label"] and len(r["description"]) > len(r["label"]) for r in embedded["reasons"])
    assert {s["value"] for s in embedded["job_statuses"]} == {"queued", "running", "done",
                                                              "failed"}
    assert {s["value"] for s in embedded["round_statuses"]} == {s.value for s in RoundStatus}
    assert {m["value"]: m["label"] for m in embedded["measures"]} == {
        "accuracy": "accuracy", "label_f1": "label F1", "entity_f1": "entity F1"}
    assert {m["name"] for m in embedded["measures"]} == {"ACCURACY", "LABEL_F1", "ENTITY_F1"}
    assert {s["name"]: s["value"] for s in embedded["check_states"]} == {
        "CURRENT": "up_to_date", "STALE": "outdated", "NONE": "not_yet",
        "OFF": "not_applicable"}
    if path.startswith("/projects/"):  # the role a tab needs comes from the enum as well
        assert 'data-min-role="reviewer"' in html
        assert 'data-min-role="owner"' in html


def _copies(name: str, text: str) -> list[str]:
    """Where a file writes a name of the vocabulary itself instead of reading it."""
    found = []
    allowed = [range(m.start(), m.end()) for snippet in ALLOWED.get(name, [])
               for m in re.finditer(re.escape(snippet), text)]
    for kind, names in KINDS.items():
        alternatives = "|".join(map(re.escape, names))
        for match in re.finditer(rf"""(["'`])({alternatives})\1""", text):
            if not any(match.start() in span for span in allowed):
                found.append(f"{name}: {kind} literal {match.group(0)}")
        for match in re.finditer(rf"<option[^>]*>\s*({alternatives})\s*</option>", text):
            found.append(f"{name}: {kind} option {match.group(0)}")
        key = rf"\b(?:{alternatives})\s*:"
        for match in re.finditer(rf"{key}[^,{{}}]*,\s*{key}", text):
            found.append(f"{name}: {kind} table {match.group(0)}")
    return found


def test_no_script_or_template_keeps_a_copy_of_the_vocabulary() -> None:
    assert len(FILES) >= 10
    copies = [c for path in FILES for c in _copies(path.name, path.read_text())]
    assert copies == []


def test_the_check_finds_the_copies_it_looks_for() -> None:
    assert _copies("x.js", 'if (r.status === "done") {}')
    assert _copies("x.js", "const RANK = { annotator: 0, reviewer: 1, owner: 2 };")
    assert _copies("x.js", 'const R = { label_issue: "likely", tie: "tie" };')
    assert _copies("x.html", "<select><option>owner</option></select>")
    assert _copies("x.html", '<option value="gold_miss">missed</option>')
    assert _copies("review.js", 'if (p.role === "annotator") {}')  # allowed only in its place
    assert not _copies("x.js", "rounds.filter((r) => r.status === AL.STATUS.round.DONE);")
    assert _copies("x.js", 'if (p.measure === "label_f1") {}')


def test_the_new_project_form_offers_every_task_type_of_the_enum(api: Api) -> None:
    html = api.client.get("/projects/new").text
    offered = re.findall(r'<option value="([a-z]+)">\1 \(', html)
    assert offered == [t.value for t in TaskType]
    assert "spans" in offered
