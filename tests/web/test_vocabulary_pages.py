"""The pages build their role and reason choices from the vocabulary the server embeds."""

from __future__ import annotations

from typing import Any

from activelabel.labeling.review import Reason
from activelabel.store.models import Role
from tests.support.web import PROJECT, Site, log_in


def _options(page: Any, selector: str) -> list[list[str]]:
    return list(page.eval_on_selector_all(
        f"{selector} option", "os => os.map(o => [o.value, o.textContent])"))


def test_reason_filter_and_role_choices_come_from_the_server(page: Any, site: Site) -> None:
    site.member("annotator")
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{PROJECT}/review")
    page.wait_for_selector("body[data-loaded=true]")
    assert _options(page, "#f-reason")[1:] == [[r.value, r.label] for r in Reason]

    page.goto(f"{site.url}/projects/{PROJECT}/settings")
    page.wait_for_selector("body[data-loaded=true]")
    roles = [[r.value, r.value] for r in Role]
    assert _options(page, "#member-role") == roles
    members = {m["username"]: m["role"] for m in site.get(f"/projects/{PROJECT}/members")}
    for username, role in members.items():
        select = f"select[aria-label='role of {username}']"
        assert _options(page, select) == roles
        assert page.eval_on_selector(select, "s => s.value") == role
