"""Who is calling: API tokens, roles, and console sessions.

Tokens live in a file the operator controls (JSON, mode 0600): ``{"users": [{"name": "alice",
"role": "operator", "token": "..."}]}``; an entry may carry ``token_sha256`` instead of the token.
The server keeps only SHA-256 digests in memory and compares them in constant time. Roles are
ordered: viewer < operator (submits, withdraws) < approver (approves others' changes) < admin
(edits policies). The console trades a token for an HttpOnly session cookie, so that no secret
travels in a URL (server-sent events cannot send headers).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from netgpt.errors import ConfigError

__all__ = ["ApiUser", "Role", "SessionBook", "TokenBook", "write_token_file"]


class Role(IntEnum):
    """What a user may do; each role may do everything the ones below it may."""

    VIEWER = 1
    OPERATOR = 2
    APPROVER = 3
    ADMIN = 4

    @classmethod
    def named(cls, name: str) -> Role:
        """The role called ``name`` (case-insensitive); ConfigError naming the valid ones."""
        try:
            return cls[name.strip().upper()]
        except KeyError:
            valid = ", ".join(r.name.lower() for r in cls)
            raise ConfigError(f"unknown role {name!r}; use one of {valid}") from None


@dataclass(frozen=True)
class ApiUser:
    """An authenticated caller."""

    name: str
    role: Role

    def may(self, role: Role) -> bool:
        """Whether this user's role is ``role`` or above it."""
        return self.role >= role


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenBook:
    """Token digests -> users. Build with :meth:`from_file` or :meth:`from_entries`."""

    def __init__(self, users: dict[str, ApiUser]) -> None:
        self._by_digest = users

    @classmethod
    def from_entries(cls, entries: list[dict[str, str]], *, where: str = "tokens") -> TokenBook:
        """Entries with ``name``, ``role`` and ``token`` or ``token_sha256``."""
        users: dict[str, ApiUser] = {}
        names: set[str] = set()
        for i, raw in enumerate(entries):
            if not isinstance(raw, dict):
                raise ConfigError(f"{where}: users[{i}] must be an object with name, role, token")
            name = str(raw.get("name", "")).strip()
            if not name or len(name) > 64:
                raise ConfigError(f"{where}: users[{i}] needs a name of 1 to 64 characters")
            if name in names:
                raise ConfigError(f"{where}: user {name!r} appears twice")
            names.add(name)
            role = Role.named(str(raw.get("role", "")))
            if "token_sha256" in raw:
                digest = str(raw["token_sha256"]).lower()
                if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                    raise ConfigError(f"{where}: token_sha256 of {name!r} is not a SHA-256 hex")
            else:
                token = str(raw.get("token", ""))
                if len(token) < 16:
                    raise ConfigError(
                        f"{where}: the token of {name!r} is missing or shorter than 16 "
                        "characters; generate one with 'python -c \"import secrets; "
                        "print(secrets.token_urlsafe(32))\"'"
                    )
                digest = _digest(token)
            users[digest] = ApiUser(name, role)
        if not users:
            raise ConfigError(f"{where}: no users; add at least one admin")
        return cls(users)

    @classmethod
    def from_file(cls, path: Path) -> TokenBook:
        """Read the JSON token file at ``path``."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"token file {str(path)!r} does not exist") from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"token file {str(path)!r} is not readable JSON: {exc}") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("users"), list):
            raise ConfigError(f"token file {str(path)!r} must hold {{\"users\": [...]}}")
        return cls.from_entries(raw["users"], where=str(path))

    def user(self, token: str) -> ApiUser | None:
        """The user holding ``token``, or ``None``."""
        wanted = _digest(token)
        found = None
        for digest, user in self._by_digest.items():
            if hmac.compare_digest(digest, wanted):
                found = user
        return found

    def users(self) -> list[ApiUser]:
        """Every user, by name."""
        return sorted(self._by_digest.values(), key=lambda u: u.name)


def write_token_file(path: Path, users: list[tuple[str, Role]]) -> dict[str, str]:
    """Create ``path`` (mode 0600) with a fresh random token per user; returns name -> token."""
    tokens = {name: secrets.token_urlsafe(32) for name, _ in users}
    body = {"users": [{"name": n, "role": r.name.lower(), "token": tokens[n]} for n, r in users]}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(body, out, indent=1)
    return tokens


class SessionBook:
    """Console sessions: random ids (cookie values) -> users, expiring after ``ttl_s``."""

    def __init__(self, ttl_s: float = 8 * 3600) -> None:
        self.ttl_s = ttl_s
        self._sessions: dict[str, tuple[ApiUser, float]] = {}
        self._lock = threading.Lock()

    def open(self, user: ApiUser) -> str:
        """A new session id for ``user``."""
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[sid] = (user, time.monotonic() + self.ttl_s)
        return sid

    def user(self, sid: str) -> ApiUser | None:
        """The session's user, or ``None`` when unknown or expired."""
        with self._lock:
            entry = self._sessions.get(sid)
            if entry is None:
                return None
            if entry[1] < time.monotonic():
                del self._sessions[sid]
                return None
            return entry[0]

    def close(self, sid: str) -> None:
        """End a session (logout)."""
        with self._lock:
            self._sessions.pop(sid, None)
