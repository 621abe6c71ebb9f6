"""The web app's page shells: served to anyone, carrying no project data; static files."""

from __future__ import annotations

import re

import pytest

from activelabel.http.web import PAGES, STATIC_DIR, TEMPLATES_DIR
from tests.support.api import Api


@pytest.mark.parametrize("path", ["/", "/projects/new",
                                  *[f"/projects/1/{page}" for page in PAGES]])
def test_pages_are_shells_without_data(api: Api, path: str) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=2, guidelines="SECRET GUIDELINES")
    answer = api.client.get(path.replace("/1/", f"/{pid}/"))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    html = answer.text
    assert "/static/app.js" in html
    assert 'lang="en"' in html
    assert "SECRET GUIDELINES" not in html
    assert "item 0" not in html


def test_unknown_pages_and_project_root(api: Api) -> None:
    assert api.client.get("/projects/1/nope").status_code == 404
    assert api.client.get("/projects/abc/label").status_code == 404  # no such page
    moved = api.client.get("/projects/7", follow_redirects=False)
    assert moved.status_code == 307
    assert moved.headers["location"] == "/projects/7/label"


def test_a_browser_asking_for_a_missing_page_gets_the_not_found_page(api: Api) -> None:
    html = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    for path in ("/nope", "/projects/1/label/extra", "/static-nope/x.js", "/projects/abc/label",
                 "/projects/abc", f"/projects/{2**70}/label", "/projects/0/review"):
        page = api.client.get(path, headers=html)
        assert page.status_code == 404, path
        assert page.headers["content-type"].startswith("text/html")
        assert "Not found" in page.text
        assert "Back to the projects" in page.text
    # API callers keep the one error shape, under /api whatever they accept
    for path, headers in (("/nope", {}), ("/api/v1/nope", html),
                          ("/nope", {"accept": "application/json"})):
        error = api.client.get(path, headers=headers)
        assert error.status_code == 404
        assert error.json()["error"]["code"] == "not_found"
    assert api.client.post("/nope", headers=html).json()["error"]["code"] == "not_found"
    assert api.client.get("/api/v1/projects/1/annotations", headers=html).status_code == 405


def test_static_files_and_templates_are_package_data(api: Api) -> None:
    for name in ("app.js", "app.css", "label.js", "charts.js", "dashboard.js", "settings.js"):
        answer = api.client.get(f"/static/{name}")
        assert answer.status_code == 200, name
        assert len(answer.content) > 500
    assert (TEMPLATES_DIR / "base.html").exists()
    assert (STATIC_DIR / "app.js").exists()
    assert api.client.get("/static/../web/__init__.py").status_code == 404


def test_every_form_control_has_a_label() -> None:
    """Inputs, selects and textareas in the templates carry an id that a <label for> names, or
    an aria-label (the browser tests check the rendered pages too)."""
    import re

    for template in TEMPLATES_DIR.glob("*.html"):
        html = template.read_text()
        labelled = set(re.findall(r'<label[^>]*\bfor="([^"]+)"', html))
        for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", html):
            if 'type="hidden"' in tag or "aria-label=" in tag:
                continue
            ident = re.search(r'\bid="([^"]+)"', tag)
            wrapped = ident is None  # inside <label class="inline"> ... </label>
            assert wrapped or ident.group(1) in labelled or _wrapped(html, tag), (
                f"{template.name}: {tag} has no label")


def _wrapped(html: str, tag: str) -> bool:
    start = html.index(tag)
    before = html.rfind("<label", 0, start)
    return before != -1 and html.rfind("</label>", 0, start) < before


def test_the_settings_form_is_made_from_the_settings_declaration(api: Api) -> None:
    """Every project setting, and only those, has its field on the settings page, with the
    title and bounds of its declaration."""
    from activelabel.store import ProjectSettings

    html = api.client.get("/projects/1/settings").text
    shown = re.findall(r'data-setting="([a-z_]+)"', html)
    assert shown == list(ProjectSettings.model_fields)
    assert 'id="lease_seconds" name="lease_seconds" type="number" step="1" min="10" ' \
           'max="604800"' in html
    assert ">Batch size (items per round, or auto)</label>" in html
    assert 'id="batch_size" name="batch_size" inputmode="numeric" pattern="[1-9][0-9]*|auto"' \
        in html  # a count or "auto"
    assert '<option>dawid_skene</option>' in html


def test_the_openapi_schema_documents_every_setting(api: Api) -> None:
    from activelabel.store import ProjectSettings

    schema = api.client.get("/openapi.json").json()["components"]["schemas"]
    assert set(schema["ProjectSettings"]["properties"]) == set(ProjectSettings.model_fields)
