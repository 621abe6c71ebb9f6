"""``python -m activelabel``: the same command line as the ``activelabel`` script."""

from __future__ import annotations

from activelabel.cli import run

__all__: list[str] = []

if __name__ == "__main__":
    run()
