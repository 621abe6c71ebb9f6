"""The server's settings, declared once: who may create projects, how logins are throttled and
how long they last, how large a request may be, what project owners may make the server read
and call.

:class:`ServerSettings` is the one declaration (type, default, bounds, what each does). The
processes read it from ``ACTIVELABEL_<NAME>`` environment variables (``runtime.settings``),
``create_app(settings=...)`` takes it, the README's table is made from it
(``scripts/settings_table.py``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..labeling.accounts import LoginRules
from ..labeling.images import ImageRules
from ..labeling.remote_model import ModelHosts
from ..store import InvalidInput, LoginPolicy

__all__ = ["ENV_PREFIX", "ServerSettings", "server_settings_from_env"]

#: Environment variables ``ACTIVELABEL_<SETTING NAME IN CAPITALS>`` set the server's settings.
ENV_PREFIX = "ACTIVELABEL_"
MIB = 1 << 20


class ServerSettings(BaseModel):
    """Every setting of a server (the API processes). Units are in the names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project_creators: Literal["admins", "everyone"] = Field(
        default="admins", description="Who may create projects: admins only, or every user.")
    login_idle_minutes: int = Field(
        default=12 * 60, ge=1, le=90 * 24 * 60, description=(
            "A login token unused for this long expires (each use restarts the clock)."))
    login_max_days: int = Field(
        default=30, ge=1, le=365, description=(
            "A login token expires this long after the login, used or not."))
    login_free_failures: int = Field(
        default=5, ge=1, le=1000, description=(
            "Wrong passwords for one username, or from one address, before each further "
            "attempt has to wait (1 s, then doubling)."))
    login_lockout_failures: int = Field(
        default=20, ge=2, le=10_000, description=(
            "Wrong passwords after which the username or address is locked until the window "
            "passes."))
    login_window_minutes: int = Field(
        default=15, ge=1, le=24 * 60, description="How far back wrong passwords count.")
    max_body_bytes: int = Field(
        default=16 * MIB, ge=1024, le=1 << 40, description=(
            "The largest request body (a file upload excepted); larger ones get 413."))
    log_format: Literal["text", "json"] = Field(
        default="text", description=(
            "The API and worker processes' log lines: text, or one JSON object a line (for "
            "log collectors); either way each line of a request carries its request id."))
    min_free_disk_bytes: int = Field(
        default=64 * MIB, ge=0, le=1 << 50, description=(
            "Free space the data folder's disk must keep: below it /health answers 503 with "
            "disk full."))
    max_upload_bytes: int = Field(
        default=4096 * MIB, ge=1024, le=1 << 42, description=(
            "The largest file upload (POST .../imports); larger ones get 413."))
    upload_keep_hours: int = Field(
        default=7 * 24, ge=1, le=10 * 365 * 24, description=(
            "An uploaded file no import took in full (a preview never imported, an import "
            "with rejected rows) is removed by the worker once unused this long (a preview or "
            "an import of it counts as a use); a file an import queued or running reads "
            "stays."))
    model_import_prefixes: str = Field(
        default="", max_length=10_000, description=(
            "Comma-separated module prefixes (e.g. `teamlib.models,acme`) whose models project "
            "owners may name by import path (module:factory); the worker runs that code. "
            "Empty: only server admins may; `*`: any module."))
    model_hosts: str = Field(
        default="", max_length=10_000, description=(
            "Comma-separated hosts a project's `model_url` (model `http`) may name, checked when "
            "it is set and by the worker before it calls: host names or IP addresses (exact, any "
            "case), `host:port`, `*.suffix` (any name under suffix), IPv6 in brackets. Empty: "
            "any host."))

    image_roots: str = Field(
        default="", max_length=10_000, description=(
            "Comma-separated folders on the server whose images project owners may import "
            "(a folder, or paths in a list), links and `..` resolved first. Empty: none (zip "
            "uploads still work)."))
    image_url_prefixes: str = Field(
        default="", max_length=10_000, description=(
            "Comma-separated URL prefixes (e.g. `https://images.example.com/`) a list of "
            "images may fetch from (no redirects, 10 s timeout). Empty: none."))
    image_max_file_bytes: int = Field(
        default=50 * MIB, ge=1024, le=1 << 34, description=(
            "The largest image file an import takes (larger ones are rejected rows)."))
    image_max_zip_bytes: int = Field(
        default=2048 * MIB, ge=1024, le=1 << 42, description=(
            "The most a zip of images may unpack to; the files past it are rejected rows."))
    image_max_pixels: int = Field(
        default=89_478_485, ge=1024, le=89_478_485, description=(
            "The most pixels an imported image may have (decompression-bomb guard; at most "
            "Pillow's own bound, the default)."))

    def image_rules(self) -> ImageRules:
        """What image imports may read, as these settings say."""
        def split(text: str) -> tuple[str, ...]:
            return tuple(p.strip() for p in text.split(",") if p.strip())

        return ImageRules(roots=split(self.image_roots), url_prefixes=split(self.image_url_prefixes),
                          max_file_bytes=self.image_max_file_bytes,
                          max_zip_bytes=self.image_max_zip_bytes,
                          max_pixels=self.image_max_pixels)

    @field_validator("model_hosts")
    @classmethod
    def _host_list(cls, value: str) -> str:
        ModelHosts.parse(value)  # ValueError naming the bad entry and what is allowed
        return value

    def model_host_rules(self) -> ModelHosts:
        """The hosts a served model may be called at, as ``model_hosts`` says (none: any)."""
        return ModelHosts.parse(self.model_hosts)

    def permits_model_import(self, path: str) -> bool:
        """Whether a project owner (not an admin) may set the model import path ``path``:
        its module is one of ``model_import_prefixes`` or inside one."""
        module = path.partition(":")[0]
        prefixes = [p.strip() for p in self.model_import_prefixes.split(",") if p.strip()]
        return any(p == "*" or module == p or module.startswith(p + ".") for p in prefixes)


    def login_rules(self) -> LoginRules:
        """How logins are throttled and how long their tokens last, as these settings say."""
        return LoginRules(
            policy=LoginPolicy(free=self.login_free_failures,
                               lockout=self.login_lockout_failures,
                               window=timedelta(minutes=self.login_window_minutes)),
            idle=timedelta(minutes=self.login_idle_minutes),
            lifetime=timedelta(days=self.login_max_days))

def server_settings_from_env(environ: Mapping[str, str] | None = None) -> ServerSettings:
    """The settings given as ``ACTIVELABEL_<NAME>`` variables, the others at their defaults;
    InvalidInput names a variable whose value is refused and what it allows."""
    env = os.environ if environ is None else environ
    given: dict[str, Any] = {}
    for name in ServerSettings.model_fields:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw:
            given[name] = raw.strip()  # numbers from their text, as the declaration types them
    try:
        return ServerSettings.model_validate(given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{str(e['loc'][0]).upper()}: "
            f"{str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors() if e.get("loc"))
        raise InvalidInput(f"invalid server settings: {problems}") from None

