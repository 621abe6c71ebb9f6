"""A database made by the previous release (0.1.0, kept in tests/data with the script that
made it) migrates forward with its data intact, and the server works on it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from activelabel.labeling.export import export_rows
from activelabel.labeling.rounds import request_round
from activelabel.labeling.tasks import lease_tasks
from activelabel.store import DataLocation, Storage, get_project, list_audit, list_rounds
from activelabel.store.db import alembic_config, default_url, schema_revision
from activelabel.store.models import Base
from tests.support.projects import run_job

DATA = Path(__file__).resolve().parents[1] / "data"


def test_a_database_of_release_0_1_0_migrates_forward_intact(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(DATA / "release-0.1.0.db", folder / "activelabel.db")
    facts = json.loads((DATA / "release-0.1.0.json").read_text())
    pid = int(facts["project_id"])
    assert schema_revision(default_url(folder)) == "0005"
    storage = Storage(DataLocation(folder.resolve(), default_url(folder)))  # migrates
    try:
        # Every migration since ran, up to the newest, and the schema is the models' own.
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert head is not None
        assert head > "0005"
        assert schema_revision(default_url(folder)) == head
        with storage.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        assert list(export_rows(storage, pid)) == facts["export"]  # every label, as it was
        with storage.sessions() as session, session.begin():
            project = get_project(session, pid)
            assert project.settings["lease_seconds"] == 900  # 10^9 s broke the queue
            normalized = [e for e in list_audit(session, project_id=pid)
                          if e.action == "normalize"]
            assert len(normalized) == 1
            assert [r.status for r in list_rounds(session, pid)] == ["done", "done"]
            owner = project.created_by
            assert owner is not None
            assert len(lease_tasks(session, storage.arrays, project, "owner", owner, 5)) == 5
        with storage.sessions() as session, session.begin():
            rnd, _ = request_round(session, pid, requested_by=None, reason="after upgrade")
            job_id = rnd.job_id
        assert job_id is not None
        assert run_job(storage, job_id)["selected"] > 0  # features rebuilt, a model trained
    finally:
        storage.close()
