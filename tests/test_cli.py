"""The command line, run as a real process: ``python -m activelabel simulate ...``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from itertools import islice
from pathlib import Path
from typing import Any

import pytest

from activelabel.cli import main

SRC = Path(__file__).resolve().parents[1] / "src"

SMALL_RUN = [
    "--strategies", "random,margin", "--seed-size", "10", "--batch-size", "10",
    "--budget", "20", "--repeats", "2", "--test-size", "0.3", "--random-state", "0",
]  # fmt: skip


def cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "activelabel", *map(str, args)],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=120, check=False,
    )  # fmt: skip


def check_results(out: Path, strategies: list[str]) -> dict[str, Any]:
    assert (out / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc: dict[str, Any] = json.loads((out / "results.json").read_text())
    for key in ("dataset", "config", "curves", "full_data_accuracy", "labels_to_target"):
        assert key in doc
    assert list(doc["curves"]) == strategies
    assert list(doc["labels_to_target"]) == strategies
    for points in doc["curves"].values():
        for p in points:
            assert set(p) == {"n_labeled", "accuracy", "accuracy_std", "macro_f1", "ece"}
    for entry in doc["labels_to_target"].values():
        assert set(entry) == {"target", "n_labeled"}
    assert isinstance(doc["full_data_accuracy"], float)
    return doc


@pytest.mark.slow
def test_simulate_builtin_writes_results_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = cli("simulate", "--dataset", "wine", *SMALL_RUN, "--out", out)
    assert proc.returncode == 0, proc.stderr
    doc = check_results(out, ["random", "margin"])
    assert doc["dataset"] == "wine"
    assert doc["config"] == {
        "strategies": ["random", "margin"], "seed_size": 10, "batch_size": 10, "budget": 20,
        "repeats": 2, "test_size": 0.3, "random_state": 0, "model": "logistic_regression",
        "featurizer": "auto",
    }  # fmt: skip
    assert [p["n_labeled"] for p in doc["curves"]["margin"]] == [10, 20]
    assert "final accuracy" in proc.stdout
    assert "margin" in proc.stdout
    assert proc.stderr == ""  # no progress bar when stderr is not a terminal


@pytest.mark.slow
def test_simulate_without_matplotlib_writes_results_and_a_hint(tmp_path: Path) -> None:
    """matplotlib is the optional plot extra: without it (its import made to fail here) the
    run still writes results.json and says in one line how to get the picture."""
    out = tmp_path / "run"
    block = ("import sys; sys.modules['matplotlib'] = None; "
             "from activelabel.cli import run; run()")
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-c", block, "simulate", "--dataset", "wine", *SMALL_RUN, "--out",
         str(out)], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert json.loads((out / "results.json").read_text())["dataset"] == "wine"
    assert not (out / "learning_curves.png").exists()
    hint = [line for line in proc.stdout.splitlines() if "matplotlib" in line]
    assert hint == [f"wrote {out / 'results.json'}; learning_curves.png needs matplotlib: "
                    "pip install 'activelabel[plot]'"]


@pytest.mark.slow
def test_simulate_text_file(tmp_path: Path, shared_data: Path) -> None:
    data = tmp_path / "sms600.jsonl"
    with (shared_data / "sms_spam.jsonl").open(encoding="utf-8") as src:
        data.write_text("".join(islice(src, 600)), encoding="utf-8")
    out = tmp_path / "sms"
    proc = cli("simulate", "--data", data, *SMALL_RUN, "--out", out, "--model", "naive_bayes")
    assert proc.returncode == 0, proc.stderr
    doc = check_results(out, ["random", "margin"])
    assert doc["dataset"] == "sms600"
    assert doc["config"]["model"] == "naive_bayes"


def test_simulate_takes_the_featurizer_and_model_parameters(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = main(["simulate", "--dataset", "wine", *SMALL_RUN, "--out", str(out),
                 "--featurizer", "numeric", "--featurizer-param", "fields=[0, 1, 2]",
                 "--model-param", "C=0.5", "--model-param", "calibrate=auto"])
    assert code == 0
    config = json.loads((out / "results.json").read_text())["config"]
    assert config["featurizer"] == "numeric"
    assert config["featurizer_params"] == {"fields": [0, 1, 2]}
    assert config["model_params"] == {"C": 0.5, "calibrate": "auto"}


def test_default_strategies(tmp_path: Path) -> None:
    from activelabel.cli import default_strategies
    from activelabel.strategies import DEFAULT_STRATEGY

    names = default_strategies().split(",")
    assert names[:2] == ["random", "margin"]
    assert DEFAULT_STRATEGY in names
    assert "auto" in names  # what a new project uses
    assert len(names) == len(set(names))


def test_version() -> None:
    proc = cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == "activelabel 0.1.0"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def bad_input_files(tmp_path: Path) -> None:
    lines = [f'{{"text": "item {i}", "label": "{"ab"[i % 2]}"}}' for i in range(20)]
    write(tmp_path / "good.jsonl", "\n".join(lines) + "\n")
    write(tmp_path / "one.jsonl", "\n".join(f'{{"text": "t{i}", "label": "a"}}' for i in range(20)))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{tmp}/missing.jsonl"], "error: file not found: "),
        (
            ["--data", "{tmp}/good.jsonl", "--label-field", "category"],
            "error: label field 'category' not found in good.jsonl; fields present: text, label",
        ),
        (
            ["--data", "{tmp}/good.jsonl", "--text-field", "body"],
            "error: text field 'body' not found in good.jsonl",
        ),
        (["--data", "{tmp}/one.jsonl"], "error: one.jsonl has a single class ('a' in all 20 rows)"),
        (
            ["--data", "{tmp}/good.jsonl", "--seed-size", "25", "--budget", "30"],
            "error: only 14 training rows (20 rows, test size 0.3) for a seed of 25",
        ),
        (
            ["--dataset", "wine", "--strategies", "random,clever"],
            "error: unknown strategy 'clever'; choose from: random,",
        ),
        (
            ["--dataset", "wine", "--data", "{tmp}/good.jsonl"],
            "error: give exactly one of --dataset NAME or --data PATH",
        ),
        ([], "error: give exactly one of --dataset NAME or --data PATH"),
        (["--dataset", "mnist"], "error: unknown built-in dataset 'mnist'"),
        (["--dataset", "wine", "--seed-size", "abc"], "error: Invalid value for '--seed-size'"),
        (
            ["--dataset", "wine", "--test-size", "1.5"],
            "error: test size must be a fraction strictly between 0 and 1",
        ),
        (["--dataset", "wine", "--batch-size", "0"], "error: batch size must be at least 1, got 0"),
        (["--dataset", "wine", "--budget", "5"], "error: budget must be at least 20, got 5"),
        (["--dataset", "wine", "--bogus"], "error: No such option: --bogus"),
        (["--dataset", "wine", "--model-param", "C"], "error: --model-param wants KEY=VALUE"),
        (["--dataset", "wine", "--model-param", "C=-1"],
         "error: bad parameters for model 'logistic_regression'"),
        (["--dataset", "wine", "--featurizer", "sentence"],
         "error: the sentence featurizer does not fit numeric data"),
        (["--dataset", "wine", "--featurizer-param", "=2"],
         "error: --featurizer-param wants KEY=VALUE"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    """Every case through the real entry point, in-process (fast); see the subprocess test below."""
    bad_input_files(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code = main(["simulate", *argv, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(message), err
    assert err.count("\n") == 1, err
    assert not (tmp_path / "out" / "results.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{tmp}/missing.jsonl"], "error: file not found: "),
        (["--dataset", "wine", "--seed-size", "abc"], "error: Invalid value for '--seed-size'"),
        (["--dataset", "wine", "--strategies", "clever"], "error: unknown strategy 'clever'"),
    ],
)
def test_bad_input_in_a_real_process(tmp_path: Path, args: list[str], message: str) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = cli("simulate", *argv, "--out", tmp_path / "out")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(message), proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr
