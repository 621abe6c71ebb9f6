"""The Ray this process talks to: the one already running, a cluster by address, or a new
local one. Ray is imported here only, when a pool is first scored on it."""

from __future__ import annotations

from typing import Any

__all__ = ["connect"]


def connect(*, address: str | None = None, num_cpus: int | None = None) -> Any:
    """The ``ray`` module, initialised: reuse this process's Ray if it has one, else
    ``ray.init`` with ``address`` (``None``: ``RAY_ADDRESS`` or a new local Ray of
    ``num_cpus`` CPUs; ``"auto"``, ``"ray://head:10001"``: a running cluster)."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError("scoring on Ray needs the scale extra: pip install "
                          "'activelabel[scale]'") from exc
    if ray.is_initialized():
        return ray
    try:
        ray.init(address=address, num_cpus=None if address else num_cpus,
                 include_dashboard=False, log_to_driver=False)
    except ConnectionError as exc:
        raise ConnectionError(f"no Ray cluster at {address!r}: start one with "
                              "`ray start --head` and pass its address (ray://host:10001 or "
                              f"host:6379), or pass address=None for a local Ray ({exc})"
                              ) from exc
    return ray
