"""What a default install of activelabel holds, read from an environment it is installed in:
the distributions its requirements (no extras) pull in, recursively, with their installed size
(the files their RECORD lists). Offline; run it with the environment's python:

    python scripts/install_size.py            # count, total, the largest twelve
    python scripts/install_size.py --all      # every distribution
"""

from __future__ import annotations

import argparse
import re
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(root: str = "activelabel") -> dict[str, int]:
    """Distribution name -> installed bytes, for ``root`` and what it requires."""
    dists = {_key(d.metadata["Name"]): d for d in metadata.distributions()}
    env = default_environment()
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(root, frozenset[str]())]
    while todo:
        name, extras = todo.pop()
        if (_key(name), extras) in seen:
            continue
        seen.add((_key(name), extras))
        dist = dists.get(_key(name))
        if dist is None:
            raise SystemExit(f"{name} is required but not installed here")
        for line in dist.requires or []:
            req = Requirement(line)
            wanted = req.marker is None or any(
                req.marker.evaluate({**env, "extra": e}) for e in (extras or {""}))
            if wanted:
                todo.append((req.name, frozenset(req.extras)))
    sizes = {}
    for name in sorted({k for k, _ in seen}):
        total = 0
        for f in dists[name].files or []:
            path = Path(str(dists[name].locate_file(f)))
            if path.is_file():
                total += path.stat().st_size
        sizes[name] = total
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--all", action="store_true", help="list every distribution")
    args = parser.parse_args()
    sizes = closure()
    print(f"{len(sizes)} distributions (activelabel included), {sum(sizes.values()) / 1e6:.0f} MB")
    ranked = sorted(sizes.items(), key=lambda kv: -kv[1])
    for name, size in ranked if args.all else ranked[:12]:
        print(f"  {name:28s} {size / 1e6:7.1f} MB")


if __name__ == "__main__":
    main()
