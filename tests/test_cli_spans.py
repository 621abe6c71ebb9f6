"""``activelabel simulate --task spans``: curves per sequence strategy from a span JSONL file,
and a clear refusal of a file without text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from activelabel.cli import EXIT_BAD_INPUT, main

PEOPLE = ["Anna", "Boris", "Chen", "Dara", "Emil", "Farah", "Gus", "Hana"]


def _write(path: Path, n: int = 60) -> None:
    with path.open("w") as out:
        for i in range(n):
            name = PEOPLE[i % len(PEOPLE)]
            text = f"yesterday {name} called me" if i % 2 else "it rained all day"
            spans = [{"start": 10, "end": 10 + len(name), "label": "person"}] if i % 2 else []
            split = "test" if i >= n - 16 else "train"
            out.write(json.dumps({"text": text, "spans": spans, "split": split}) + "\n")


def test_simulate_spans_writes_curves(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "toy.jsonl"
    _write(data)
    code = main(["simulate", "--task", "spans", "--data", str(data), "--seed-size", "10",
                 "--batch-size", "10", "--budget", "30", "--repeats", "1", "--strategies",
                 "random,token_entropy_sum,diverse_token_entropy", "--out", str(tmp_path / "o")])
    assert code == 0
    result = json.loads((tmp_path / "o" / "results.json").read_text())
    assert set(result["curves"]) == {"random", "token_entropy_sum", "diverse_token_entropy"}
    assert [p["n_labeled"] for p in result["curves"]["random"]] == [10, 20, 30]
    assert result["full_f1"] > 0.9  # "yesterday <name>" is easy
    assert "entity micro-F1" in capsys.readouterr().out


def test_simulate_spans_refuses_rows_without_text(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text(json.dumps({"body": "x", "spans": []}) + "\n")
    code = main(["simulate", "--task", "spans", "--data", str(data), "--out", str(tmp_path)])
    assert code == EXIT_BAD_INPUT
    assert "line 1" in capsys.readouterr().err
