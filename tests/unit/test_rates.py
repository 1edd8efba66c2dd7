import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netgpt.telemetry.base import CounterSample
from netgpt.telemetry.rates import CounterRateTracker, counter_delta
from netgpt.telemetry.store import SqliteTelemetryStore

pytestmark = pytest.mark.unit


def sample(t, i, o, *, uptime=None, bits=64, device="r1", itf="eth1"):
    return CounterSample(
        device=device,
        interface=itf,
        if_index=2,
        timestamp=t,
        in_octets=i,
        out_octets=o,
        speed_mbps=1000.0,
        oper_up=True,
        admin_up=True,
        sys_uptime_s=uptime if uptime is not None else t,
        counter_bits=bits,
    )


def test_rate_from_two_samples():
    tr = CounterRateTracker(expected_interval_s=10)
    assert tr.update([sample(0, 0, 0)]) == []
    (r,) = tr.update([sample(10, 125_000_000, 250_000_000)])
    assert r.in_mbps == pytest.approx(100.0) and r.out_mbps == pytest.approx(200.0)
    assert r.out_utilization == pytest.approx(0.2) and r.note == ""


def test_32bit_wrap_is_counted():
    tr = CounterRateTracker(expected_interval_s=10)
    top = 2**32 - 1000
    tr.update([sample(0, top, 0, bits=32)])
    (r,) = tr.update([sample(10, 24_000, 0, bits=32)])
    assert r.in_mbps == pytest.approx(25_000 * 8 / 10 / 1e6)
    assert "wrap" in r.note


def test_agent_restart_skips_interval_and_rebaselines():
    tr = CounterRateTracker(expected_interval_s=10)
    tr.update([sample(0, 10_000_000, 0, uptime=500)])
    assert tr.update([sample(10, 1000, 0, uptime=3)]) == []
    assert tr.resets == 1
    (r,) = tr.update([sample(20, 1000 + 1_250_000, 0, uptime=13)])
    assert r.in_mbps == pytest.approx(1.0)


def test_64bit_counter_going_back_is_a_reset_not_a_wrap():
    assert counter_delta(1000, 10, 64) is None
    assert counter_delta(2**32 - 10, 10, 32) == (20, True)


def test_missed_samples_average_over_the_gap():
    tr = CounterRateTracker(expected_interval_s=10)
    tr.update([sample(0, 0, 0)])
    (r,) = tr.update([sample(40, 500_000_000, 0)])
    assert r.interval_s == 40 and r.in_mbps == pytest.approx(100.0) and r.note == "gap"


def test_duplicate_and_out_of_order_samples_ignored():
    tr = CounterRateTracker(expected_interval_s=10)
    tr.update([sample(10, 100, 0)])
    assert tr.update([sample(10, 100, 0), sample(5, 50, 0)]) == []
    (r,) = tr.update([sample(20, 100 + 1_250_000, 0)])
    assert r.in_mbps == pytest.approx(1.0)


@given(st.lists(st.integers(min_value=0, max_value=10**9), min_size=2, max_size=30))
def test_total_octets_preserved_across_32bit_wraps(increments):
    """Summing rate*interval over samples gives back every octet counted, wraps included."""
    tr = CounterRateTracker(expected_interval_s=1)
    total, t, out = 0, 0.0, []
    tr.update([sample(t, 0, 0, bits=32)])
    for inc in increments:
        total += inc
        t += 1
        out += tr.update([sample(t, total % 2**32, 0, bits=32)])
    assert sum(r.in_mbps * 1e6 / 8 * r.interval_s for r in out) == pytest.approx(
        total, rel=1e-9, abs=1e-3
    )


def test_store_round_trip_as_frames(tmp_path):
    store = SqliteTelemetryStore(tmp_path / "t.sqlite")
    tr = CounterRateTracker(expected_interval_s=10)
    rows = [sample(0, 0, 0), sample(0, 0, 0, itf="eth2")]
    store.add_counters(rows)
    tr.update(rows)
    later = [sample(10, 125_000_000, 0), sample(10, 0, 12_500_000, itf="eth2")]
    store.add_counters(later)
    store.add_rates(tr.update(later))
    frame = store.rates_frame()
    assert list(frame["interface"]) == ["eth1", "eth2"]
    assert frame.loc[frame.interface == "eth1", "in_utilization"].item() == pytest.approx(0.1)
    assert store.rates_frame(interface="eth2")["out_mbps"].item() == pytest.approx(10.0)
    assert store.rates_frame(since=11).empty
    assert len(store.latest_rates()) == 2
    assert store.counters_count() == 4
    store.close()


def test_a_store_from_before_request_times_takes_new_counters(tmp_path):
    import sqlite3

    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as db:  # the counters table as it was before requested_at
        db.execute(
            "CREATE TABLE counters (device TEXT NOT NULL, interface TEXT NOT NULL, if_index "
            "INTEGER NOT NULL, time REAL NOT NULL, in_octets INTEGER NOT NULL, out_octets "
            "INTEGER NOT NULL, speed_mbps REAL NOT NULL, oper_up INTEGER NOT NULL, admin_up "
            "INTEGER NOT NULL, sys_uptime_s REAL NOT NULL, counter_bits INTEGER NOT NULL)"
        )
        db.execute("INSERT INTO counters VALUES ('r1','eth1',2,0,0,0,1000,1,1,0,64)")
    store = SqliteTelemetryStore(old)
    store.add_counters([_timed(1.0, 1.1, 5, uptime=1.0)])
    assert store.counters_count() == 2
    store.close()


