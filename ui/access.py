"""Who may do what on a shared server: API keys and web logins for two roles.

A *reader* asks questions and reads sources; an *admin* also uploads and deletes
documents. Credentials come from a TOML file named by ``AppSettings.credentials`` (env
``POLICYQA_APP_CREDENTIALS``)::

    [admin]
    keys = ["a-long-random-admin-key"]           # Authorization: Bearer <key> on /v1 and /api
    logins = { alice = "a long password" }       # the web UI's login page

    [reader]
    keys = ["a-long-random-reader-key"]
    logins = { bob = "another long password", carol = "and another" }

and from environment variables, which add to the file: ``POLICYQA_ADMIN_KEY``,
``POLICYQA_READER_KEY`` (one key each) and ``POLICYQA_ADMIN_LOGIN``, ``POLICYQA_READER_LOGIN``
(``user:password``). A key also signs in to the web UI as the user named after its role
(``admin`` or ``reader``), so one key per role is a complete setup.

Without any credential everything is open and everyone is admin, which ``app.main`` allows
on a loopback address only. Secrets are compared with ``hmac.compare_digest`` against every
configured secret (no early exit), are kept out of ``repr`` and never appear in a message.
"""

from __future__ import annotations

import hmac
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

READER, ADMIN = "reader", "admin"
ROLES = (READER, ADMIN)  # in order of what they may do
MIN_KEY_CHARS = 16
MIN_PASSWORD_CHARS = 8
ENV_KEYS = {ADMIN: "POLICYQA_ADMIN_KEY", READER: "POLICYQA_READER_KEY"}
ENV_LOGINS = {ADMIN: "POLICYQA_ADMIN_LOGIN", READER: "POLICYQA_READER_LOGIN"}
HOW_TO = ("set POLICYQA_ADMIN_KEY (and POLICYQA_READER_KEY) to a random key of at least "
          f"{MIN_KEY_CHARS} characters, e.g. `export POLICYQA_ADMIN_KEY=$(python -c "
          "'import secrets; print(secrets.token_urlsafe(24))')`, or name a credentials file with "
          "POLICYQA_APP_CREDENTIALS=path/to/credentials.toml (see README, 'Run it as a team server')")


class CredentialsError(ValueError):
    """The credentials file or variables cannot be used (the message never holds a secret)."""


def allows(role: str | None, needed: str) -> bool:
    """``role`` may do what ``needed`` may (admin ⊇ reader)."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def _same(given: str, secret: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), secret.encode("utf-8"))


@dataclass(frozen=True)
class Access:
    keys: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # (role, key)
    logins: Mapping[str, tuple[str, str]] = field(default_factory=dict, repr=False)  # user -> (role, password)

    @property
    def configured(self) -> bool:
        return bool(self.keys or self.logins)

    def key_role(self, key: str | None) -> str | None:
        """The role of an API key, or None. Every configured key is compared, in constant time."""
        role = None
        for r, secret in self.keys:
            if _same(key or "", secret) and role is None:
                role = r
        return role

    def bearer_role(self, authorization: str | None) -> str | None:
        """The role of an ``Authorization: Bearer <key>`` header's key, or None."""
        scheme, _, key = (authorization or "").partition(" ")
        return self.key_role(key.strip()) if scheme.lower() == "bearer" and key.strip() else None

    def login(self, user: str, password: str) -> bool:
        """Gradio's ``auth=`` callable: a configured login, or a role's name with one of its keys."""
        user = (user or "").strip()
        ok = False
        if user in self.logins:
            ok = _same(password or "", self.logins[user][1])
        if user in ROLES:
            ok = self.key_role(password) == user or ok
        return ok

    def user_role(self, user: str | None) -> str | None:
        """The role of a signed-in web user (Gradio's ``request.username``); admin when open."""
        if not self.configured:
            return ADMIN
        if user in self.logins:
            return self.logins[user][0]
        return user if user in ROLES and any(r == user for r, _ in self.keys) else None

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> "Access":
        """The credentials of the file at ``path`` (if one is named) and of the environment."""
        env = os.environ if env is None else env
        keys: list[tuple[str, str]] = []
        logins: dict[str, tuple[str, str]] = {}
        if path:
            keys, logins = _read_file(Path(path))
        for role in ROLES:
            key = env.get(ENV_KEYS[role], "")
            if key:
                keys.append((role, _check_key(key, ENV_KEYS[role])))
            login = env.get(ENV_LOGINS[role], "")
            if login:
                user, sep, password = login.partition(":")
                if not sep or not user.strip():
                    raise CredentialsError(f"{ENV_LOGINS[role]} must be 'user:password'")
                _add_login(logins, user.strip(), role, password, ENV_LOGINS[role])
        for i, (role, key) in enumerate(keys):
            if any(_same(key, other) for r, other in keys[:i]):
                raise CredentialsError(f"the same API key is configured twice (second time for the {role} role)")
        return cls(tuple(keys), logins)


