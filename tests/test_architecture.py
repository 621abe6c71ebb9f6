"""The layout holds (docs/architecture.md): layers import only downwards, core stays free of I/O
libraries, only the store and the project logic build database queries, and the project logic
knows nothing of HTTP or processes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "activelabel"

LAYERS = {
    "client": ["client"],
    "core": ["strategies", "models", "features", "metrics", "stopping", "quality", "drift",
             "estimates", "pace", "minilm", "spans", "sequence", "samples"],
    "scale": ["scale"],
    "loop": ["simulation", "datasets", "span_simulation"],
    "store": ["store"],
    "labeling": ["labeling"],
    "http": ["http"],
    "runtime": ["runtime"],
    "cli": ["cli", "__main__"],
}
#: scale (pools on Ray) sits right above the core: it imports the core only, and the project
#: logic hands a big round's scoring to it.
ORDER = ["client", "core", "scale", "loop", "store", "labeling", "http", "runtime", "cli"]
CORE_FORBIDDEN = {"typer", "rich", "matplotlib", "sqlalchemy", "fastapi", "httpx", "requests",
                  "ray", "faiss"}
#: Libraries of HTTP and of processes, which the project logic (and everything below) never sees.
WEB_AND_PROCESS = {"fastapi", "starlette", "uvicorn", "typer", "rich", "multipart"}
#: What builds a query in SQLAlchemy: statement constructors and SQL expressions.
QUERY_BUILDERS = {"select", "insert", "update", "delete", "text", "func", "and_", "or_",
                  "not_", "exists", "literal", "bindparam", "case", "cast", "column", "table",
                  "union", "union_all", "tuple_", "true", "false", "null"}
#: Session methods that run a statement or load rows by key.
QUERY_METHODS = {"execute", "scalar", "scalars", "query", "get", "get_one", "merge"}
#: Of those, the ones no other object of ours has: a call of them on anything runs a statement.
STATEMENT_METHODS = {"execute", "scalar", "scalars", "get_one", "exec_driver_sql"}
#: Where queries may be built.
QUERY_HOMES = {"store", "labeling"}


def layer_of(module: str) -> str | None:
    top = module.split(".")[0]
    for layer, names in LAYERS.items():
        if top in names:
            return layer
    return None


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(SRC).with_suffix("").parts)


def imports_of(path: Path) -> list[tuple[str, bool, list[str]]]:
    """(imported module, is-internal, names imported from it) for every import in the file."""
    tree = ast.parse(path.read_text())
    found: list[tuple[str, bool, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, a.name.startswith("activelabel"), []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [a.name for a in node.names]
            if node.level:  # relative: resolve against the package path
                rel = path.relative_to(SRC).with_suffix("").parts[: -node.level]
                base = ".".join((*rel, node.module or "")).strip(".")
                found.append((f"activelabel.{base}", True, names))
            elif node.module:
                found.append((node.module, node.module.startswith("activelabel"), names))
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and ast.unparse(node.func) in ("importlib.import_module", "import_module",
                                             "__import__")):
            name = node.args[0].value  # a module named by a literal is imported all the same
            found.append((name, name.startswith("activelabel"), []))
    return found


def modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py"))


def _ids(path: Path) -> str:
    return str(path.relative_to(SRC))


@pytest.mark.parametrize("path", modules(), ids=_ids)
def test_imports_point_downwards(path: Path) -> None:
    own = layer_of(module_name(path))
    if own is None:
        where = f"{_ids(path)} belongs to no layer: add it to docs/architecture.md and LAYERS"
        assert path.name == "__init__.py", where
        assert path.parent == SRC, where
        return
    for name, internal, _ in imports_of(path):
        if internal:
            target = layer_of(name.removeprefix("activelabel").lstrip("."))
            if target is None:
                continue  # the package root
            assert ORDER.index(target) <= ORDER.index(own), (
                f"{_ids(path)} ({own}) imports {name} ({target}): layers import only downwards"
            )
        elif own == "core":
            assert name.split(".")[0] not in CORE_FORBIDDEN, f"core module {_ids(path)} imports {name}"


def _below_http(path: Path) -> bool:
    own = layer_of(module_name(path))
    return own is not None and ORDER.index(own) < ORDER.index("http")


@pytest.mark.parametrize("path", [p for p in modules() if _below_http(p)], ids=_ids)
def test_project_logic_and_below_know_no_http_or_processes(path: Path) -> None:
    for name, _, _ in imports_of(path):
        assert name.split(".")[0] not in WEB_AND_PROCESS, (
            f"{_ids(path)} imports {name}: the project logic and the layers below it know "
            "nothing of HTTP or processes"
        )


def _names_a_session(node: ast.expr) -> bool:
    """``session``, ``caller.session``, ``self.read_session``...: a name ending in one."""
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return "session" in name


def builds_queries(path: Path) -> list[str]:
    """What in the file builds or runs a database query: SQLAlchemy's statement and SQL
    expression constructors, and session calls that run statements."""
    found = []
    for name, _, names in imports_of(path):
        if name.split(".")[0] == "sqlalchemy":
            found += [f"imports {n} from {name}" for n in names if n in QUERY_BUILDERS]
            if name in ("sqlalchemy.sql", "sqlalchemy.sql.expression") or (name == "sqlalchemy" and not names):
                found.append(f"imports {name}")
    tree = ast.parse(path.read_text())
    aliases = _session_aliases(tree)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        receiver = node.func.value
        on_session = _names_a_session(receiver) or (
            isinstance(receiver, ast.Name) and receiver.id in aliases)
        if (node.func.attr in STATEMENT_METHODS
                or (node.func.attr in QUERY_METHODS and on_session)):
            found.append(f"calls {ast.unparse(node.func)} (line {node.lineno})")
    return found


def _session_aliases(tree: ast.AST) -> set[str]:
    """Names bound to a session under another name: ``db = caller.session``,
    ``with storage.session() as db``."""
    def is_session(value: ast.expr | None) -> bool:
        if isinstance(value, ast.Call):
            value = value.func
        return value is not None and isinstance(value, ast.Attribute | ast.Name) and (
            "session" in (value.attr if isinstance(value, ast.Attribute) else value.id).lower())

    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and is_session(node.value):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif (isinstance(node, ast.AnnAssign) and is_session(node.value)
              and isinstance(node.target, ast.Name)):
            names.add(node.target.id)
        elif isinstance(node, ast.With | ast.AsyncWith):
            names |= {item.optional_vars.id for item in node.items
                      if is_session(item.context_expr) and isinstance(item.optional_vars, ast.Name)}
    return names


def _outside_query_homes(path: Path) -> bool:
    return layer_of(module_name(path)) not in QUERY_HOMES


@pytest.mark.parametrize("path", [p for p in modules() if _outside_query_homes(p)], ids=_ids)
def test_only_the_store_and_the_project_logic_build_queries(path: Path) -> None:
    assert builds_queries(path) == [], (
        f"{_ids(path)} builds queries; move them to activelabel.labeling (or the store)"
    )


def _routes_and_cli() -> list[Path]:
    return sorted([*SRC.joinpath("http", "routes").glob("*.py"), SRC / "cli.py"])


@pytest.mark.parametrize("path", _routes_and_cli(), ids=_ids)
def test_routes_and_the_cli_never_touch_the_tables(path: Path) -> None:
    for name, _, _ in imports_of(path):
        assert not name.startswith("activelabel.store.models"), (
            f"{_ids(path)} imports {name}: call activelabel.labeling (or a store function) "
            "instead of reading tables"
        )


def test_the_checks_catch_what_they_name(tmp_path: Path) -> None:
    """A route that builds a query and reads a table fails the checks above."""
    sample = SRC / "http" / "routes" / "health.py"
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from sqlalchemy import select\nfrom activelabel.store.models import Item\n"
        "def f(caller):\n    return caller.session.execute(select(Item)).all()\n"
    )
    found = builds_queries(bad)
    assert "imports select from sqlalchemy" in found
    assert any("caller.session.execute" in f for f in found)
    assert builds_queries(sample) == []
    # A session under another name, a statement run on anything, an import by a literal name.
    hidden = tmp_path / "hidden.py"
    hidden.write_text(
        "import importlib\n"
        "def f(caller, stmt, key):\n    db = caller.session\n    return db.get(stmt, key)\n"
        "def g(storage, stmt):\n    with storage.session() as s:\n        return s.query(stmt)\n"
        "def h(conn, stmt):\n    return conn.execute(stmt)\n"
        "app = importlib.import_module('activelabel.http.app')\n"
    )
    found = builds_queries(hidden)
    assert sorted(f.split(" (")[0] for f in found) == ["calls conn.execute", "calls db.get",
                                                         "calls s.query"]
    assert ("activelabel.http.app", True, []) in imports_of(hidden)


def test_every_layer_module_exists() -> None:
    for names in LAYERS.values():
        for name in names:
            assert (SRC / f"{name}.py").exists() or (SRC / name).is_dir(), name
