"""Projects, users, items and labels made directly in the store, and jobs run in process.

``make_users`` / ``make_items`` work inside a test's session (the store tests); the others
take a :class:`Storage` and commit (the labeling and worker tests).
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from activelabel.store import (
    Storage,
    add_items,
    annotate,
    count_items,
    create_project,
    create_user,
    item_ids_for_rows,
)
from activelabel.store.models import Job, Project, User

__all__ = [
    "DIGIT_CLASSES",
    "Seeded",
    "digit_rows",
    "label_rows",
    "make_items",
    "make_users",
    "new_project",
    "run_job",
    "text_rows",
]

DIGIT_CLASSES = [str(d) for d in range(10)]


def make_users(session: Session, n: int, prefix: str = "u") -> list[User]:
    return [create_user(session, f"{prefix}{i}_{uuid.uuid4().hex[:6]}") for i in range(n)]


def make_items(session: Session, project_id: int, n: int, start: int = 0,
               split: str = "pool") -> list[int]:
    """``n`` text items x{start}.. added to the project; their ids."""
    result = add_items(session, project_id, [
        {"external_id": f"x{start + i}", "data": {"text": f"item {start + i}"}, "split": split}
        for i in range(n)])
    assert result.inserted == n
    total = count_items(session, project_id)
    return item_ids_for_rows(session, project_id, range(total - n, total))


class Seeded:
    """A project made by :func:`new_project`: ids of its owner and project."""

    def __init__(self, project_id: int, owner_id: int) -> None:
        self.project_id = project_id
        self.owner_id = owner_id


def new_project(storage: Storage, *, labels: list[Any] | None = None,
                task: str = "classification", settings: dict[str, Any] | None = None,
                rows: list[dict[str, Any]] | None = None,
                private_fields: tuple[str, ...] = ()) -> Seeded:
    """A project (owner included) with ``rows`` imported, committed."""
    with storage.sessions() as session, session.begin():
        owner: User = create_user(session, f"owner_{uuid.uuid4().hex[:8]}")
        project: Project = create_project(session, f"p_{uuid.uuid4().hex[:8]}", task,
                                          labels or DIGIT_CLASSES, settings=settings,
                                          private_fields=private_fields, created_by=owner.id)
        if rows:
            result = add_items(session, project.id, rows)
            assert result.inserted == len(rows), result.rejected[:3]
        return Seeded(project.id, owner.id)


def digit_rows(images: np.ndarray[Any, Any], n: int, holdout: int = 0) -> list[dict[str, Any]]:
    """``n`` digit items; the last ``holdout`` of them in the holdout split."""
    return [{"external_id": f"d{i}", "data": {"image": images[i].tolist(), "secret": f"s{i}"},
             "split": "holdout" if i >= n - holdout else "pool"} for i in range(n)]


def text_rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma"]
    return [{"external_id": f"t{i}", "data": {"text": f"{words[i % 6]} {words[(i * 7) % 6]} {i}"}}
            for i in range(start, start + n)]


def label_rows(storage: Storage, seeded: Seeded, rows: list[int], labels: list[Any],
               user_id: int | None = None) -> None:
    """Label the items at ``rows`` (one label each) as ``user_id`` (default the owner)."""
    with storage.sessions() as session, session.begin():
        ids = item_ids_for_rows(session, seeded.project_id, rows)
        for item_id, label in zip(ids, labels, strict=True):
            annotate(session, seeded.project_id, user_id or seeded.owner_id, item_id,
                     label if isinstance(label, list) else [label])


def request_and_run_round(storage: Storage, project_id: int,
                          reason: str = "manual") -> dict[str, Any]:
    """Request a round of the project and run it here; the round job's result."""
    from activelabel.labeling.rounds import request_round

    with storage.sessions() as session, session.begin():
        rnd, _ = request_round(session, project_id, requested_by=None, reason=reason)
        job_id = rnd.job_id
    assert job_id is not None
    return run_job(storage, job_id)


def run_label_checks(storage: Storage, project_id: int) -> list[dict[str, Any]]:
    """Run the project's queued label checks as a worker does (claimed, run, recorded done
    or failed); their results."""
    from sqlalchemy import select

    from activelabel.labeling.quality import LABEL_CHECK, run_label_check
    from activelabel.store import claim_job_by_id, fail_job, finish_job

    with storage.read_sessions() as session:
        queued = list(session.execute(select(Job.id).where(
            Job.project_id == project_id, Job.kind == LABEL_CHECK,
            Job.status == "queued").order_by(Job.id)).scalars())
    results = []
    for job_id in queued:
        with storage.sessions() as session, session.begin():
            assert claim_job_by_id(session, job_id, "tests")
            job = session.get(Job, job_id)
            assert job is not None
            session.expunge(job)
        try:
            result = run_label_check(storage, job)
        except Exception as err:
            with storage.sessions() as session, session.begin():
                fail_job(session, job_id, "tests", str(err))
            raise
        with storage.sessions() as session, session.begin():
            finish_job(session, job_id, "tests", result=result)
        results.append(result)
    return results


def run_job(storage: Storage, job_id: int) -> dict[str, Any]:
    """Run a queued job's handler here (no claim): what a worker does, minus the bookkeeping."""
    from activelabel.labeling.imports import run_import
    from activelabel.labeling.remote_model import ModelHosts
    from activelabel.labeling.rounds import run_round

    with storage.sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
    seen: list[dict[str, Any]] = []
    if job.kind == "round":  # any host: the tests' model servers run on this machine
        result = run_round(storage, job, progress=seen.append, model_hosts=ModelHosts())
    elif job.kind == "label_check":
        from activelabel.labeling.quality import run_label_check

        result = run_label_check(storage, job, progress=seen.append)
    else:
        result = run_import(storage, job, progress=seen.append)
    result["_progress"] = seen
    return result
