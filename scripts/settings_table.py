"""Print the README's settings tables, or write them into the README with ``--write``.

The project settings' table is made from :class:`activelabel.store.settings.ProjectSettings`,
the server's from :class:`activelabel.http.config.ServerSettings` (as environment variables);
``tests/store/test_settings.py`` fails when the README's copies are stale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- settings-table:start -->\n", "<!-- settings-table:end -->"
SERVER = ("<!-- server-settings-table:start -->\n", "<!-- server-settings-table:end -->")


def replaced(text: str, table: str, markers: tuple[str, str] = (START, END)) -> str:
    """``text`` with the part between the markers replaced by ``table``."""
    head, start, rest = text.partition(markers[0])
    _, end, tail = rest.partition(markers[1])
    if not start or not end:
        raise SystemExit(f"{README} has no {markers[0].strip()} ... {markers[1]} markers")
    return head + start + table + end + tail


def tables() -> list[tuple[str, tuple[str, str]]]:
    """(table, its markers) of each settings declaration."""
    from activelabel.http.config import ENV_PREFIX, ServerSettings
    from activelabel.store.settings import settings_table

    return [(settings_table(), (START, END)),
            (settings_table(ServerSettings, prefix=ENV_PREFIX), SERVER)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="Write the tables into README.md")
    args = parser.parse_args()
    if not args.write:
        for table, _ in tables():
            sys.stdout.write(table + "\n")
        return 0
    text = README.read_text()
    for table, markers in tables():
        text = replaced(text, table, markers)
    README.write_text(text)
    print(f"wrote the settings tables into {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
