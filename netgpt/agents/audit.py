"""The audit log: append-only, hash-chained records of every step the agent takes.

Each record carries the SHA-256 of its predecessor, so editing or deleting any record breaks the
chain from that point on; :meth:`AuditLog.verify` says where. Stored in SQLite.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from netgpt.sqlite import open_sqlite

__all__ = ["GENESIS", "AuditLog", "AuditRecord"]

GENESIS = "0" * 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, intent_id TEXT NOT NULL,
    step TEXT NOT NULL, outcome TEXT NOT NULL, detail TEXT NOT NULL, prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_intent ON audit (intent_id, seq);
"""


@dataclass(frozen=True)
class AuditRecord:
    """One step: who, which intent, what step, how it ended.

    ``detail`` holds the plan, diffs, verdicts and timings as JSON-able data.
    """

    seq: int
    at: str
    actor: str
    intent_id: str
    step: str
    outcome: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str

    @staticmethod
    def digest(
        seq: int,
        at: str,
        actor: str,
        intent_id: str,
        step: str,
        outcome: str,
        detail: dict[str, Any],
        prev_hash: str,
    ) -> str:
        """The record's hash over all its fields and its predecessor's hash."""
        body = json.dumps(
            [seq, at, actor, intent_id, step, outcome, detail, prev_hash],
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        )
        return hashlib.sha256(body.encode()).hexdigest()


class AuditLog:
    """Append-only audit records in one SQLite file (``:memory:`` for tests). Thread-safe."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._db = open_sqlite(path, _SCHEMA, what="audit log")
        self._lock = threading.Lock()

    def append(
        self,
        *,
        actor: str,
        intent_id: str,
        step: str,
        outcome: str,
        detail: dict[str, Any] | None = None,
    ) -> AuditRecord:
        """Add a record at the end of the chain and return it."""
        detail = json.loads(json.dumps(detail or {}, default=str))  # JSON-able, as stored
        with self._lock:
            row = self._db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            last = row.fetchone()
            seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
            at = datetime.now(UTC).isoformat()
            digest = AuditRecord.digest(seq, at, actor, intent_id, step, outcome, detail, prev)
            self._db.execute(
                "INSERT INTO audit VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    seq,
                    at,
                    actor,
                    intent_id,
                    step,
                    outcome,
                    json.dumps(detail, sort_keys=True),
                    prev,
                    digest,
                ),
            )
            self._db.commit()
        return AuditRecord(seq, at, actor, intent_id, step, outcome, detail, prev, digest)

    def records(self, intent_id: str | None = None) -> Iterator[AuditRecord]:
        """Records in order, optionally only one intent's."""
        sql = (
            "SELECT * FROM audit" + (" WHERE intent_id = ?" if intent_id else "") + " ORDER BY seq"
        )
        with self._lock:
            rows = self._db.execute(sql, (intent_id,) if intent_id else ()).fetchall()
        for r in rows:
            yield AuditRecord(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7], r[8])

    def verify(self) -> tuple[bool, str]:
        """Check the whole chain: ``(True, "n records intact")`` or where it breaks."""
        prev = GENESIS
        count = 0
        for rec in self.records():
            count += 1
            if rec.prev_hash != prev:
                return False, f"record {rec.seq}: does not follow the record before it (deleted?)"
            expected = AuditRecord.digest(
                rec.seq,
                rec.at,
                rec.actor,
                rec.intent_id,
                rec.step,
                rec.outcome,
                rec.detail,
                rec.prev_hash,
            )
            if expected != rec.hash:
                return False, f"record {rec.seq}: content does not match its hash (edited?)"
            prev = rec.hash
        return True, f"{count} records intact"

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
