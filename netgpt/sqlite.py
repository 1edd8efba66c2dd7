"""Opening the project's SQLite files (stores, audit log) the same way everywhere."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from netgpt.errors import ConfigError

__all__ = ["open_sqlite"]


def open_sqlite(
    path: Path | str, schema: str, *, what: str, wal: bool = False
) -> sqlite3.Connection:
    """Connect to ``path`` (``:memory:`` allowed), create its parent folder and ``schema``.

    The connection may be used from several threads (callers serialize with a lock). A file that
    is not a usable SQLite database raises :class:`ConfigError` naming ``what`` and the path.
    """
    name = str(path)
    if name != ":memory:":
        Path(name).parent.mkdir(parents=True, exist_ok=True)
    try:
        db = sqlite3.connect(name, check_same_thread=False)
        if wal and name != ":memory:":
            db.execute("PRAGMA journal_mode=WAL")
        db.executescript(schema)
    except sqlite3.DatabaseError as exc:
        raise ConfigError(
            f"{what} {name!r} is not a usable SQLite file ({exc}); remove it or choose another path"
        ) from exc
    return db
