"""benchmarks/formats.py runs end to end at a small size and reports what it promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"

pytestmark = pytest.mark.slow


def test_formats_benchmark_reads_every_task_and_times_predict(tmp_path: Path,
                                                              shared_data: Path) -> None:
    out = tmp_path / "formats.json"
    done = subprocess.run(
        [sys.executable, str(BENCH / "formats.py"), "--tasks", "3000", "--items", "300",
         "--labels", "40", "--per-call", "20", "--repeats", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
        env={"ACTIVELABEL_SHARED_DATA": str(shared_data), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    assert [r["rows"] for r in figures["reads"]] == [3000, 3000]
    assert figures["predict"]["known_p50_ms"] > 0
    assert "not items (the model runs)" in done.stdout
