"""Print the README's project-settings table, or write it into the README with ``--write``.

The table is made from :class:`activelabel.store.settings.ProjectSettings`;
``tests/store/test_settings.py`` fails when the README's copy is stale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- settings-table:start -->\n", "<!-- settings-table:end -->"


def replaced(text: str, table: str) -> str:
    """``text`` with the part between the settings-table markers replaced by ``table``."""
    head, start, rest = text.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise SystemExit(f"{README} has no {START.strip()} ... {END} markers")
    return head + start + table + end + tail


def main() -> int:
    from activelabel.store.settings import settings_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="Write the table into README.md")
    args = parser.parse_args()
    table = settings_table()
    if not args.write:
        sys.stdout.write(table)
        return 0
    README.write_text(replaced(README.read_text(), table))
    print(f"wrote the settings table into {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
