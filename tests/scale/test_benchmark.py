"""benchmarks/scale.py runs end to end at a small size and prints what it promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import need

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "scale.py"


@pytest.mark.slow
def test_timing_compares_one_process_with_ray(tmp_path: Path) -> None:
    need("ray")
    out = tmp_path / "scale.json"
    done = subprocess.run([sys.executable, str(BENCH), "timing", "--sizes", "20000",
                           "--shard-rows", "5000", "--workers", "1", "--k", "20",
                           "--out", str(out)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [r["path"] for r in rows] == ["one process", "Ray, 1 worker"]
    assert all(r["selected"] == 20 for r in rows)
    assert rows[1]["worker_peak_mb"] > 0
    assert "| 20,000 | Ray, 1 worker |" in done.stdout