def test_store_refuses_a_non_sqlite_file(tmp_path):
    from netgpt.errors import ConfigError

    bad = tmp_path / "bad.sqlite"
    bad.write_text("this is not a database" * 100)
    with pytest.raises(ConfigError, match="not a usable SQLite"):
        SqliteTelemetryStore(bad)


def test_agent_uptime_times_the_interval_when_it_agrees_with_the_wall_clock():
    tr = CounterRateTracker(expected_interval_s=1)
    tr.update([sample(100.00, 0, 0, uptime=50.0)])
    # the response queued 30 ms longer than the last one; the agent's clock says 1.00 s passed
    (r,) = tr.update([sample(101.03, 125_000, 0, uptime=51.0)])
    assert r.interval_s == pytest.approx(1.0) and r.in_mbps == pytest.approx(1.0)
    # an agent clock that disagrees wildly is not trusted
    (r2,) = tr.update([sample(102.03, 250_000, 0, uptime=60.0)])
    assert r2.interval_s == pytest.approx(1.0) and r2.in_mbps == pytest.approx(1.0)


def test_tomogravity_recovers_a_hot_pair_that_gravity_smears():
    from netgpt.sim_networks.topology import build_topology
    from netgpt.sim_networks.traffic import traffic_model
    from netgpt.sim_networks.twin import Demand, DigitalTwin, TrafficMatrix
    from netgpt.telemetry.base import RateSample
    from netgpt.telemetry.views import estimate_traffic_matrix, tomogravity_traffic_matrix

    topo = build_topology("abilene")
    base = traffic_model("diurnal", topo, noise=0.0, burst_rate_per_hour=0.0).matrix_at(0)
    true = TrafficMatrix((*base.demands, Demand("CHINng", "NYCMng", 6500.0)))
    twin = DigitalTwin(topo)
    measured = twin.evaluate(true)
    latest = {
        k: RateSample(k[0], k[1], 0.0, 1.0, v.ingress_mbps, v.egress_mbps, 1000.0, True)
        for k, v in measured.interfaces.items()
    }

    def link_error(matrix: TrafficMatrix) -> float:
        est = twin.evaluate(matrix)
        total = sum(load.load_mbps for load in measured.links.values())
        return sum(
            abs(est.links[k].load_mbps - measured.links[k].load_mbps) for k in measured.links
        ) / total

    gravity = estimate_traffic_matrix(latest)
    tomo = tomogravity_traffic_matrix(latest, twin)
    assert link_error(tomo) < 0.05 < link_error(gravity)
    assert twin.evaluate(tomo).max_utilization == pytest.approx(measured.max_utilization, rel=0.05)


def _timed(sent, received, octets, uptime):
    return dataclasses.replace(sample(received, octets, octets, uptime=uptime), requested_at=sent)


def test_a_late_handled_response_does_not_inflate_the_next_rate():
    # the first response was read at t=0.01 but handled at t=0.8 by a busy poller; the second
    # was sent at 0.8: by reception times the 100 Mbit/s link looks 16 times as busy
    tr = CounterRateTracker(expected_interval_s=0.5)
    tr.update([_timed(0.0, 0.8, 0, uptime=100.01)])
    (r,) = tr.update([_timed(0.8, 0.85, 10_000_000, uptime=100.81)])
    assert r.interval_s == pytest.approx(0.8)
    assert r.in_mbps == pytest.approx(100.0)


def test_an_agent_clock_outside_the_request_windows_is_not_trusted():
    # sysUpTime says 5 s passed, but the requests were at most 0.7 s apart: the windows' midpoints
    tr = CounterRateTracker(expected_interval_s=0.5)
    tr.update([_timed(0.0, 0.2, 0, uptime=10.0)])
    (r,) = tr.update([_timed(0.5, 0.7, 6_250_000, uptime=15.0)])
    assert r.interval_s == pytest.approx(0.5)
    assert r.in_mbps == pytest.approx(100.0)


@given(
    read1=st.floats(0.0, 1.0), read2=st.floats(1.5, 3.0),
    lag1=st.floats(0.0, 2.0), lag2=st.floats(0.0, 2.0), lead=st.floats(0.0, 0.5),
)
def test_rates_are_exact_whatever_the_reception_delays(read1, read2, lag1, lag2, lead):
    """Counters read at read1/read2 (by the agent's clock), at 80 Mbit/s; any send/receive delay."""
    tr = CounterRateTracker(expected_interval_s=1.0)
    rate_bytes = 10_000_000
    tr.update([_timed(read1 - lead, read1 + lag1, int(rate_bytes * read1), uptime=round(read1, 2))])
    out = tr.update([_timed(max(read1 + lag1, read2 - lead), read2 + lag2,
                            int(rate_bytes * read2), uptime=round(read2, 2))])
    if out:  # none when the second reception is not after the first
        assert out[0].in_mbps == pytest.approx(80.0, rel=0.03)