def _check_key(key: str, where: str) -> str:
    if len(key) < MIN_KEY_CHARS or key != key.strip():
        raise CredentialsError(f"{where}: an API key needs at least {MIN_KEY_CHARS} characters and no "
                               "surrounding spaces")
    return key


def _add_login(logins: dict, user: str, role: str, password: str, where: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise CredentialsError(f"{where}: the password of {user!r} needs at least {MIN_PASSWORD_CHARS} characters")
    if user in ROLES and user != role:
        raise CredentialsError(f"{where}: the user name {user!r} is reserved for the {user} role's keys")
    if user in logins:
        raise CredentialsError(f"{where}: user {user!r} is configured twice")
    logins[user] = (role, password)


def _read_file(path: Path) -> tuple[list[tuple[str, str]], dict[str, tuple[str, str]]]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise CredentialsError(f"credentials file {path} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CredentialsError(f"credentials file {path} cannot be read: {exc.__class__.__name__}") from None
    keys: list[tuple[str, str]] = []
    logins: dict[str, tuple[str, str]] = {}
    unknown = set(data) - set(ROLES)
    if unknown:
        raise CredentialsError(f"{path}: unknown section(s) {sorted(unknown)}; use [admin] and [reader]")
    for role in ROLES:
        section = data.get(role, {})
        if not isinstance(section, dict) or set(section) - {"keys", "logins"}:
            raise CredentialsError(f"{path}: [{role}] holds keys = [...] and logins = {{user = \"password\"}}")
        role_keys, role_logins = section.get("keys", []), section.get("logins", {})
        if not isinstance(role_keys, list) or not all(isinstance(k, str) for k in role_keys):
            raise CredentialsError(f"{path}: [{role}] keys must be a list of strings")
        if not isinstance(role_logins, dict) or not all(isinstance(p, str) for p in role_logins.values()):
            raise CredentialsError(f"{path}: [{role}] logins must map user names to password strings")
        keys += [(role, _check_key(k, f"{path} [{role}]")) for k in role_keys]
        for user, password in role_logins.items():
            _add_login(logins, user.strip(), role, password, f"{path} [{role}]")
    return keys, logins


def web_user(request, gradio_app) -> str | None:
    """The user signed in to the Gradio UI whose cookie ``request`` carries (None: nobody).

    Lets pages served beside the UI (the /source view) admit the same signed-in browsers."""
    tokens = getattr(gradio_app, "tokens", None) or {}
    cookie_id = getattr(gradio_app, "cookie_id", "")
    for name in (f"access-token-{cookie_id}", f"access-token-unsecure-{cookie_id}"):
        token = request.cookies.get(name)
        if token and token in tokens:
            return tokens[token]
    return None


class AdminUploadsOnly:
    """ASGI middleware: with credentials configured, Gradio's file-upload route (which stores
    files before any handler runs) takes files from a signed-in admin only, so a reader cannot
    fill the server's disk with files that could never be indexed anyway."""

    def __init__(self, app, access: Access, gradio_app, suffix: str = "/gradio_api/upload"):
        self.app, self.access, self.gradio_app, self.suffix = app, access, gradio_app, suffix

    async def __call__(self, scope, receive, send):
        if (self.access.configured and scope["type"] == "http" and scope["method"] == "POST"
                and scope["path"].endswith(self.suffix)):
            from starlette.requests import Request

            if not allows(self.access.user_role(web_user(Request(scope), self.gradio_app())), ADMIN):
                import json

                body = json.dumps({"error": "only an admin may upload documents"}).encode()
                await send({"type": "http.response.start", "status": 403,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
