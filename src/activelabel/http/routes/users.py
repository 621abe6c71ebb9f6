"""Login, the caller, users (admins only) and the caller's own API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ...labeling.accounts import add_user as create_user
from ...labeling.accounts import drop_token, new_token
from ...labeling.accounts import login as log_in
from ...labeling.accounts import logout as log_out
from ...store import Forbidden, list_tokens, list_users
from ..auth import Caller, Reader, Writer, settings_of_app, storage_of
from ..errors import Unauthorized
from ..schemas import (
    LoginIn,
    LoginOut,
    PathId,
    TokenCreated,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
    token_out,
    user_out,
)

router = APIRouter(tags=["users"])


def _require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise Forbidden(f"this needs an admin; {caller.user.username} is not one: ask an admin "
                        "(activelabel users create NAME --admin makes one)")


@router.post("/auth/login", status_code=201, response_model=LoginOut, responses={
    429: {"description": "Too many wrong passwords for this user or from this address; "
                         "Retry-After says how many seconds to wait."}})
def login(body: LoginIn, request: Request) -> LoginOut:
    """Trade a username and password for a new API token (named "login"). The token expires
    when unused for the server's ``login_idle_minutes`` and at the latest ``login_max_days``
    after the login. Repeated wrong passwords for a username or from an address make each
    further attempt wait, then lock it for a while (429 with ``Retry-After``)."""
    address = request.client.host if request.client is not None else "unknown"
    found = log_in(storage_of(request), body.username, body.password, address=address,
                   rules=settings_of_app(request).login_rules())
    if found is None:
        raise Unauthorized("wrong username or password (or the account is disabled): check "
                           "them, or ask an admin to reset the password")
    token, user = found
    return LoginOut(token=token, user=user_out(user))


@router.post("/auth/logout", status_code=204, response_class=Response)
def logout(caller: Writer) -> Response:
    """Revoke the token of this request: it stops working at once."""
    log_out(caller.session, caller.user, caller.token)
    return Response(status_code=204)


@router.get("/me", response_model=UserOut)
def me(caller: Reader) -> UserOut:
    """The authenticated user."""
    return user_out(caller.user)


@router.post("/users", status_code=201, response_model=UserOut)
def add_user(body: UserIn, caller: Writer) -> UserOut:
    """Create a user (admins only). Without a password the user can only use API tokens."""
    _require_admin(caller)
    return user_out(create_user(caller.session, caller.user.id, body.username, body.password,
                                is_admin=body.is_admin))


@router.get("/users", response_model=list[UserOut])
def users(caller: Reader) -> list[UserOut]:
    """Every user (admins only)."""
    _require_admin(caller)
    return [user_out(u) for u in list_users(caller.session)]


@router.post("/tokens", status_code=201, response_model=TokenCreated)
def add_token(caller: Writer, body: TokenIn | None = None) -> TokenCreated:
    """A new API token of the caller; the plaintext is shown only in this answer. It works
    until revoked, or ``expires_in_days``."""
    given = body or TokenIn()
    token, plaintext = new_token(caller.session, caller.user, given.name,
                                 expires_in_days=given.expires_in_days)
    return TokenCreated(**token_out(token).model_dump(), token=plaintext)


@router.get("/tokens", response_model=list[TokenOut])
def tokens(caller: Reader) -> list[TokenOut]:
    """The caller's tokens (hashes are never shown; ``prefix`` identifies them)."""
    return [token_out(t) for t in list_tokens(caller.session, caller.user.id)]


@router.delete("/tokens/{token_id}", status_code=204, response_class=Response)
def delete_token(token_id: PathId, caller: Writer) -> Response:
    """Revoke one of the caller's tokens (others' tokens are 404)."""
    drop_token(caller.session, caller.user, token_id)
    return Response(status_code=204)
