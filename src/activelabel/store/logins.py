"""Login throttling: wrong passwords are counted per username and per client address over a
window; after a few, each further attempt waits (1 s, then doubling); after many, the username
or address is locked until enough failures leave the window.

Failures live in the database (``login_failures``), so every API process of a server, and a
restarted one, counts the same attempts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .models import LoginFailure, utcnow

__all__ = ["LoginPolicy", "clear_login_failures", "login_wait", "record_login_failure"]

#: Longest single wait of the backoff, seconds (the lockout is longer).
MAX_BACKOFF_SECONDS = 300
#: Field lengths of the table: longer names and addresses are cut (they still count).
_NAME, _ADDRESS = 64, 64


@dataclass(frozen=True)
class LoginPolicy:
    """``free`` failures are free; from then on each attempt waits ``2**(n - free)`` s after the
    last failure; at ``lockout`` failures the name or address is locked until the oldest
    failures leave the ``window``."""

    free: int
    lockout: int
    window: timedelta


def _wait(times: list[datetime], policy: LoginPolicy, now: datetime) -> float:
    """Seconds to wait given the failures ``times`` (newest first) inside the window."""
    n = len(times)
    if n < policy.free:
        return 0.0
    if n >= policy.lockout:  # until enough failures are older than the window
        leaving = times[policy.lockout - 1]
        return max(0.0, (leaving + policy.window - now).total_seconds())
    backoff = min(2.0 ** (n - policy.free), MAX_BACKOFF_SECONDS)
    return max(0.0, (times[0] + timedelta(seconds=backoff) - now).total_seconds())


def _recent(session: Session, column: Any, value: str, since: datetime,
            limit: int) -> list[datetime]:
    stmt = (select(LoginFailure.at).where(column == value, LoginFailure.at > since)
            .order_by(LoginFailure.at.desc()).limit(limit))
    return list(session.execute(stmt).scalars())


def login_wait(session: Session, username: str, address: str, policy: LoginPolicy, *,
               now: datetime | None = None) -> float:
    """Seconds before a login for ``username`` from ``address`` may be tried (0: now)."""
    now = now or utcnow()
    since = now - policy.window
    return max(_wait(_recent(session, LoginFailure.username, username[:_NAME], since,
                             policy.lockout), policy, now),
               _wait(_recent(session, LoginFailure.address, address[:_ADDRESS], since,
                             policy.lockout), policy, now))


def record_login_failure(session: Session, username: str, address: str, policy: LoginPolicy,
                         *, now: datetime | None = None) -> None:
    """Count a wrong password (and forget failures older than the window)."""
    now = now or utcnow()
    session.execute(delete(LoginFailure).where(LoginFailure.at < now - policy.window))
    session.add(LoginFailure(username=username[:_NAME], address=address[:_ADDRESS], at=now))
    session.flush()


def clear_login_failures(session: Session, username: str) -> None:
    """A right password: the username's failures are forgotten (the address's stay)."""
    session.execute(delete(LoginFailure).where(LoginFailure.username == username[:_NAME]))
