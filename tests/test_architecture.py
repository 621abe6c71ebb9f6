"""Layers import only downwards (docs/architecture.md); core stays free of I/O libraries."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "activelabel"

LAYERS = {
    "client": ["client"],
    "core": ["strategies", "models", "features", "metrics", "stopping", "quality"],
    "loop": ["simulation", "datasets"],
    "store": ["store"],
    "service": ["service"],
    "cli": ["cli", "__main__"],
}
ORDER = ["client", "core", "loop", "store", "service", "cli"]
CORE_FORBIDDEN = {"typer", "rich", "matplotlib", "sqlalchemy", "fastapi", "httpx", "requests"}


def layer_of(module: str) -> str | None:
    top = module.split(".")[0]
    for layer, names in LAYERS.items():
        if top in names:
            return layer
    return None


def imports_of(path: Path) -> list[tuple[str, bool]]:
    """(imported module, is-internal) for every import in the file."""
    tree = ast.parse(path.read_text())
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, a.name.startswith("activelabel")) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package path
                rel = path.relative_to(SRC).with_suffix("").parts[: -node.level]
                base = ".".join((*rel, node.module or "")).strip(".")
                found.append((f"activelabel.{base}", True))
            elif node.module:
                found.append((node.module, node.module.startswith("activelabel")))
    return found


def modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_downwards(path: Path) -> None:
    own = layer_of(".".join(path.relative_to(SRC).with_suffix("").parts))
    if own is None:
        where = f"{path.relative_to(SRC)} belongs to no layer: add it to docs/architecture.md and LAYERS"
        assert path.name == "__init__.py", where
        assert path.parent == SRC, where
        return
    for name, internal in imports_of(path):
        if internal:
            target = layer_of(name.removeprefix("activelabel").lstrip("."))
            if target is None:
                continue  # the package root
            assert ORDER.index(target) <= ORDER.index(own), (
                f"{path.relative_to(SRC)} ({own}) imports {name} ({target}): layers import "
                "only downwards"
            )
        elif own == "core":
            assert name.split(".")[0] not in CORE_FORBIDDEN, (
                f"core module {path.relative_to(SRC)} imports {name}"
            )


def test_every_layer_module_exists() -> None:
    for names in LAYERS.values():
        for name in names:
            assert (SRC / f"{name}.py").exists() or (SRC / name).is_dir(), name
