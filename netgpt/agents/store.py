"""The intent store: every intent the platform knows, with its current lifecycle state."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from netgpt.errors import ConfigError
from netgpt.intents.model import Intent, LifecycleState
from netgpt.sqlite import open_sqlite

__all__ = ["ACTIVE_STATES", "IntentStore"]

ACTIVE_STATES = frozenset(
    {
        LifecycleState.DEPLOYED,
        LifecycleState.FULFILLED,
        LifecycleState.DEGRADED,
        LifecycleState.VIOLATED,
        LifecycleState.AWAITING_APPROVAL,
    }
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS intents (
    id TEXT PRIMARY KEY, state TEXT NOT NULL, created_at TEXT NOT NULL, body TEXT NOT NULL
);
"""


class IntentStore:
    """Intents in SQLite (``:memory:`` for tests), one row each, replaced on every save."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._db = open_sqlite(path, _SCHEMA, what="intent store")
        self._lock = threading.Lock()

    def save(self, intent: Intent) -> None:
        """Insert or replace ``intent``."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO intents VALUES (?,?,?,?)",
                (
                    intent.id,
                    intent.state.value,
                    intent.created_at.isoformat(),
                    intent.model_dump_json(),
                ),
            )
            self._db.commit()

    def get(self, intent_id: str) -> Intent:
        """The intent called ``intent_id``; :class:`ConfigError` naming known ids otherwise."""
        with self._lock:
            row = self._db.execute("SELECT body FROM intents WHERE id = ?", (intent_id,)).fetchone()
        if row is None:
            known = [i.id for i in self.intents()][-5:]
            raise ConfigError(f"no intent {intent_id!r}; the latest are {known}")
        return Intent.model_validate_json(row[0])

    def intents(self, states: Iterable[LifecycleState] | None = None) -> list[Intent]:
        """Intents (optionally only in ``states``), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT state, body FROM intents ORDER BY created_at"
            ).fetchall()
        wanted = None if states is None else {s.value for s in states}
        return [Intent.model_validate_json(b) for s, b in rows if wanted is None or s in wanted]

    def active(self) -> list[Intent]:
        """Intents that are in force or about to be (deployed ... awaiting approval)."""
        return self.intents(ACTIVE_STATES)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
