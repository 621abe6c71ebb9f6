"""The ``activelabel`` command line: one Typer app, one command per task.

Bad input never shows a traceback: it prints one line, ``error: ...``, on stderr and exits with
status 2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from activelabel.datasets import Dataset
    from activelabel.labeling.stats import ProjectCounts
    from activelabel.simulation import SimulationResult, SimulationStep
    from activelabel.store import DataLocation, Storage

__all__ = ["app", "main", "plot_learning_curves", "projects_table", "results_table", "rounds_table"]

#: Exit status for bad input (same as a usage error).
EXIT_BAD_INPUT = 2

app = typer.Typer(
    name="activelabel",
    help="Self-hosted active-learning labeling.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class BadInput(Exception):
    """Input the user can fix; shown as one ``error:`` line, exit status 2."""


def _version() -> str:
    import activelabel

    return str(getattr(activelabel, "__version__", "unknown"))


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"activelabel {_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Self-hosted active-learning labeling: a model picks what people label next."""


def default_strategies() -> str:
    """``random,margin,`` the library's default strategy and a project's default (``auto``,
    the schedule), without repeats."""
    from activelabel.simulation import AUTO
    from activelabel.strategies import DEFAULT_STRATEGY

    return ",".join(dict.fromkeys(["random", "margin", DEFAULT_STRATEGY, AUTO]))


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Directory for results.json and learning_curves.png.")],
    dataset: Annotated[
        str | None, typer.Option(help="Built-in dataset: digits, wine or breast_cancer.")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="Labeled .jsonl, .csv or .parquet file.")
    ] = None,
    text_field: Annotated[
        str | None, typer.Option(help="Field holding the text (default: text, if present).")
    ] = None,
    label_field: Annotated[str, typer.Option(help="Field holding the label.")] = "label",
    strategies: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated strategies (default: random,margin,cluster_margin,auto)."
        ),
    ] = None,
    seed_size: Annotated[int, typer.Option(help="Labels in the cold-start seed batch.")] = 20,
    batch_size: Annotated[int, typer.Option(help="Labels revealed per round.")] = 10,
    budget: Annotated[int, typer.Option(help="Total labels, seed included.")] = 300,
    repeats: Annotated[int, typer.Option(help="Repeats with different splits and seeds.")] = 3,
    test_size: Annotated[float, typer.Option(help="Fraction of rows held out for testing.")] = 0.3,
    random_state: Annotated[int, typer.Option(help="Base random seed.")] = 0,
    model: Annotated[
        str, typer.Option(help="logistic_regression, random_forest, naive_bayes or sgd.")
    ] = "logistic_regression",
    model_param: Annotated[
        list[str] | None,
        typer.Option(help="A model parameter as KEY=VALUE (VALUE read as JSON, else text), "
                     "e.g. C=10 or calibrate=auto; repeatable."),
    ] = None,
    featurizer: Annotated[
        str,
        typer.Option(help="auto (the data's default: TF-IDF for text), text, sentence "
                     "(the embeddings extra), numeric or image."),
    ] = "auto",
    featurizer_param: Annotated[
        list[str] | None,
        typer.Option(help="A featurizer parameter as KEY=VALUE, e.g. min_df=2; repeatable."),
    ] = None,
    attach: Annotated[
        str | None,
        typer.Option(help="Project (id or name) whose dashboard shows this simulation's "
                     "random-sampling curve beside its own learning curve."),
    ] = None,
    task: Annotated[
        str, typer.Option(help="classification, or spans: --data is JSONL of {text, tokens?, "
                          "spans, split} (train sentences the pool, test ones measure); a CRF "
                          "per round, entity-level micro-F1; sequence strategies.")
    ] = "classification",
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Replay active learning on a fully labeled dataset and compare strategies."""
    from activelabel.simulation import simulate as run_simulation

    if task == "spans":
        _simulate_spans(data, strategies, seed_size, batch_size, budget, repeats,
                        random_state, out)
        return
    if task != "classification":
        raise BadInput(f"--task is classification or spans, got {task!r}")

    ds = _load_dataset(dataset, data, text_field, label_field)
    names = [s.strip() for s in (strategies or default_strategies()).split(",") if s.strip()]
    if attach is not None:
        if "random" not in names:
            raise BadInput("--attach shows the random-sampling curve beside the project's: add "
                           "random to --strategies")
        _attached_project(attach, data_dir, db)  # an unknown project fails before the run
    err = Console(stderr=True)
    with _Progress(err) as (progress, task):

        def on_step(step: SimulationStep) -> None:
            progress.update(
                task,
                total=step.total,
                completed=step.done,
                description=f"{step.strategy} (repeat {step.repeat + 1})",
            )

        result = run_simulation(
            ds, strategies=names, seed_size=seed_size, batch_size=batch_size, budget=budget,
            repeats=repeats, test_size=test_size, random_state=random_state, model=model,
            model_params=_key_values("--model-param", model_param),
            featurizer=featurizer,
            featurizer_params=_key_values("--featurizer-param", featurizer_param),
            on_step=on_step,
        )  # fmt: skip
    drawn = _write_outputs(result, out)
    if attach is not None:
        _attach_simulation(attach, out / "results.json", data_dir, db)
    console = Console()
    if not console.is_terminal:  # piped: wide enough that the table does not wrap
        console = Console(width=160)
    console.print(results_table(result))
    if drawn:
        console.print(f"wrote {out / 'results.json'} and {out / 'learning_curves.png'}")
    else:
        console.print(f"wrote {out / 'results.json'}; learning_curves.png needs matplotlib: "
                      "pip install 'activelabel[plot]'", markup=False, soft_wrap=True)


def _simulate_spans(data: Path | None, strategies: str | None, seed_size: int,
                    batch_size: int, budget: int, repeats: int, random_state: int,
                    out: Path) -> None:
    """``simulate --task spans``: entity F1 against labeled sentences per sequence strategy."""
    from activelabel.span_simulation import load_span_dataset, simulate_spans
    from activelabel.spans import SpanError

    if data is None:
        raise BadInput("--task spans needs --data: a JSONL file of {text, tokens?, spans, "
                       "split} rows")
    try:
        spans_data = load_span_dataset(data)
        from activelabel.labeling.span_rounds import SPAN_STRATEGY_DEFAULT

        names = [s.strip() for s in (strategies or f"random,{SPAN_STRATEGY_DEFAULT}").split(",")
                 if s.strip()]
        err = Console(stderr=True)
        result = simulate_spans(
            spans_data, names, seed_size=seed_size, batch_size=batch_size, budget=budget,
            repeats=repeats, seed=random_state,
            on_step=lambda name, n, i, f1: err.print(f"{name}: {n} sentences, F1 {f1:.3f}"))
    except (SpanError, ValueError, OSError) as exc:
        raise BadInput(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result.to_dict(), indent=2))
    table = Table(title=f"{result.dataset}: entity micro-F1 on {result.n_test} test sentences "
                  f"(full pool of {result.n_pool}: {result.full_f1:.3f})")
    table.add_column("strategy")
    for point in next(iter(result.curves.values())):
        table.add_column(f"{int(point['n_labeled'])}", justify="right")
    table.add_column("round s", justify="right")
    for name, curve in result.curves.items():
        table.add_row(name, *[f"{p['f1']:.3f}" for p in curve],
                      f"{result.round_seconds[name]:.1f}")
    Console(width=200).print(table)
    Console().print(f"wrote {out / 'results.json'}")


def _key_values(option: str, items: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` options as a dict; a VALUE that parses as JSON is that value, else text."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"{option} wants KEY=VALUE, got {item!r}")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        out[key.strip()] = value
    return out


def _attached_project(project: str, data_dir: Path | None, db: str | None) -> int:
    storage = _storage(data_dir, db)
    try:
        with storage.read_sessions() as session:
            return _project_id(session, project)
    finally:
        storage.close()


def _attach_simulation(project: str, results: Path, data_dir: Path | None,
                       db: str | None) -> None:
    from activelabel.labeling.insights import attach_simulation
    from activelabel.store import record_audit

    storage = _storage(data_dir, db)
    try:
        with storage.sessions() as session, session.begin():
            project_id = _project_id(session, project)
            attach_simulation(storage, project_id, json.loads(results.read_text()))
            record_audit(session, "attach", "simulation", project_id, project_id=project_id,
                         after={"results": str(results)})
    finally:
        storage.close()
    typer.echo(f"project {project_id} now shows this simulation's random-sampling curve")


def _load_dataset(
    dataset: str | None, data: Path | None, text_field: str | None, label_field: str
) -> Dataset:
    from activelabel.datasets import load_builtin, load_file

    if (dataset is None) == (data is None):
        raise BadInput("give exactly one of --dataset NAME or --data PATH")
    if dataset is not None:
        return load_builtin(dataset)
    assert data is not None
    if text_field is None:
        return load_file(data, label_field=label_field)
    return load_file(data, text_field=text_field, label_field=label_field, kind="text")


class _Progress:
    """A rich progress bar on stderr, shown only when stderr is a terminal."""

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self.progress = Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console, disable=not console.is_terminal, transient=True,
        )  # fmt: skip

    def __enter__(self) -> tuple[Any, Any]:
        self.progress.start()
        return self.progress, self.progress.add_task("simulating", total=None)

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def _write_outputs(result: SimulationResult, out: Path) -> bool:
    """results.json, and learning_curves.png if matplotlib (the plot extra) is installed.

    Returns whether the picture was drawn."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot create output directory {out}: {exc.strerror}") from None
    (out / "results.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    plot_learning_curves(result, out / "learning_curves.png")
    return True


def results_table(result: SimulationResult) -> Table:
    """Per strategy: final accuracy ± std, macro-F1, ECE, area under the curve, labels to target."""
    table = Table(
        title=f"{result.dataset}: target {result.target:.3f} "
        f"(95% of full-data accuracy {result.full_data_accuracy:.3f})"
    )
    for col in ("strategy", "final accuracy", "macro-F1", "ECE", "AUC", "labels to target",
                "saved vs random"):  # fmt: skip
        table.add_column(col, justify="left" if col == "strategy" else "right")
    for name, points in result.curves.items():
        last = points[-1]
        n = result.labels_to_target[name]
        saved = result.labels_saved_vs_random.get(name)
        table.add_row(
            name,
            f"{last.accuracy:.3f} ± {last.accuracy_std:.3f}",
            f"{last.macro_f1:.3f}",
            f"{last.ece:.3f}",
            f"{result.area_under_curve[name]:.3f}",
            "not reached" if n is None else str(n),
            "-" if saved is None else f"{saved:.0%}",
        )
    return table


def plot_learning_curves(result: SimulationResult, path: Path) -> None:
    """Accuracy vs labels per strategy with ±std bands and a dashed line at the target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for name, points in result.curves.items():
        n = [p.n_labeled for p in points]
        acc = [p.accuracy for p in points]
        std = [p.accuracy_std for p in points]
        (line,) = ax.plot(n, acc, label=name, linewidth=1.8)
        lo = [a - s for a, s in zip(acc, std, strict=True)]
        hi = [a + s for a, s in zip(acc, std, strict=True)]
        ax.fill_between(n, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
    ax.axhline(result.target, color="black", linestyle="--", linewidth=1,
               label=f"target {result.target:.3f}")  # fmt: skip
    ax.set_xlabel("labels (seed included)")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{result.dataset}: learning curves, mean ± std over "
                 f"{result.config['repeats']} repeats")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ---- the labeling service ---------------------------------------------------------------------

DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data folder (default: $ACTIVELABEL_DATA_DIR, else "
                 "~/.local/share/activelabel)."),
]
DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL, e.g. postgresql+psycopg://USER@HOST:5432/DB "
                 "(default: $ACTIVELABEL_DB, else SQLite inside the data folder)."),
]
ProjectArg = Annotated[str, typer.Argument(help="Project id or name.", show_default=False)]
#: Rejected rows printed by ``import --wait`` (the job keeps the first 1000).
SHOWN_REJECTED = 10

users_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
tokens_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
projects_app = typer.Typer(help="List projects, show one with its settings.",
                           no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(projects_app, name="project")
app.add_typer(projects_app, name="projects", hidden=True)  # the plural reads as well


def _settings(data_dir: Path | None, db: str | None) -> DataLocation:
    from activelabel.runtime.settings import resolve_location

    return resolve_location(data_dir, db)


def _storage(data_dir: Path | None, db: str | None) -> Storage:
    from activelabel.store import Storage

    return Storage(_settings(data_dir, db))


def _out() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=160)


def _project_id(session: Session, ref: str) -> int:
    """The id of the project named or numbered ``ref``."""
    from activelabel.labeling.projects import find_project
    from activelabel.store import NotFound

    try:
        return find_project(session, ref).id
    except NotFound as exc:
        raise BadInput(exc.message) from None


@app.command()
def serve(
    data_dir: DataDirOption = None,
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes for rounds, imports and label checks.")] = 1,
    processes: Annotated[int | None, typer.Option(help=(
        "API processes (uvicorn workers); default 1 on SQLite, 2 on PostgreSQL (at most one "
        "per core)."))] = None,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Start no worker (run `activelabel worker`).")
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the labeling server (REST API, docs at /docs) with its background worker."""
    from activelabel.runtime.server import serve as run_server

    settings = _settings(data_dir, db)
    if workers < 0:
        raise BadInput(f"--workers must be >= 0, got {workers}")

    def announce(url: str) -> None:
        typer.echo(f"activelabel serving at {url}  (web app: {url}/, API docs: {url}/docs)",
                   err=True)
        typer.echo(f"data: {settings.data_dir}  database: {settings.safe_db_url()}", err=True)

    run_server(settings, host=host, port=port, workers=0 if no_worker else workers,
               processes=processes, log_level=log_level, announce=announce)


@app.command()
def backup(
    out: Annotated[Path, typer.Option(help="The backup file to write (.tar.gz).",
                                      show_default=False)],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Back up the database and the data folder's files into one file, while the server runs."""
    from activelabel.runtime.backup import make_backup

    storage = _storage(data_dir, db)
    try:
        info = make_backup(storage, out, overwrite=force)
    finally:
        storage.close()
    typer.echo(f"wrote {info.path} ({info.database} database at revision {info.revision}, "
               f"{info.files} files, {info.bytes:,} bytes)")
    if info.skipped:
        typer.echo(f"left out {len(info.skipped)} file(s) the server removed while the backup "
                   f"ran (a purge, a deleted project): {', '.join(info.skipped[:5])}"
                   + (" ..." if len(info.skipped) > 5 else ""))


@app.command()
def restore(
    backup_file: Annotated[Path, typer.Argument(help="A file `activelabel backup` wrote.",
                                                show_default=False)],
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Restore a backup into a new data folder (and an empty database), then migrate it."""
    from activelabel.runtime.backup import restore_backup

    info = restore_backup(backup_file, _settings(data_dir, db))
    typer.echo(f"restored {info.path} ({info.database} database, {info.files} files); "
               "start the server on it with `activelabel serve` and the same --data-dir/--db")


@app.command()
def worker(data_dir: DataDirOption = None, db: DbOption = None) -> None:
    """Run background jobs (rounds, imports) until stopped; `serve` starts one for you."""
    from activelabel.runtime.worker import main as run_worker

    run_worker(_settings(data_dir, db))


@app.command()
def demo(
    data_dir: DataDirOption = None,
    db: DbOption = None,
    password: Annotated[
        str | None, typer.Option(help="Password of the admin user (default: generated).")
    ] = None,
    url: Annotated[str, typer.Option(help="Address printed for the server.")] = (
        "http://127.0.0.1:8000"),
    images: Annotated[bool, typer.Option(
        "--images", help="The digits as PNG files imported from a folder (a project of its "
                         "own, \"Digits demo (PNG files)\").")] = False,
) -> None:
    """Create a demo project from scikit-learn's digits, an admin user and the seed batch."""
    from activelabel.runtime.demo import DEMO_FILES_PROJECT, DEMO_PROJECT, create_demo

    storage = _storage(data_dir, db)
    try:
        result = create_demo(storage, password=password, files=images)
    finally:
        storage.close()
    state = "created" if result.created_project else "already there"
    name = DEMO_FILES_PROJECT if images else DEMO_PROJECT
    typer.echo(f"project {result.project_id} \"{name}\" ({state}): {result.items} items, "
               f"{result.holdout_labeled} holdout items labeled, seed round "
               f"{result.round_id} {result.round_status}")
    typer.echo(f"open {url.rstrip('/')}/ in a browser  (API docs: {url.rstrip('/')}/docs)")
    shown = result.password or "unchanged (pass --password to set a new one)"
    typer.echo(f"login: {result.username} / {shown}")


def _show_progress(values: Mapping[str, Any]) -> None:
    console = Console(stderr=True)
    if console.is_terminal:
        console.print(" ".join(f"{k}={v}" for k, v in values.items()), end="\r")


@app.command("import")
def import_file(
    project: ProjectArg,
    file: Annotated[Path, typer.Argument(help=(
        "JSONL, CSV or Parquet file; a folder of images; with --images a zip of images or a "
        "CSV / JSONL list of image paths or URLs."), show_default=False)],
    split: Annotated[
        str | None, typer.Option(help="pool, holdout or gold for rows that name no split.")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Import now, here, and report.")] = False,
    preview: Annotated[bool, typer.Option(
        "--preview", help="Show the columns found and the role proposed for each, import "
                          "nothing.")] = False,
    proposed: Annotated[bool, typer.Option(
        "--proposed", help="Import with the proposed mapping (existing labels, predictions, "
                           "vectors as --preview shows), --map changing it.")] = False,
    map_: Annotated[list[str] | None, typer.Option(
        "--map", help="COLUMN=ROLE (repeat): content, private, label, annotator, label_time, "
                      "gold, prediction, prediction_score, prediction_model, vector, split, "
                      "external_id, ignore.")] = None,
    images: Annotated[bool, typer.Option(
        "--images", help="FILE is a zip of images, or a CSV / JSONL list whose --column "
                         "holds image paths or URLs (a folder is always images).")] = False,
    labels_from_folders: Annotated[bool, typer.Option(
        "--labels-from-folders", help="Images: a subfolder named after a label gives its "
                                      "files that label.")] = False,
    column: Annotated[str, typer.Option(
        help="Images from a list: the column of paths or URLs.")] = "image",
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Import items from a file: queued for the worker, or run at once with --wait.

    Without --map or --proposed the project's saved mapping applies (else answer-like
    columns are kept private and the rest shown); a mapping given is saved for next time.

    Images (a folder, or --images) are checked and copied into the data folder; the command
    reads any local file you can, URLs only under ACTIVELABEL_IMAGE_URL_PREFIXES."""
    from activelabel.labeling.imports import enqueue_import, preview_import, save_upload

    if file.is_dir() or images:
        _import_images(project, file, split=split, wait=wait, by_folder=labels_from_folders,
                       column=column, data_dir=data_dir, db=db)
        return
    if not file.is_file():
        raise BadInput(f"{file} is not a file: pass the path of a .jsonl, .csv or .parquet file")
    from activelabel.store import SPLITS

    if split is not None and split not in SPLITS:
        raise BadInput(f"--split {split!r} is not one of {', '.join(SPLITS)}")
    overrides = _column_roles(map_ or [])
    storage = _storage(data_dir, db)
    try:
        with storage.sessions() as session:
            project_id = _project_id(session, project)
        with file.open("rb") as stream:
            saved = save_upload(storage, project_id, file.name, stream)
        mapping: dict[str, Any] | None = None
        if preview or proposed:
            with storage.read_sessions() as session:
                shown = preview_import(session, project_id, saved)
            if preview:
                saved.unlink(missing_ok=True)
                _show_proposal(shown)
                return
            mapping = {"columns": {**shown["mapping"]["columns"], **overrides}}
        elif overrides:
            mapping = {"columns": overrides}
        _queue_or_run(storage, project_id, wait, lambda session: enqueue_import(
            session, project_id, saved, requested_by=None, split=split, mapping=mapping).id)
    finally:
        storage.close()


def _import_images(project: str, source: Path, *, split: str | None, wait: bool,
                   by_folder: bool, column: str, data_dir: Path | None, db: str | None) -> None:
    """``activelabel import`` of a folder, a zip or a list of images."""
    from dataclasses import replace

    from activelabel.http.config import server_settings_from_env
    from activelabel.labeling.images import enqueue_image_import
    from activelabel.labeling.imports import save_upload

    source = source.expanduser().resolve()
    if source.is_dir():
        fmt = "image_folder"
    elif source.suffix.lower() == ".zip":
        fmt = "image_zip"
    elif source.suffix.lower() in (".csv", ".jsonl", ".ndjson"):
        fmt = "image_list"
    else:
        raise BadInput(f"{source} is not a folder, a .zip or a .csv / .jsonl list of images")
    if not source.exists():
        raise BadInput(f"{source} does not exist")
    # The command runs as someone who reads the files anyway: local paths are not limited.
    rules = replace(server_settings_from_env().image_rules(),
                    roots=(str(source),) if fmt == "image_folder" else (source.anchor,))
    storage = _storage(data_dir, db)
    try:
        with storage.sessions() as session:
            project_id = _project_id(session, project)
        path = str(source)
        if fmt != "image_folder":
            with source.open("rb") as stream:
                path = str(save_upload(storage, project_id, source.name, stream))
        _queue_or_run(storage, project_id, wait, lambda session: enqueue_image_import(
            session, project_id, fmt, path, rules=rules, requested_by=None, split=split,
            labels_from_folders=by_folder, column=column).id)
    finally:
        storage.close()


def _queue_or_run(storage: Storage, project_id: int, wait: bool,
                  enqueue: Callable[[Session], int]) -> None:
    """Queue an import job (``enqueue`` returns its id in a transaction), then run it here and
    report it, or without ``wait`` say who will run it."""
    from activelabel.runtime.server import run_job_inline

    with storage.sessions() as session, session.begin():
        job_id = enqueue(session)
    if not wait:
        typer.echo(f"import job {job_id} queued for project {project_id}; "
                   "`activelabel serve` or `activelabel worker` runs it")
        return
    job = run_job_inline(storage, job_id, on_progress=_show_progress)
    _report_import(job_id, job.status, job.result or {}, job.error)


def _column_roles(pairs: list[str]) -> dict[str, str]:
    """``--map COLUMN=ROLE`` options as a mapping's columns (roles checked at enqueue)."""
    out: dict[str, str] = {}
    for pair in pairs:
        column, sep, role = pair.rpartition("=")
        if not sep or not column or not role:
            raise BadInput(f"--map {pair!r} is not COLUMN=ROLE, e.g. --map label=label")
        out[column] = role
    return out


def _show_proposal(preview: Mapping[str, Any]) -> None:
    typer.echo(f"{len(preview['rows'])} rows read, columns: {', '.join(preview['columns'])}")
    for p in preview["proposal"]:
        warn = "  (looks like an answer)" if p["answer_like"] else ""
        typer.echo(f"  {p['column']}: {p['role']} - {p['reason']}{warn}")
    roles = " ".join(f"--map {p['column']}={p['role']}" for p in preview["proposal"])
    typer.echo(f"import with --proposed, or name the roles: {roles}")


@app.command()
def vectors(
    project: ProjectArg,
    file: Annotated[Path, typer.Argument(help=".npy (with --ids) or .parquet (external_id, "
                                              "vector) file.", show_default=False)],
    ids: Annotated[Path | None, typer.Option(help="With a .npy: the external ids, one a "
                                                  "line, in the array's row order.")] = None,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Store the project's own embeddings, aligned by external id (the ``vectors``
    featurizer reads them); nothing is stored when a vector is wrong."""
    from activelabel.labeling.vectors import import_vector_file

    for path in (file, ids):
        if path is not None and not path.is_file():
            raise BadInput(f"{path} is not a file")
    storage = _storage(data_dir, db)
    try:
        with storage.sessions() as session:
            project_id = _project_id(session, project)
        done = import_vector_file(storage, project_id, file, ids)
    finally:
        storage.close()
    typer.echo(f"{done['stored']} vectors of {done['dim']} values stored; "
               f"{done['items_without_vector']} items have none")


def _report_import(job_id: int, status: str, result: Mapping[str, Any], error: str | None) -> None:
    from activelabel.store import JobStatus

    if status != JobStatus.DONE:
        raise JobError(f"import job {job_id} {status}: {error or 'no error message'}")
    rejected = list(result.get("rejected") or [])
    count = int(result.get("rejected_count", len(rejected)))
    typer.echo(f"import job {job_id} done: {result.get('inserted', 0)} inserted, "
               f"{result.get('duplicates', 0)} duplicates, {count} rejected"
               f" in {float(result.get('seconds') or 0):.1f} s")
    extras = [f"{result[k]} {k.replace('labels', 'existing labels')}"
              for k in ("labels", "predictions", "vectors") if result.get(k)]
    if extras:
        typer.echo("with them: " + ", ".join(extras))
    held = dict(result.get("held_private") or {})
    if held:  # no mapping given, none saved: what the proposal would have imported
        import shlex

        again = [f"--map {shlex.quote(f'{c}={r}')}" for c, r in held.items()
                 if r in ("label", "annotator", "label_time")]
        rest = [c for c, r in held.items() if r not in ("label", "annotator", "label_time")]
        typer.echo("kept private (stored with the items, never shown), not imported as "
                   "their role: " + ", ".join(f"{c} (proposed: {r})" for c, r in held.items())
                   + ("; to import the labels, import the file again with " + " ".join(again)
                      + " (its items are not doubled: those already in take the labels)"
                      if again else "")
                   + (f"; {', '.join(rest)}: imported with new items only (--proposed or "
                      "--map on their first import)" if rest else ""))
    if result.get("labels_skipped"):
        why = dict(result.get("labels_skipped_why") or {})
        words = dict(result.get("labels_skipped_reasons") or {})
        typer.echo(f"{result['labels_skipped']} existing labels of items already in left out"
                   + (": " + "; ".join(f"{n}: {words.get(code, code)}"
                                       for code, n in why.items()) if why else ""))
    for row in rejected[:SHOWN_REJECTED]:
        typer.echo(f"  line {row.get('line')}: {row.get('reason')}")
    if count > SHOWN_REJECTED:
        typer.echo(f"  ... and {count - SHOWN_REJECTED} more rejected rows")
    drift = result.get("drift")
    if drift:
        if drift.get("shifted"):
            queued = result.get("drift_round_id")
            typer.echo("the new items differ from the training data: " +
                       "; ".join(drift.get("reasons") or []) +
                       (f" (round {queued} queued)" if queued else ""))
        else:
            typer.echo(f"the new items look like the training data (feature PSI "
                       f"{float(drift.get('embedding_psi') or 0):.2f})")


class JobError(Exception):
    """A job run by the command failed; shown as one ``error:`` line, exit status 1."""


@app.command()
def export(
    project: ProjectArg,
    out: Annotated[Path, typer.Option(help="File to write.", show_default=False)],
    format: Annotated[
        str | None, typer.Option("--format", help="jsonl, csv, parquet, labelstudio, huggingface "
                                 "or spacy (default: from --out).")
    ] = None,
    include_private: Annotated[
        bool, typer.Option("--include-private", help="Keep the project's private fields.")
    ] = False,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Write the labels with provenance (round, strategy, score, model) to a file."""
    from activelabel.labeling.export import EXPORT_FORMATS, export_stream

    fmt = format or {".csv": "csv", ".parquet": "parquet", ".json": "labelstudio",
                     ".zip": "huggingface"}.get(out.suffix.lower(), "jsonl")
    if fmt not in EXPORT_FORMATS:
        raise BadInput(f"--format {fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")
    storage = _storage(data_dir, db)
    partial = out.with_name(out.name + ".part")
    try:
        with storage.sessions() as session:
            project_id = _project_id(session, project)
        chunks, _media, _name = export_stream(storage, project_id, fmt,
                                              include_private=include_private)
        size = 0
        with partial.open("wb") as sink:
            for chunk in chunks:
                sink.write(chunk)
                size += len(chunk)
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
        storage.close()
    typer.echo(f"wrote {out} ({fmt}, {size} bytes)")


@app.command("round")
def round_(
    project: ProjectArg,
    wait: Annotated[bool, typer.Option("--wait", help="Run the round now, here.")] = False,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Request a round (train, evaluate, score, select); --wait runs it at once."""
    from activelabel.labeling.rounds import request_round
    from activelabel.runtime.server import run_job_inline
    from activelabel.store import RoundStatus

    storage = _storage(data_dir, db)
    try:
        with storage.sessions() as session, session.begin():
            project_id = _project_id(session, project)
            rnd, created = request_round(session, project_id, requested_by=None, reason="manual")
            round_id, number, job_id = rnd.id, rnd.number, rnd.job_id
        verb = "queued" if created else "already queued"
        typer.echo(f"round {number} (id {round_id}) {verb} for project {project_id}")
        if not wait:
            return
        if job_id is None:
            raise JobError(f"round {round_id} has no job to run")
        run_job_inline(storage, job_id, on_progress=_show_progress)
        with storage.read_sessions() as session:
            from activelabel.store import get_project, get_round

            rnd = get_round(session, project_id, round_id)
            task = get_project(session, project_id).task
            _out().print(rounds_table([rnd], task, title=f"round {rnd.number}"))
            if rnd.status != RoundStatus.DONE:
                raise JobError(f"round {rnd.number} {rnd.status}: {rnd.error or 'no message'}")
    finally:
        storage.close()


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def round_strategy(strategy: str, metrics: Mapping[str, Any]) -> str:
    """A round's strategy as the dashboard shows it: an ``auto`` round names the strategy
    its schedule ran ("auto: cluster_margin")."""
    ran = (metrics.get("schedule") or {}).get("strategy")
    return f"{strategy}: {ran}" if ran and ran != strategy else strategy


def rounds_table(rounds: Sequence[Any], task: str, title: str = "rounds") -> Table:
    """One row per round: status, labels used, holdout metrics (the task's score first:
    accuracy, a multi-label project's label F1, a span project's entity F1), its gain, timings."""
    from activelabel.estimates import MEASURE_NAMES, TASK_MEASURES
    from activelabel.labeling.insights import task_gain

    measure = TASK_MEASURES[task]
    name = MEASURE_NAMES[measure]
    table = Table(title=title)
    for col in ("round", "status", "strategy", "labels used", name, "macro-F1", "ECE",
                f"gain ({name})", "train s", "total s"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("status", "strategy") else "right")
    for rnd in rounds:
        metrics, timings = rnd.metrics or {}, rnd.timings or {}
        delta = (task_gain(rnd.gain, task) or {}).get("score")
        table.add_row(
            str(rnd.number), rnd.status + (f" ({rnd.error[:40]})" if rnd.error else ""),
            round_strategy(rnd.strategy, metrics), _fmt(rnd.n_labels_used),
            _fmt(metrics.get(measure)),
            _fmt(metrics.get("macro_f1")), _fmt(metrics.get("ece")),
            "-" if delta is None else f"{delta:+.3f}", _fmt(timings.get("train_s"), 2),
            _fmt(timings.get("total_s"), 2))
    return table


@app.command()
def status(
    project: Annotated[
        str | None, typer.Argument(help="Project id or name (default: every project).")
    ] = None,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Progress, backlog and the last rounds, as tables."""
    from activelabel.labeling.stats import project_counts
    from activelabel.store import list_projects, list_rounds

    console = _out()
    storage = _storage(data_dir, db)
    try:
        with storage.read_sessions() as session:
            if project is None:
                console.print(projects_table(session, list_projects(session)))
                return
            project_id = _project_id(session, project)
            from activelabel.store import get_project

            proj = get_project(session, project_id)
            counts = project_counts(session, project_id)
            console.print(_progress_table(proj.name, project_id, counts))
            console.print(f"backlog: {counts.backlog} pool items to label; "
                          f"{counts.jobs_waiting} jobs queued or running", highlight=False)
            console.print(rounds_table(list_rounds(session, project_id)[-5:], proj.task,
                                       title="last rounds"))
            from activelabel.labeling.payoff import payoff

            for line in (quality_lines(session, proj) + outlook_lines(session, proj)
                         + [payoff_line(payoff(session, storage.arrays, proj)),
                            features_line(storage, session, proj, counts.n_items)]):
                console.print(line, highlight=False)
    finally:
        storage.close()


def outlook_lines(session: Session, project: Any) -> list[str]:
    """The team's pace and cadence, the last round's stopping verdicts and the forecast."""
    from activelabel.labeling.insights import outlook

    o = outlook(session, project)
    p = o["pace"]
    auto = {True: " (auto)", False: ""}
    unit = p["counts"]  # the trigger and the lag count labeled items
    overlap = f" ({p['labels_per_item']:.1f} labels an item)" if unit == "items" else ""
    lines = [f"pace: {p['labels_per_minute']:.1f} labels/min{overlap} from {p['active_annotators']} "
             f"active annotators; batch {p['batch_size'] or '-'}{auto[p['batch_auto']]}, next "
             f"round after {p['retrain_after']} {unit}{auto[p['cadence_auto']]}; model "
             f"{p['labels_behind']} {unit} behind (max {p['max_model_lag']})"]
    if o["round"] is not None:
        lines.append(f"stopping rules (round {o['round']}): "
                     + ("STOP" if o["stop"] else "keep labeling"))
        lines += [f"  {'stop' if v['stop'] else 'go on'}: {v['reason']}" for v in o["verdicts"]]
    lines.append(f"forecast: {o['forecast']['text']}")
    return lines


def payoff_line(p: Mapping[str, Any]) -> str:
    """The dashboard's payoff headline as one line: the model's score on the audit labels
    with its interval, the labels spent, what random sampling would have needed, the target."""
    def pct(x: float) -> str:
        return f"{100 * x:.1f}%"

    if p["accuracy"] is None:
        return f"payoff: {p.get('note') or 'no score yet'}; {p['labels_spent']} labels spent"
    from .estimates import MEASURE_NAMES

    measure = MEASURE_NAMES.get(p.get("measure", ""), "accuracy")
    parts = [f"payoff: {measure} {pct(p['accuracy'])} ({p['confidence']:.0%} interval "
             f"{pct(p['low'])}-{pct(p['high'])}, {p['audit_labels']} audit labels)",
             f"{p['labels_spent']} labels spent"]
    needed, curve = p["random_labels_needed"], p["random_curve"]
    if needed is not None:
        low, high = p["random_labels_range"] or (None, None)
        notes = ["extrapolated"] if p["random_extrapolated"] else []
        if low is not None or high is not None:
            notes.append(f"{'?' if low is None else low} to "
                         f"{'more than the curve tells' if high is None else high} within "
                         "both intervals")  # the model's and the curve's (dashboard.js)
        parts.append(f"random sampling would have needed about {needed}"
                     + (f" ({'; '.join(notes)})" if notes else ""))
    elif curve:
        parts.append(f"random sampling's curve (up to {int(curve[-1][0])} audit labels) "
                     "cannot tell yet what it would have needed")
    if p["to_target"] is not None:  # the dashboard's words (dashboard.js, targetText)
        target = pct(p["target_accuracy"])
        below = f"{pct(abs(p['to_target']))} below the target {target}"
        parts.append({
            "reached_by_estimate": f"target {target} reached by the estimate, not yet by the "
                                   f"interval (low end {pct(p['low'])})",
            "below_by_estimate": f"{below} (the interval reaches it)",
            "below": below,
        }.get(p.get("target_status") or ("below" if p["to_target"] > 0 else "reached"),
              f"target {target} reached"))
    return "; ".join(parts)


def features_line(storage: Storage, session: Session, project: Any, n_items: int) -> str:
    """What the model reads: the featurizer and, for text, the sentence vectors' progress."""
    from activelabel.labeling.featurize import features_status

    f = features_status(storage, session, project, n_items)
    built = ("not built yet" if f["built_for"] is None
             else f"built for {f['built_for']:,} items")
    vectors = f["sentence_vectors"]
    return f"features: {f['featurizer']} ({built})" + (f"; {vectors['text']}" if vectors else "")


def quality_lines(session: Session, project: Any) -> list[str]:
    """Agreement against the project's target and gold alerts, as sentences."""
    from activelabel.labeling.quality import agreement_report, annotator_report, label_table
    from activelabel.store import settings_of

    table = label_table(session, project)
    report = agreement_report(table, project)
    alpha, target = report["krippendorff_alpha"], report["target"]
    if alpha is None:
        lines = [f"agreement: not enough items with two or more labels yet "
                 f"({report['n_items']})"]
    else:
        verdict = ""
        if target is not None:
            verdict = (f" — BELOW the target {target:.2f}" if report["below_target"]
                       else f" — meets the target {target:.2f}")
        lines = [f"agreement: Krippendorff's alpha {alpha:.3f} over {report['n_items']} items"
                 f"{verdict}"]
        lines += [f"  pair {p['a']} / {p['b']}: kappa {p['kappa']:.3f} over {p['n']} items "
                  "(below target)" for p in report["cohen_kappa_pairs"]
                  if p["below_target"] and p["kappa"] is not None]
        lines += [f"  label {label}: agreement {v['agreement']:.3f} (below target)"
                  for label, v in report["per_label"].items()
                  if v["below_target"] and v["agreement"] is not None]
    for row in annotator_report(table, project):
        if row.gold_alert and row.gold_accuracy is not None:
            lines.append(f"gold alert: {row.username} is right on {row.gold_accuracy:.0%} of "
                         f"{row.gold_n} gold items (alert below "
                         f"{settings_of(project.settings).gold_alert_below or 0:.0%})")
    return lines


def _progress_table(name: str, project_id: int, counts: ProjectCounts) -> Table:
    table = Table(title=f"project {project_id}: {name}")
    for col in ("split", "items", "labeled", "unlabeled"):
        table.add_column(col, justify="left" if col == "split" else "right")
    for split in counts.items:
        total, done = counts.items[split], counts.labeled[split]
        pct = f" ({done / total:.0%})" if total else ""
        table.add_row(split, str(total), f"{done}{pct}", str(total - done))
    return table


def projects_table(session: Session, projects: Sequence[Any]) -> Table:
    """Every project with its size, labels, backlog and last round."""
    from activelabel.estimates import ACCURACY, MEASURE_NAMES, TASK_MEASURES
    from activelabel.labeling.stats import project_counts
    from activelabel.store import RoundStatus, list_rounds

    table = Table(title="projects")
    for col in ("id", "name", "task", "items", "labeled", "backlog", "last round", "score"):
        table.add_column(col, justify="left" if col in ("name", "task", "last round") else "right")
    if not projects:
        table.caption = "no projects yet: `activelabel demo` creates one"
    for proj in projects:
        counts = project_counts(session, proj.id)
        rounds = list_rounds(session, proj.id)
        last = rounds[-1] if rounds else None
        done = [r for r in rounds if r.status == RoundStatus.DONE]
        # the last model's holdout score: accuracy, or the task's F1 named
        measure = TASK_MEASURES[proj.task]
        score = (done[-1].metrics or {}).get(measure) if done else None
        shown = _fmt(score) if measure == ACCURACY or score is None \
            else f"{_fmt(score)} {MEASURE_NAMES[measure]}"
        table.add_row(str(proj.id), proj.name, proj.task, str(counts.n_items),
                      str(counts.n_labeled), str(counts.backlog),
                      "-" if last is None else f"{last.number} {last.status}", shown)
    return table


@projects_app.command("list")
def projects_list(data_dir: DataDirOption = None, db: DbOption = None) -> None:
    """Every project: id, name, size, labels, backlog, last round."""
    from activelabel.store import list_projects

    storage = _storage(data_dir, db)
    try:
        with storage.read_sessions() as session:
            _out().print(projects_table(session, list_projects(session)))
    finally:
        storage.close()


@projects_app.command("show")
def project_show(project: ProjectArg, data_dir: DataDirOption = None,
                 db: DbOption = None) -> None:
    """A project: task, labels, members, and every setting with its default and meaning."""
    from activelabel.store import get_project, list_members

    storage = _storage(data_dir, db)
    try:
        with storage.read_sessions() as session:
            proj = get_project(session, _project_id(session, project))
            members = [(u.username, role) for u, role in list_members(session, proj.id)]
            console = _out()
            console.print(f"project {proj.id}: {proj.name} ({proj.task}), labels: "
                          f"{', '.join(map(str, proj.labels))}; guidelines version "
                          f"{proj.guidelines_version}", highlight=False)
            console.print("members: " + (", ".join(f"{n} ({r})" for n, r in members) or
                                         "none"), highlight=False)
            if proj.private_fields:
                console.print("hidden from annotators: " + ", ".join(proj.private_fields),
                              highlight=False)
            console.print(settings_table(proj.settings))
    finally:
        storage.close()


def settings_table(stored: Mapping[str, Any]) -> Table:
    """Every project setting: its value (marked when it differs from the default), the
    default, and what it does."""
    from activelabel.store import ProjectSettings, settings_of
    from activelabel.store.settings import public_settings

    current = ProjectSettings.model_construct(**public_settings(settings_of(stored).model_dump()))
    table = Table(title="settings")
    for col in ("setting", "value", "default", "what it does"):
        table.add_column(col, overflow="fold")
    for name, info in ProjectSettings.model_fields.items():
        value = getattr(current, name)
        default = info.get_default(call_default_factory=True)
        shown = json.dumps(value)
        table.add_row(name, shown if value == default else f"[bold]{shown}[/bold] *",
                      json.dumps(default), info.description or "")
    table.caption = "* changed from the default"
    return table


@users_app.command("create")
def users_create(
    name: Annotated[str, typer.Argument(help="User name (letters, digits, _.@-).",
                                        show_default=False)],
    password: Annotated[
        str | None, typer.Option(help="Password (8+ characters); none: token access only.")
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="Administrator: sees every project, "
                                        "creates users.")] = False,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Create a user account."""
    from activelabel.store import create_user

    storage = _storage(data_dir, db)
    try:
        with storage.sessions() as session, session.begin():
            user = create_user(session, name, password, is_admin=admin)
            user_id = user.id
    finally:
        storage.close()
    kind = "admin" if admin else "user"
    note = "" if password else "; no password: create a token with `activelabel tokens create`"
    typer.echo(f"created {kind} {name} (id {user_id}){note}")


@users_app.command("import")
def users_import(
    team: Annotated[Path, typer.Argument(
        help="CSV with a header: username, and optionally project + role, projects "
             "(sms:annotator;news:reviewer), admin (true/false), password.",
        show_default=False)],
    out: Annotated[Path, typer.Option(
        "--out", help="File for the generated passwords and tokens, created readable by you "
                      "only.")] = Path("credentials.csv"),
    tokens: Annotated[bool, typer.Option(
        "--tokens", help="Give each new user an API token instead of a generated password (a "
                         "password in the file is still set).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Create a team in one go: the missing users, their project roles, and their secrets in a
    file. A bad row creates nothing; existing users only gain new memberships."""
    from activelabel.labeling.team import TeamFileError, import_team_file

    storage = _storage(data_dir, db)
    try:
        done = import_team_file(storage, team, out, tokens=tokens, force=force)
    except TeamFileError as exc:
        typer.echo(f"error: {exc.source}: {_plural(len(exc.problems), 'problem')}, nothing "
                   "was created:", err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    finally:
        storage.close()
    for line in _team_summary(done, out):
        typer.echo(line)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _team_summary(done: Any, out: Path) -> list[str]:
    admins = f" ({_plural(len(done.admins), 'admin')})" if done.admins else ""
    lines = [f"created {_plural(len(done.created), 'user')}{admins}"]
    if done.existing:
        lines.append(f"{_plural(len(done.existing), 'user')} already existed, left as they were "
                     f"(only new memberships added): {', '.join(done.existing)}")
    lines.append(f"added {_plural(len(done.memberships), 'membership')}")
    lines += [f"kept {user} as {held} in {project} (the file says {asked}): change roles on "
              "the project's settings page" for user, project, held, asked in done.kept]
    if done.credentials:
        n_pw = sum(c.password is not None for c in done.credentials)
        n_tok = sum(c.token is not None for c in done.credentials)
        lines.append(f"wrote {_plural(n_pw, 'password')} and {_plural(n_tok, 'token')} to {out} "
                     "(readable by you only; they are not stored anywhere else)")
    elif done.created:
        lines.append(f"no secrets generated (every password was in the file): {out} not "
                     "written")
    return lines


@tokens_app.command("create")
def tokens_create(
    user: Annotated[str, typer.Argument(help="User name the token acts as.", show_default=False)],
    name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "cli",
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Create an API token; the token alone is printed on the last line (shown only once)."""
    from activelabel.store import create_token, get_user_by_name

    storage = _storage(data_dir, db)
    try:
        with storage.sessions() as session, session.begin():
            found = get_user_by_name(session, user)
            if found is None:
                raise BadInput(f"no user {user!r}: create it with `activelabel users create`")
            token, plaintext = create_token(session, found.id, name)
            token_id = token.id
    finally:
        storage.close()
    typer.echo(f"token {token_id} ({name}) for {user}; it is shown only this once:", err=True)
    typer.echo(plaintext)


def _one_line(message: str) -> str:
    return " ".join(message.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``activelabel`` script; returns (and exits with) the exit status."""
    from typer.exceptions import TyperException

    command = typer.main.get_command(app)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        rv = command.main(args, prog_name="activelabel", standalone_mode=False)
    except JobError as exc:
        return _fail(str(exc), 1)
    except (BadInput, ValueError, OSError) as exc:
        return _fail(str(exc), EXIT_BAD_INPUT)
    except TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            typer.echo(exc.format_message(), err=True)
            return EXIT_BAD_INPUT
        return _fail(exc.format_message(), int(getattr(exc, "exit_code", EXIT_BAD_INPUT)))
    except typer.Abort:
        return _fail("aborted", 1)
    except Exception as exc:
        return _service_error(exc)
    return int(rv) if isinstance(rv, int) else 0


def _service_error(exc: Exception) -> int:
    """Storage errors as one line: the caller's mistakes exit 2, an unreachable database 1."""
    from sqlalchemy.exc import OperationalError

    from activelabel.store.errors import ActivelabelError

    if isinstance(exc, ActivelabelError):
        return _fail(exc.message, EXIT_BAD_INPUT)
    if isinstance(exc, OperationalError):
        first = str(exc.orig or exc).strip().splitlines()[0]
        return _fail(f"database error: {first}; check --db / ACTIVELABEL_DB and that the "
                     "server is running", 1)
    raise exc


def _fail(message: str, code: int) -> int:
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"error: {_one_line(message)}", markup=False
    )
    return code


def run() -> None:
    """Run :func:`main` and exit with its status (for ``python -m activelabel``)."""
    sys.exit(main())
