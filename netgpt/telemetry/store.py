"""SQLite telemetry store (the default), served as pandas DataFrames."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import astuple
from pathlib import Path

import pandas as pd

from netgpt.sqlite import open_sqlite
from netgpt.telemetry.base import CounterSample, RateSample, ServiceSample

__all__ = ["SqliteTelemetryStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    device TEXT NOT NULL, interface TEXT NOT NULL, if_index INTEGER NOT NULL, time REAL NOT NULL,
    in_octets INTEGER NOT NULL, out_octets INTEGER NOT NULL, speed_mbps REAL NOT NULL,
    oper_up INTEGER NOT NULL, admin_up INTEGER NOT NULL, sys_uptime_s REAL NOT NULL,
    counter_bits INTEGER NOT NULL, requested_at REAL
);
CREATE INDEX IF NOT EXISTS counters_dev_time ON counters (device, interface, time);
CREATE TABLE IF NOT EXISTS rates (
    device TEXT NOT NULL, interface TEXT NOT NULL, time REAL NOT NULL, interval_s REAL NOT NULL,
    in_mbps REAL NOT NULL, out_mbps REAL NOT NULL, speed_mbps REAL NOT NULL,
    oper_up INTEGER NOT NULL, note TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rates_dev_time ON rates (device, interface, time);
CREATE INDEX IF NOT EXISTS rates_time ON rates (time);
CREATE TABLE IF NOT EXISTS service_requests (
    request_id TEXT NOT NULL, time REAL NOT NULL, workload TEXT NOT NULL, site TEXT NOT NULL,
    mode TEXT NOT NULL, edge_device TEXT NOT NULL, cloud_device TEXT NOT NULL,
    edge_ms REAL NOT NULL, network_ms REAL NOT NULL, cloud_ms REAL NOT NULL,
    total_ms REAL NOT NULL, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
    wan_bytes_up INTEGER NOT NULL, wan_bytes_down INTEGER NOT NULL, ok INTEGER NOT NULL,
    error TEXT NOT NULL, services TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS service_requests_time ON service_requests (workload, site, time);
"""

_SERVICE_COLUMNS = [
    "request_id", "time", "workload", "site", "mode", "edge_device", "cloud_device", "edge_ms",
    "network_ms", "cloud_ms", "total_ms", "prompt_tokens", "completion_tokens", "wan_bytes_up",
    "wan_bytes_down", "ok", "error", "services",
]

_RATE_COLUMNS = [
    "device",
    "interface",
    "time",
    "interval_s",
    "in_mbps",
    "out_mbps",
    "speed_mbps",
    "oper_up",
    "note",
]


def _select(table: str, equal: dict[str, str | None], since: float | None
            ) -> tuple[str, list[object]]:
    """The SQL and arguments selecting ``table``'s rows that match.

    Columns in ``equal`` must equal their value (``None``: any value); ``time >= since``.
    """
    where = [f"{column} = ?" for column, value in equal.items() if value is not None]
    args: list[object] = [value for value in equal.values() if value is not None]
    if since is not None:
        where.append("time >= ?")
        args.append(since)
    return f"SELECT * FROM {table}" + (" WHERE " + " AND ".join(where) if where else ""), args


class SqliteTelemetryStore:
    """Counter and rate samples in one SQLite file (``:memory:`` for tests).

    Safe to share between threads (one connection, serialized by a lock; WAL for files).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._db = open_sqlite(path, _SCHEMA, what="telemetry store", wal=True)
        self._lock = threading.Lock()
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(counters)")}
        if "requested_at" not in columns:  # a store written before requests were timed
            self._db.execute("ALTER TABLE counters ADD COLUMN requested_at REAL")
            self._db.commit()

    def add_counters(self, samples: Iterable[CounterSample]) -> None:
        """Store raw counter samples."""
        rows = [astuple(s) for s in samples]
        with self._lock:
            self._db.executemany(
                "INSERT INTO counters (device, interface, if_index, time, in_octets, out_octets, "
                "speed_mbps, oper_up, admin_up, sys_uptime_s, counter_bits, requested_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            self._db.commit()

    def add_rates(self, samples: Iterable[RateSample]) -> None:
        """Store computed rates."""
        rows = [astuple(s) for s in samples]
        with self._lock:
            self._db.executemany("INSERT INTO rates VALUES (?,?,?,?,?,?,?,?,?)", rows)
            self._db.commit()

    def rates_frame(
        self,
        *,
        device: str | None = None,
        interface: str | None = None,
        since: float | None = None,
    ) -> pd.DataFrame:
        """Rates as a DataFrame with a UTC ``timestamp`` column and utilization columns."""
        sql, args = _select("rates", {"device": device, "interface": interface}, since)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY time, device, interface", args).fetchall()
        frame = pd.DataFrame(rows, columns=_RATE_COLUMNS)
        frame["oper_up"] = frame["oper_up"].astype(bool)
        frame["timestamp"] = pd.to_datetime(frame["time"], unit="s", utc=True)
        speed = frame["speed_mbps"].where(frame["speed_mbps"] > 0)
        frame["in_utilization"] = (frame["in_mbps"] / speed).fillna(0.0)
        frame["out_utilization"] = (frame["out_mbps"] / speed).fillna(0.0)
        return frame

    def add_service_samples(self, samples: Iterable[ServiceSample]) -> None:
        """Store requests of a managed workload (see :class:`ServiceSample`)."""
        rows = [astuple(s) for s in samples]
        with self._lock:
            self._db.executemany(
                f"INSERT INTO service_requests VALUES ({','.join('?' * len(_SERVICE_COLUMNS))})",
                rows,
            )
            self._db.commit()

    def service_frame(
        self,
        *,
        workload: str | None = None,
        site: str | None = None,
        since: float | None = None,
    ) -> pd.DataFrame:
        """A workload's requests as a DataFrame (columns of :class:`ServiceSample`, ``time``)."""
        sql, args = _select("service_requests", {"workload": workload, "site": site}, since)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY time", args).fetchall()
        frame = pd.DataFrame(rows, columns=_SERVICE_COLUMNS)
        frame["ok"] = frame["ok"].astype(bool)
        return frame

    def latest_rates(self) -> pd.DataFrame:
        """The newest rate row of every interface."""
        frame = self.rates_frame()
        if frame.empty:
            return frame
        return frame.sort_values("time").groupby(["device", "interface"], as_index=False).last()

    def counters_count(self) -> int:
        """How many counter rows are stored."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM counters").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
