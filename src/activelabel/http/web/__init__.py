"""The web app: server-rendered page shells (Jinja2) and small hand-written JavaScript.

Pages carry no project data: each is a shell that reads the REST API with the token kept by
the login page (``Authorization: Bearer``), so a page shows an anonymous caller nothing but
the login form. ``install_web(app)`` mounts the pages and ``/static``.

Every page shell embeds the vocabulary the scripts read (:func:`vocabulary`: roles with their
ranks, review reasons with their texts, job and round statuses) as JSON in
``<script type="application/json" id="vocabulary">``; ``app.js`` exposes it as ``AL.ROLE``,
``AL.RANK``, ``AL.REASONS`` and ``AL.STATUS``. No script or template keeps its own copy.

Pages: ``/`` (login, then the project picker), ``/projects/new``, and per project ``label``,
``review``, ``dashboard`` and ``settings``.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from ... import __version__
from ...estimates import MEASURE_NAMES
from ...labeling.quality import CHECK_STATES
from ...labeling.review import Reason
from ...store import MAX_ID
from ...store.models import JobStatus, Role, RoundStatus, TaskType
from ...store.settings import GROUPS, ProjectSettings

__all__ = ["PAGES", "STATIC_DIR", "TEMPLATES_DIR", "install_web", "vocabulary", "web_router"]

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
#: Per-project pages: path segment -> (template, title).
PAGES = {"label": ("label.html", "Label"), "review": ("review.html", "Review"),
         "dashboard": ("dashboard.html", "Dashboard"),
         "settings": ("settings.html", "Settings"),
         "import": ("new.html", "Import data")}

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
web_router = APIRouter(include_in_schema=False)


def _form_field(name: str, prop: dict[str, Any]) -> dict[str, Any]:
    """How the settings page shows one setting: a select, a checkbox, a number or JSON."""
    options = [o for o in prop.get("anyOf", [prop]) if o.get("type") != "null"]
    option = options[0] if options else prop
    field: dict[str, Any] = {"name": name, "label": prop.get("title", name),
                             "help": prop.get("description", ""),
                             "nullable": len(options) < len(prop.get("anyOf", [prop])),
                             "tasks": " ".join(prop.get("tasks", []))}
    choices = prop.get("enum") or option.get("enum")
    words = [o["const"] for o in options if "const" in o]  # e.g. a count or "auto"
    if words and option.get("type") in ("integer", "number"):  # e.g. pseudo_labels: 1.5
        field.update(kind="number", words=words, integer=option["type"] == "integer",
                     min=option.get("minimum"), max=option.get("maximum"))
    elif choices:
        field.update(kind="select", options=list(choices))
    elif option.get("type") == "boolean":
        field["kind"] = "checkbox"
    elif option.get("type") == "string":  # e.g. model_url: a line of text, empty for none
        field["kind"] = "text"
    elif option.get("type") in ("integer", "number"):
        field.update(kind="number", step="1" if option["type"] == "integer" else "any",
                     min=option.get("minimum", option.get("exclusiveMinimum")),
                     max=option.get("maximum", option.get("exclusiveMaximum")),
                     integer=option["type"] == "integer")
    else:
        field["kind"] = "json"
    return field


def settings_form() -> list[tuple[str, list[dict[str, Any]]]]:
    """The settings page's form, made from :class:`~activelabel.store.settings.ProjectSettings`:
    (section, fields) in the order of :data:`~activelabel.store.settings.GROUPS`."""
    schema = ProjectSettings.model_json_schema()
    groups: dict[str, list[dict[str, Any]]] = {g: [] for g in GROUPS}
    for name, prop in schema["properties"].items():
        groups[prop["group"]].append(_form_field(name, prop))
    return [(group, fields) for group, fields in groups.items() if fields]


_FORM = settings_form()
#: What the new-project form offers (the sentence featurizer needs an extra: chosen in settings).
_FEATURIZERS = [k for k in ProjectSettings.model_json_schema()["properties"]["featurizer"]["enum"]
                if k != "sentence"]


def vocabulary() -> dict[str, list[dict[str, Any]]]:
    """The names the pages' scripts compare and show, from the enums that define them: roles
    (lowest first, with rank), review reasons (API order, with the short text, description and
    priority), job and round statuses, what a payoff or a round's holdout measures (with
    the words a sentence names it by) and the label check's states. Each member is ``{"name": "OWNER", "value": "owner",
    ...}``."""
    return {
        "roles": [{"name": r.name, "value": r.value, "rank": r.rank} for r in Role],
        "reasons": [{"name": r.name, "value": r.value, "label": r.label,
                     "description": r.description, "priority": r.priority} for r in Reason],
        "job_statuses": [{"name": s.name, "value": s.value} for s in JobStatus],
        "round_statuses": [{"name": s.name, "value": s.value} for s in RoundStatus],
        "measures": [{"name": value.upper(), "value": value, "label": label}
                     for value, label in MEASURE_NAMES.items()],
        "check_states": [{"name": name, "value": value} for name, value in CHECK_STATES.items()],
    }


#: The task types the new-project form offers, in the enum's order, with what annotators give.
_TASKS = [(t.value, {TaskType.CLASSIFICATION: "one label per item",
                     TaskType.MULTILABEL: "any number of labels",
                     TaskType.SPANS: "spans of the text; the labels are entity types"}[t])
          for t in TaskType]


def _context(page: str, title: str, project_id: int | None = None) -> dict[str, Any]:
    return {"page": page, "title": title, "project_id": project_id, "version": __version__,
            "settings_form": _FORM, "featurizers": _FEATURIZERS, "tasks": _TASKS,
            "Role": Role, "vocabulary": vocabulary()}


@web_router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    """Login form, then the projects the caller may open."""
    return templates.TemplateResponse(request, "home.html", _context("home", "Projects"))


@web_router.get("/projects/new", response_class=HTMLResponse)
def new_project(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "new.html", _context("new", "New project"))


def _project_number(raw: str) -> int | None:
    """A page's project id: a plain number in the id column's range, else None (no such page)."""
    return int(raw) if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_ID else None


def _missing(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "missing.html", _context("missing", "Not found"),
                                      status_code=404)


@web_router.get("/projects/{project_id}", response_class=RedirectResponse)
def project_home(request: Request, project_id: str) -> Response:
    number = _project_number(project_id)
    if number is None:
        return _missing(request)
    return RedirectResponse(f"/projects/{number}/label", status_code=307)


@web_router.get("/projects/{project_id}/{page}", response_class=HTMLResponse)
def project_page(request: Request, project_id: str, page: str) -> HTMLResponse:
    """A project's page shell; an id that is no number, or a page that does not exist, gets
    the "Not found" page (a browser would otherwise show the API's JSON error)."""
    found, number = PAGES.get(page), _project_number(project_id)
    if found is None or number is None:
        return _missing(request)
    template, title = found
    return templates.TemplateResponse(request, template, _context(page, title, number))


def install_web(app: FastAPI) -> None:
    """Serve the pages and their static files from ``app``; a browser asking for a page that
    does not exist (GET outside ``/api``, accepting HTML) gets the "Not found" page, every
    other caller the API's error shape. Call it after the error handlers are installed."""
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.include_router(web_router)
    api_error = app.exception_handlers.get(StarletteHTTPException)

    async def not_found(request: Request, exc: Exception) -> Response:
        if (isinstance(exc, StarletteHTTPException) and exc.status_code == 404
                and request.method == "GET" and not request.url.path.startswith("/api/")
                and "text/html" in request.headers.get("accept", "")):
            return _missing(request)
        assert api_error is not None
        answer = api_error(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    if api_error is not None:
        app.add_exception_handler(StarletteHTTPException, not_found)
