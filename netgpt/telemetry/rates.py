"""Counters to rates: pure logic, no I/O.

Handles the things real counters do: wrap (32- or 64-bit), agent restarts (sysUpTime goes back
and counters reset: the interval is skipped, never reported as a huge or negative rate), missed
samples (the rate is the average over the gap and is marked ``gap``), and duplicate or
out-of-order samples (ignored). Intervals are timed by the agent's sysUpTime (it is read with the
counters, so it carries no network or queueing jitter) whenever it is possible: the counters were
read between a request's sending and its response's reception, so the true interval lies between
``sent2 - received1`` and ``received2 - sent1``. Reception times alone can be far off: a response
handled late by a busy poller makes the next interval look short and its rate look high.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from netgpt.telemetry.base import CounterSample, RateSample

__all__ = ["CounterRateTracker", "counter_delta"]


def counter_delta(previous: int, current: int, bits: int) -> tuple[int, bool] | None:
    """Octets counted between two readings of a ``bits``-wide counter.

    Returns ``(delta, wrapped)``, or ``None`` when the counter went back by more than a wrap can
    explain (a reset): the caller must then re-baseline.
    """
    if current >= previous:
        return current - previous, False
    modulus = 1 << bits
    delta = current + modulus - previous
    # A 64-bit counter does not wrap in practice (584 years at 1 Tbit/s): going back is a reset.
    if bits >= 64 or delta > modulus // 2:
        return None
    return delta, True


_TICK_S = 0.01  # sysUpTime counts hundredths of a second


def _interval(prev: CounterSample, cur: CounterSample, received_dt: float) -> float:
    """The time between two readings of one agent's counters, best known.

    The agent's sysUpTime difference when it is consistent with what the poller saw; otherwise
    the poller's estimate: the midpoints of the request windows when both sending times are
    known, else the reception times.
    """
    agent_dt = cur.sys_uptime_s - prev.sys_uptime_s
    if prev.requested_at is not None and cur.requested_at is not None:
        low = cur.requested_at - prev.timestamp - 2 * _TICK_S
        high = cur.timestamp - prev.requested_at + 2 * _TICK_S
        if agent_dt > 0 and low <= agent_dt <= high:
            return agent_dt
        middle = (cur.requested_at + cur.timestamp - prev.requested_at - prev.timestamp) / 2
        return middle if middle > 0 else received_dt
    if agent_dt > 0 and abs(agent_dt - received_dt) <= max(0.5, 0.25 * received_dt):
        return agent_dt
    return received_dt


@dataclass
class _Baseline:
    sample: CounterSample


class CounterRateTracker:
    """Turns successive :class:`CounterSample` readings into :class:`RateSample` rows.

    ``expected_interval_s`` is the poll interval; an interval longer than ``gap_factor`` times it
    is marked as a gap. Keep one tracker per poller; it remembers one baseline per interface.
    """

    def __init__(self, *, expected_interval_s: float, gap_factor: float = 1.9) -> None:
        if expected_interval_s <= 0:
            raise ValueError(f"expected_interval_s must be positive, got {expected_interval_s}")
        self.expected_interval_s = expected_interval_s
        self.gap_factor = gap_factor
        self._last: dict[tuple[str, str], _Baseline] = {}
        self.resets = 0

    def update(self, samples: Iterable[CounterSample]) -> list[RateSample]:
        """Feed new readings; returns the rates they complete (none for first readings)."""
        out: list[RateSample] = []
        for s in samples:
            key = (s.device, s.interface)
            base = self._last.get(key)
            if base is None:
                self._last[key] = _Baseline(s)
                continue
            prev = base.sample
            dt = s.timestamp - prev.timestamp
            if dt <= 0:
                continue  # duplicate or out of order: keep the older baseline
            restarted = s.sys_uptime_s + 1e-6 < prev.sys_uptime_s
            if not restarted:
                dt = _interval(prev, s, dt)
            d_in = counter_delta(prev.in_octets, s.in_octets, s.counter_bits)
            d_out = counter_delta(prev.out_octets, s.out_octets, s.counter_bits)
            self._last[key] = _Baseline(s)
            if restarted or d_in is None or d_out is None:
                self.resets += 1
                continue
            notes = []
            if d_in[1] or d_out[1]:
                notes.append("wrap")
            if dt > self.gap_factor * self.expected_interval_s:
                notes.append("gap")
            out.append(
                RateSample(
                    device=s.device,
                    interface=s.interface,
                    timestamp=s.timestamp,
                    interval_s=dt,
                    in_mbps=d_in[0] * 8 / dt / 1e6,
                    out_mbps=d_out[0] * 8 / dt / 1e6,
                    speed_mbps=s.speed_mbps,
                    oper_up=s.oper_up,
                    note=",".join(notes),
                )
            )
        return out

    def forget(self, device: str) -> None:
        """Drop the baselines of ``device`` (e.g. when it leaves the inventory)."""
        for key in [k for k in self._last if k[0] == device]:
            del self._last[key]
