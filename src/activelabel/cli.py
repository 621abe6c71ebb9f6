"""The ``activelabel`` command line: one Typer app, one command per task.

Bad input never shows a traceback: it prints one line, ``error: ...``, on stderr and exits with
status 2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from activelabel.datasets import Dataset
    from activelabel.simulation import SimulationResult, SimulationStep

__all__ = ["app", "main", "plot_learning_curves", "results_table"]

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
    """``random,margin,`` plus the default strategy, without repeats."""
    from activelabel.strategies import DEFAULT_STRATEGY

    return ",".join(dict.fromkeys(["random", "margin", DEFAULT_STRATEGY]))


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
            help="Comma-separated strategies (default: random,margin,<default strategy>)."
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
) -> None:
    """Replay active learning on a fully labeled dataset and compare strategies."""
    from activelabel.simulation import simulate as run_simulation

    ds = _load_dataset(dataset, data, text_field, label_field)
    names = [s.strip() for s in (strategies or default_strategies()).split(",") if s.strip()]
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
            on_step=on_step,
        )  # fmt: skip
    _write_outputs(result, out)
    console = Console()
    if not console.is_terminal:  # piped: wide enough that the table does not wrap
        console = Console(width=160)
    console.print(results_table(result))
    console.print(f"wrote {out / 'results.json'} and {out / 'learning_curves.png'}")


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


def _write_outputs(result: SimulationResult, out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot create output directory {out}: {exc.strerror}") from None
    (out / "results.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    plot_learning_curves(result, out / "learning_curves.png")


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


def _one_line(message: str) -> str:
    return " ".join(message.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``activelabel`` script; returns (and exits with) the exit status."""
    from typer.exceptions import TyperException

    command = typer.main.get_command(app)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        rv = command.main(args, prog_name="activelabel", standalone_mode=False)
    except (BadInput, ValueError, OSError) as exc:
        return _fail(str(exc), EXIT_BAD_INPUT)
    except TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            typer.echo(exc.format_message(), err=True)
            return EXIT_BAD_INPUT
        return _fail(exc.format_message(), int(getattr(exc, "exit_code", EXIT_BAD_INPUT)))
    except typer.Abort:
        return _fail("aborted", 1)
    return int(rv) if isinstance(rv, int) else 0


def _fail(message: str, code: int) -> int:
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"error: {_one_line(message)}", markup=False
    )
    return code


def run() -> None:
    """Run :func:`main` and exit with its status (for ``python -m activelabel``)."""
    sys.exit(main())
