"""Login, the caller, users (admins only) and the caller's own API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from ...store import (
    authenticate_password,
    create_token,
    create_user,
    list_tokens,
    record_audit,
    revoke_token,
)
from ...store.errors import Forbidden
from ...store.models import User
from ..auth import Caller, Reader, Writer, storage_of
from ..errors import Unauthorized
from ..schemas import (
    LoginIn,
    LoginOut,
    TokenCreated,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
    token_out,
    user_out,
)

router = APIRouter(tags=["users"])

LOGIN_TOKEN_NAME = "login"


def _require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise Forbidden(f"this needs an admin; {caller.user.username} is not one: ask an admin "
                        "(activelabel users create NAME --admin makes one)")


@router.post("/auth/login", status_code=201, response_model=LoginOut)
def login(body: LoginIn, request: Request) -> LoginOut:
    """Trade a username and password for a new API token (named "login")."""
    storage = storage_of(request)
    # The password check (argon2, deliberately slow) runs outside any write transaction.
    with storage.read_sessions() as session:
        user = authenticate_password(session, body.username, body.password)
        user_id = None if user is None else user.id
        session.rollback()
    if user_id is None:
        raise Unauthorized("wrong username or password (or the account is disabled): check "
                           "them, or ask an admin to reset the password")
    with storage.sessions() as session, session.begin():
        _, plaintext = create_token(session, user_id, LOGIN_TOKEN_NAME)
        found = session.get(User, user_id)
        assert found is not None
        return LoginOut(token=plaintext, user=user_out(found))


@router.get("/me", response_model=UserOut)
def me(caller: Reader) -> UserOut:
    """The authenticated user."""
    return user_out(caller.user)


@router.post("/users", status_code=201, response_model=UserOut)
def add_user(body: UserIn, caller: Writer) -> UserOut:
    """Create a user (admins only). Without a password the user can only use API tokens."""
    _require_admin(caller)
    user = create_user(caller.session, body.username, body.password, is_admin=body.is_admin)
    caller.session.flush()
    record_audit(caller.session, "create", "user", user.id, actor_id=caller.user.id,
                 after={"username": user.username, "is_admin": bool(user.is_admin)})
    return user_out(user)


@router.get("/users", response_model=list[UserOut])
def users(caller: Reader) -> list[UserOut]:
    """Every user (admins only)."""
    _require_admin(caller)
    found = caller.session.execute(select(User).order_by(User.id)).scalars()
    return [user_out(u) for u in found]


@router.post("/tokens", status_code=201, response_model=TokenCreated)
def add_token(caller: Writer, body: TokenIn | None = None) -> TokenCreated:
    """A new API token of the caller; the plaintext is shown only in this answer."""
    token, plaintext = create_token(caller.session, caller.user.id, (body or TokenIn()).name)
    return TokenCreated(**token_out(token).model_dump(), token=plaintext)


@router.get("/tokens", response_model=list[TokenOut])
def tokens(caller: Reader) -> list[TokenOut]:
    """The caller's tokens (hashes are never shown; ``prefix`` identifies them)."""
    return [token_out(t) for t in list_tokens(caller.session, caller.user.id)]


@router.delete("/tokens/{token_id}", status_code=204, response_class=Response)
def delete_token(token_id: int, caller: Writer) -> Response:
    """Revoke one of the caller's tokens (others' tokens are 404)."""
    revoke_token(caller.session, caller.user.id, token_id)
    return Response(status_code=204)
