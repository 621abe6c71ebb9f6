"""The service commands of ``activelabel``: users, tokens, demo, import, export, round, status.

Run in-process through :func:`activelabel.cli.main` (the same parsing and error handling as the
script), on SQLite and, where storage matters, on PostgreSQL in a fresh schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from activelabel.cli import main
from activelabel.runtime.settings import resolve_location
from activelabel.store import (
    Storage,
    annotate,
    create_project,
    create_user,
    item_ids_for_rows,
)
from activelabel.store.models import Item, Job, Project, Round, User
from activelabel.store.users import user_for_token
from tests.support.databases import BACKENDS
from tests.support.processes import run_cli


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """A new database per test (``db_url``, tests/conftest.py): the commands commit."""
    return str(request.param)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def storage(data_dir: Path, db_url: str) -> Iterator[Storage]:
    opened = Storage(resolve_location(data_dir, db_url))
    yield opened
    opened.close()


@pytest.fixture
def project_id(storage: Storage) -> int:
    with storage.sessions() as session, session.begin():
        owner = create_user(session, "owner")
        return create_project(session, "news", "classification", ["ham", "spam"],
                              settings={"batch_size": 5}, created_by=owner.id).id


class Cli:
    """``activelabel ARGS --data-dir D --db URL`` in-process; (exit status, stdout, stderr)."""

    def __init__(self, capsys: pytest.CaptureFixture[str], data_dir: Path, db: str) -> None:
        self.capsys, self.data_dir, self.db = capsys, data_dir, db

    def __call__(self, *args: str | Path) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main([*map(str, args), "--data-dir", str(self.data_dir), "--db", self.db])
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], data_dir: Path, db_url: str) -> Cli:
    return Cli(capsys, data_dir, db_url)


def write_rows(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.mark.slow
def test_users_and_tokens_for_scripts(cli: Cli, storage: Storage, data_dir: Path,
                                      db_url: str) -> None:
    code, out, _ = cli("users", "create", "ann", "--password", "s3cret-pw", "--admin")
    assert code == 0
    assert "created admin ann" in out
    # A script reads the token from the last line of the real command's output.
    proc = run_cli("tokens", "create", "ann", "--name", "ci", data_dir=data_dir, db=db_url)
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip().splitlines()[-1]
    assert token.startswith("al_")
    assert " " not in token
    with storage.sessions() as session, session.begin():
        user = user_for_token(session, token)
        assert user is not None
        assert user.username == "ann"
        assert user.is_admin


@pytest.mark.parametrize(("args", "message"), [
    (["users", "create", "ann"], "already exists"),
    (["users", "create", "has space", "--password", "longenough"], "invalid username"),
    (["users", "create", "short", "--password", "abc"], "password too short"),
    (["tokens", "create", "ghost"], "no user 'ghost'"),
    (["status", "nope"], "no project 'nope'"),
    (["round", "999"], "no project '999'"),
    (["import", "news", "missing.jsonl"], "missing.jsonl is not a file"),
    (["import", "news", "pyproject.toml", "--split", "train"], "--split 'train'"),
    (["export", "news", "--out", "x.xml", "--format", "xml"], "--format 'xml'"),
    (["simulate", "--dataset", "wine", "--strategies", "margin", "--out", "sim",
      "--attach", "news"], "add random to --strategies"),
    (["simulate", "--dataset", "wine", "--strategies", "random", "--out", "sim",
      "--attach", "nope"], "no project 'nope'"),
])  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(cli: Cli, project_id: int, args: list[str],
                                          message: str) -> None:
    assert cli("users", "create", "ann")[0] == 0
    code, out, err = cli(*args)
    assert code == 2, (out, err)
    assert err.startswith("error: ")
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_storage_flags_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "file"
    afile.write_text("")
    assert main(["status", "--data-dir", str(afile)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["status", "--data-dir", str(tmp_path), "--db", "mysql://x/y"]) == 2
    assert "unsupported database URL" in capsys.readouterr().err


def test_import_wait_reports_counts_and_rejected_rows(cli: Cli, project_id: int,
                                                      storage: Storage, tmp_path: Path) -> None:
    good = [{"external_id": f"m{i}", "data": {"text": f"message number {i}"}} for i in range(30)]
    path = write_rows(tmp_path / "rows.jsonl", [
        *good, good[3], "{not json", {"external_id": "m99", "data": "not an object"}, good[7]])
    code, out, err = cli("import", "news", path, "--wait")
    assert code == 0, err
    assert "30 inserted, 2 duplicates, 2 rejected" in out
    assert out.count("  line ") == 2
    code, out, _ = cli("import", str(project_id), path, "--wait")
    assert code == 0
    assert "0 inserted, 32 duplicates, 2 rejected" in out
    with storage.read_sessions() as session:
        count = session.execute(select(func.count()).select_from(Item).where(
            Item.project_id == project_id)).scalar_one()
    assert count == 30


def test_an_import_that_cannot_be_read_is_a_sentence_not_a_traceback(
        cli: Cli, project_id: int, tmp_path: Path) -> None:
    broken = tmp_path / "rows.parquet"
    broken.write_bytes(b"PAR1 but nothing else")
    code, out, err = cli("import", str(project_id), broken, "--wait")
    assert code == 2, (out, err)  # found by the upload's preview: bad input, nothing queued
    assert "is not a Parquet file that can be read" in err
    assert "Traceback" not in out + err
    csv_path = tmp_path / "latin1.csv"
    csv_path.write_bytes("external_id,text\nx1,caf\u00e9\n".encode("latin-1"))
    code, out, err = cli("import", str(project_id), csv_path, "--wait")
    assert code == 0, err
    assert "line 2: column 'text' holds byte 0xe9, which is not UTF-8" in out
    assert "Traceback" not in out + err


def test_an_auto_round_names_the_strategy_its_schedule_ran() -> None:
    from activelabel.cli import round_strategy

    assert round_strategy("auto", {"schedule": {"strategy": "cluster_margin"}}) == (
        "auto: cluster_margin")
    assert round_strategy("margin", {}) == "margin"
    assert round_strategy("auto", {"schedule": None}) == "auto"  # a round before the schedule


def test_import_without_wait_queues_a_job(cli: Cli, project_id: int, tmp_path: Path) -> None:
    path = write_rows(tmp_path / "rows.jsonl", [{"external_id": "a", "data": {"text": "hi"}}])
    code, out, _ = cli("import", "news", path)
    assert code == 0
    assert "queued" in out
    code, out, _ = cli("status", "news")
    assert code == 0
    assert "1 jobs queued or running" in out


def label(storage: Storage, project_id: int, rows: range, annotator: str = "owner") -> None:
    with storage.sessions() as session, session.begin():
        user = session.execute(select(User).where(User.username == annotator)).scalar_one()
        for row, item_id in zip(rows, item_ids_for_rows(session, project_id, list(rows)),
                                strict=True):
            annotate(session, project_id, user.id, item_id, ["spam" if row % 3 == 0 else "ham"],
                     duration_ms=500)


def test_round_status_and_export(cli: Cli, project_id: int, storage: Storage,
                                 tmp_path: Path) -> None:
    rows = [{"external_id": f"m{i}",
             "data": {"text": ("WIN cash prize now " if i % 3 == 0 else "see you at lunch ")
                      + str(i)}} for i in range(60)]
    assert cli("import", "news", write_rows(tmp_path / "rows.jsonl", rows), "--wait")[0] == 0
    label(storage, project_id, range(0, 12))

    code, out, err = cli("round", "news", "--wait")
    assert code == 0, err
    assert "done" in out
    with storage.read_sessions() as session:
        rounds = list(session.execute(select(Round).where(Round.project_id == project_id)
                                      .order_by(Round.number)).scalars())
    assert rounds[-1].status == "done"
    assert rounds[-1].n_labels_used == 12

    code, out, _ = cli("status", "news")
    assert code == 0
    assert "pool" in out
    assert "12 (20%)" in out
    assert "backlog: 48" in out
    assert "last rounds" in out
    assert "pace: 12.0 labels/min from 1 active annotators" in out
    # Two templated texts: the model is nearly sure of the pool, near the low-uncertainty
    # rule's 0.05, so either verdict may come; what matters is that it is shown, with the
    # pool's uncertainty the round measured.
    assert re.search(r"stopping rules \(round 1\): (keep labeling|STOP)\n", out)
    assert re.search(r"pool uncertainty mean 0\.\d+ [<>]=? 0\.05", out)
    assert "go on: no pool uncertainty" not in out  # the round scored the pool
    assert "low_uncertainty" not in out
    assert "forecast: no target accuracy set" in out
    assert ("payoff: no audit labels yet: 5.0% of tasks are drawn at random to measure the "
            "model; 12 labels spent") in out
    assert "features: text (built for 60 items)" in out
    code, out, _ = cli("projects", "list")
    assert code == 0
    assert "news" in out

    for fmt, name in (("jsonl", "labels.jsonl"), ("csv", "labels.csv"),
                      ("parquet", "labels.parquet")):
        code, out, err = cli("export", "news", "--out", tmp_path / name)
        assert code == 0, err
        assert f"({fmt}," in out
    lines = (tmp_path / "labels.jsonl").read_text().splitlines()
    exported = {json.loads(line)["external_id"] for line in lines}
    assert exported == {f"m{i}" for i in range(12)}
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "labels.parquet").num_rows == 12
    assert not list(tmp_path.glob("*.part"))


def test_the_payoff_line_says_what_the_dashboard_headline_says() -> None:
    from activelabel.cli import payoff_line

    base = {"audit_share": 0.05, "audit_labels": 38, "measure": "accuracy", "accuracy": 0.89,
            "low": 0.76, "high": 0.96, "confidence": 0.95, "labels_spent": 351,
            "random_curve": [[10, 0.5], [28, 0.8]], "random_labels_needed": 68,
            "random_extrapolated": True, "random_labels_range": [32, 160],
            "target_accuracy": 0.95, "to_target": 0.06}
    assert payoff_line(base) == (
        "payoff: accuracy 89.0% (95% interval 76.0%-96.0%, 38 audit labels); 351 labels "
        "spent; random sampling would have needed about 68 (extrapolated; 32 to 160 within "
        "both intervals); 6.0% below the target 95.0%")
    unread = payoff_line({**base, "random_labels_needed": None, "random_extrapolated": None,
                          "random_labels_range": None, "to_target": -0.01,
                          "target_status": "reached_by_estimate"})
    assert ("random sampling's curve (up to 28 audit labels) cannot tell yet what it would "
            "have needed; target 95.0% reached by the estimate, not yet by the interval (low "
            "end 76.0%)") in unread
    assert payoff_line({**base, "to_target": -0.01, "target_status": "reached"}).endswith(
        "; target 95.0% reached")
    assert payoff_line({**base, "target_status": "below_by_estimate"}).endswith(
        "; 6.0% below the target 95.0% (the interval reaches it)")
    spans = payoff_line({**base, "measure": "entity_f1", "random_labels_range": [32, None],
                         "random_extrapolated": False, "to_target": None})
    assert spans.startswith("payoff: entity F1 89.0% (95% interval")
    assert "about 68 (32 to more than the curve tells within both intervals)" in spans
    assert "target" not in spans
    multi = payoff_line({**base, "measure": "label_f1", "to_target": None})
    assert multi.startswith("payoff: label F1 89.0% (95% interval")
    off = payoff_line({**base, "audit_share": 0.0, "audit_labels": 0, "accuracy": None,
                       "note": "audit draws are off (audit_share 0): nothing measures the model"})
    assert off == ("payoff: audit draws are off (audit_share 0): nothing measures the model; "
                   "351 labels spent")


def test_demo_is_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "demo"
    assert main(["demo", "--data-dir", str(data), "--password", "demo-pass-1"]) == 0
    first = capsys.readouterr().out
    assert "login: admin / demo-pass-1" in first
    assert "http://127.0.0.1:8000" in first
    assert "1797 items, 300 holdout items labeled" in first
    assert "done" in first
    assert main(["demo", "--data-dir", str(data)]) == 0
    second = capsys.readouterr().out
    assert "already there" in second
    assert "login: admin / demo-pass-1" in second
    storage = Storage(resolve_location(data))
    try:
        with storage.read_sessions() as session:
            items = session.execute(select(func.count()).select_from(Item)).scalar_one()
            rounds = session.execute(select(Round)).scalars().all()
            data_keys = set(session.execute(select(Item.data).limit(1)).scalar_one())
    finally:
        storage.close()
    assert items == 1797
    assert len(rounds) == 1
    assert rounds[0].status == "done"
    assert data_keys == {"image", "png"}  # the digit itself is never in the payload


def test_simulate_attach_puts_the_random_curve_on_the_dashboard(
        cli: Cli, storage: Storage, project_id: int, tmp_path: Path) -> None:
    from activelabel.labeling.insights import random_estimate
    from activelabel.store import list_audit

    out = tmp_path / "sim"
    code, stdout, err = cli("simulate", "--dataset", "wine", "--strategies", "random,margin",
                            "--seed-size", "3", "--batch-size", "3", "--budget", "12",
                            "--repeats", "1", "--out", out, "--attach", "news")
    assert code == 0, err
    assert f"project {project_id} now shows" in stdout
    curve = random_estimate(storage, project_id)
    written = json.loads((out / "results.json").read_text())["curves"]["random"]
    assert curve is not None
    assert [p["n_labeled"] for p in curve] == [p["n_labeled"] for p in written] == [3, 6, 9, 12]
    assert [p["accuracy"] for p in curve] == [p["accuracy"] for p in written]
    with storage.read_sessions() as session:
        events = list_audit(session, project_id=project_id)
    assert any(e.action == "attach" and e.entity == "simulation" for e in events)


def test_project_show_lists_every_setting_with_its_default(cli: Cli, project_id: int) -> None:
    from activelabel.store import ProjectSettings

    code, out, err = cli("project", "show", "news")
    assert code == 0, err
    assert "project 1: news (classification), labels: ham, spam" in out
    assert "owner (owner)" in out
    for name in ProjectSettings.model_fields:
        assert name in out
    assert "5 *" in out  # batch_size differs from its default
    code, out, err = cli("projects", "show", str(project_id))
    assert code == 0, err
    code, _, err = cli("project", "show", "olds")
    assert code == 2
    assert "no project 'olds'" in err
    assert "1 (news)" in err


def test_import_preview_and_mapping_bring_labels_predictions_and_vectors(
        cli: Cli, project_id: int, storage: Storage, tmp_path: Path) -> None:
    rows = [{"id": f"s{i}", "text": f"message {i}", "label": "spam" if i % 2 else "ham",
             "annotator": "ann", "pred": "ham", "score": 0.9, "emb": [float(i), 1.0]}
            for i in range(8)]
    rows[3]["label"] = "eggs"
    path = write_rows(tmp_path / "sms.jsonl", rows)
    code, out, err = cli("import", "news", path, "--preview")
    assert code == 0, err
    assert "label: label - looks like an answer" in out
    assert "(looks like an answer)" in out
    with storage.read_sessions() as session:
        assert session.execute(select(func.count()).select_from(Item)).scalar_one() == 0
    code, out, err = cli("import", "news", path, "--wait", "--proposed", "--map", "pred=ignore",
                         "--map", "score=ignore")
    assert code == 0, err
    assert "7 inserted, 0 duplicates, 1 rejected" in out
    assert "with them: 7 existing labels, 7 vectors" in out
    assert "line 4: existing label: unknown labels ['eggs']" in out
    with storage.read_sessions() as session:
        item = session.execute(select(Item).where(Item.external_id == "s1")).scalar_one()
        assert item.data == {"text": "message 1"}
        saved = session.get(Project, project_id)
        assert saved is not None
        assert saved.import_mapping["columns"]["pred"] == "ignore"
    assert cli("import", "news", path, "--map", "label")[2].startswith("error: --map 'label'")
    import numpy as np

    np.save(tmp_path / "v.npy", np.ones((2, 2), dtype=np.float32))
    (tmp_path / "ids.txt").write_text("s0\ns2\n")
    code, out, err = cli("vectors", "news", tmp_path / "v.npy", "--ids", tmp_path / "ids.txt")
    assert code == 0, err
    assert "2 vectors of 2 values stored; 0 items have none" in out
    (tmp_path / "bad.txt").write_text("s0\nnope\n")
    code, _, err = cli("vectors", "news", tmp_path / "v.npy", "--ids", tmp_path / "bad.txt")
    assert code == 2
    assert "'nope' is no item" in err


def test_an_import_without_a_mapping_says_which_columns_it_kept_private(
        cli: Cli, project_id: int, storage: Storage, tmp_path: Path) -> None:
    """No mapping given and none saved: the file's answers stay private, and the import says
    so and how to bring them (it said only "8 inserted": labels thought imported were not)."""
    rows = [{"id": f"s{i}", "text": f"message {i}", "label": "spam" if i % 2 else "ham",
             "emb": [float(i), 1.0]} for i in range(8)]
    path = write_rows(tmp_path / "sms.jsonl", rows)
    code, out, err = cli("import", "news", path, "--wait")
    assert code == 0, err
    assert "8 inserted" in out
    assert ("kept private (stored with the items, never shown), not imported as their role: "
            "label (proposed: label), emb (proposed: vector); to import the labels, import "
            "the file again with --map label=label (its items are not doubled: those already "
            "in take the labels); emb: imported with new items only") in out
    with storage.read_sessions() as session:
        job = session.execute(select(Job).where(Job.kind == "import")
                              .order_by(Job.id.desc()).limit(1)).scalar_one()
        assert job.payload["held_private"] == {"label": "label", "emb": "vector"}
        assert (job.result or {})["held_private"] == {"label": "label", "emb": "vector"}
    # as it says: the same file with that --map brings the labels, nothing held back
    code, out, err = cli("import", "news", path, "--wait", "--map", "label=label")
    assert code == 0, err
    assert "0 inserted, 8 duplicates" in out
    assert "kept private" not in out
    assert "with them: 8 existing labels" in out
    code, out, err = cli("import", "news", path, "--wait", "--proposed")
    assert code == 0, err
    assert ("8 existing labels of items already in left out: 8: its annotator had labeled "
            "the item already (kept as it was)") in out


def test_the_rounds_table_names_the_tasks_score() -> None:
    """A multi-label project's rounds show their label F1 and its gain (a round recorded
    before the gain named its measure shows none); a classifier's, its accuracy."""
    from types import SimpleNamespace

    from rich.console import Console

    from activelabel.cli import rounds_table

    def shown(task: str, *rounds: SimpleNamespace) -> str:
        console = Console(width=200, record=True)
        console.print(rounds_table(rounds, task))
        return console.export_text()

    def rnd(number: int, gain: dict[str, Any]) -> SimpleNamespace:
        return SimpleNamespace(number=number, status="done", error=None, strategy="margin",
                               n_labels_used=40, timings={}, gain=gain, metrics={
                                   "accuracy": 0.612, "macro_f1": 0.3, "label_f1": 0.437})

    old = rnd(1, {"accuracy": 0.111})
    new = rnd(2, {"accuracy": 0.111, "measure": "label_f1", "score": 0.052})
    table = shown("multilabel", old, new)
    assert "gain (label F1)" in table
    row = {cells[1]: line for line in table.splitlines()
           if len(cells := line.split()) > 1 and cells[1] in ("1", "2")}
    assert all(v in row["2"] for v in ("0.437", "+0.052"))
    assert "0.612" not in row["2"]
    assert "0.437" in row["1"]
    assert "+0.111" not in row["1"]
    classifier = shown("classification", old)
    assert all(v in classifier for v in ("gain (accuracy)", "0.612", "+0.111"))
