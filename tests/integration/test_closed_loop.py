"""The closed loop against the embedded network: injected traffic, detection, repair."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from netgpt.agents.platform import IntentPlatform
from netgpt.agents.watch import IntentWatcher
from netgpt.intents.model import LifecycleState
from netgpt.sim_networks.twin import Demand
from tests.integration.networks import start_network

pytestmark = pytest.mark.integration


def test_injected_overload_is_detected_and_repaired(tmp_path: Path):
    net = start_network("abilene", tmp_path / "net", start=48000)
    topo = net.topology
    inventory = net.inventory
    assert inventory is not None
    platform = IntentPlatform(inventory, tmp_path / "agent", topology=topo)
    try:
        run = platform.submit("keep every link under 60% utilization")
        assert run.outcome == "deployed", run.state.get("reason")
        watcher = IntentWatcher(platform)
        (first,) = watcher.check_once()
        assert first.action == "none" and first.state is LifecycleState.FULFILLED, (
            first.report.results[0].measurement, first.detail)
        assert first.report.results[0].source == "telemetry"

        net.live.inject((Demand("CHINng", "NYCMng", 7500.0),))
        (hit,) = watcher.check_once()
        assert not hit.report.fulfilled
        assert "CHINng->NYCMng" in hit.report.results[0].measurement
        assert hit.action == "repaired", hit.detail
        changed = platform.read_configs(["CHINng"])["CHINng"]
        assert changed != topo.initial_config("CHINng")  # an IGP cost moved

        (after,) = watcher.check_once()
        assert after.action == "none" and after.state is LifecycleState.FULFILLED
        assert after.report.results[0].value is not None
        assert after.report.results[0].value <= 0.6
        steps = [(r.step, r.outcome) for r in platform.audit.records(run.run_id)]
        assert ("watch", "violated") in steps and steps[-1] == ("apply", "deployed")
        assert platform.audit.verify()[0]
    finally:
        platform.close()
        net.stop()


def test_unrepairable_violation_is_escalated_and_nothing_changes(tmp_path: Path):
    net = start_network("abilene", tmp_path / "net", start=50000)
    topo = net.topology
    inventory = net.inventory
    assert inventory is not None
    platform = IntentPlatform(inventory, tmp_path / "agent", topology=topo)
    try:
        run = platform.submit("keep every link under 60% utilization")
        assert run.outcome == "deployed"
        # ATLAM5 hangs off one 2.48 Gbit/s link: no routing change can help
        net.live.inject((Demand("ATLAM5", "NYCMng", 2000.0),))
        before = platform.read_configs()
        (event,) = IntentWatcher(platform).check_once()
        assert event.action == "escalated"
        assert event.state is LifecycleState.VIOLATED
        assert platform.read_configs() == before
        outcomes = [r.outcome for r in platform.audit.records(run.run_id)]
        assert outcomes[-1] == "escalated"
    finally:
        platform.close()
        net.stop()


def test_background_telemetry_feeds_planning_and_the_loop(tmp_path: Path):
    net = start_network("abilene", tmp_path / "net", start=52000)
    topo = net.topology
    inventory = net.inventory
    assert inventory is not None
    platform = IntentPlatform(inventory, tmp_path / "agent", topology=topo)
    try:
        platform.start_telemetry(0.5)
        assert platform.telemetry is not None
        cached = platform.telemetry.latest(max_age_s=1.25)
        assert cached is not None and len(cached) == 12 + 2 * 15
        run = platform.submit("keep every link under 60% utilization")
        assert run.outcome == "deployed", run.state.get("reason")
        net.live.inject((Demand("CHINng", "NYCMng", 7500.0),))
        time.sleep(1.6)  # three polls: the background rates now include the backup job
        (hit,) = IntentWatcher(platform).check_once()
        assert hit.action == "repaired", hit.detail
        # rates measured before the repair are not used to judge it
        assert platform.telemetry.latest(max_age_s=1.25, since=time.monotonic()) is None
        # the loop converges: on a loaded CI machine the traffic estimate behind the first plan
        # can be off, and then one more measured repair is allowed, never an endless loop
        watcher = IntentWatcher(platform)
        passes = [watcher.check_once()[0] for _ in range(2)]
        if passes[0].action == "repaired":
            passes.append(watcher.check_once()[0])
        after = passes[-1]
        assert after.action == "none" and after.report.fulfilled, [p.detail for p in passes]
    finally:
        platform.close()
        net.stop()


def test_forecast_of_a_rising_load_triggers_a_proactive_replan(tmp_path: Path):
    from netgpt.edge_models.forecasting import load_forecaster

    forecaster = load_forecaster()  # the project's shipped GPT-2 forecaster
    net = start_network("abilene", tmp_path / "net", start=54000)
    inventory = net.inventory
    assert inventory is not None
    platform = IntentPlatform(inventory, tmp_path / "agent", topology=net.topology)
    try:
        platform.start_telemetry(0.25)
        assert platform.telemetry is not None
        run = platform.submit("keep every link under 60% utilization")
        assert run.outcome == "deployed", run.state.get("reason")
        # a backup job ramps up on CHINng->NYCMng (9.95 Gbit/s): +120 Mbit/s every poll, from
        # about 7% until the polls measure 55% (about 42 polls; on a loaded machine the
        # measurements lag the job, so the ramp goes on until they show it), under the 60%
        # ceiling when the watcher looks
        key = ("CHINng", net.topology.interface_to("CHINng", "NYCMng"))

        def measured_at_least(level: float) -> bool:
            assert platform.telemetry is not None
            latest = platform.telemetry.latest(max_age_s=1.0)
            return latest is not None and key in latest and latest[key].out_utilization >= level

        for step in range(45):  # at most 5.78 Gbit/s: 58%
            net.live.inject((Demand("CHINng", "NYCMng", 500.0 + 120.0 * step),))
            time.sleep(0.25)
            if measured_at_least(0.55):
                break
        deadline = time.monotonic() + 3.0
        while not measured_at_least(0.55) and time.monotonic() < deadline:
            time.sleep(0.05)
        # The shipped forecaster continues such a ramp cautiously (P(> 60% within 12 polls)
        # computed 0.46-0.63 on 16-20 rows of a ramp ending at 54%, 0.70-0.79 at 56%, but
        # 0.06-0.16 at 50%; a CI run saw too little at 53.2%): a cautious operator acts from 25%.
        watcher = IntentWatcher(platform, forecaster=forecaster, horizon=12, probability=0.25,
                                min_history=16, history_rows=20)
        (event,) = watcher.check_once()
        measured = event.report.results[0]
        assert measured.holds, measured.measurement  # not violated yet: below 60% now
        assert "predicted" in measured.measurement, measured.measurement
        assert event.action == "proactive", event.detail
        steps = [(r.step, r.outcome) for r in platform.audit.records(run.run_id)]
        assert ("watch", "predicted") in steps and steps[-1] == ("apply", "deployed")
        changed = platform.read_configs()
        assert changed != {d: net.topology.initial_config(d) for d in net.topology.devices}
    finally:
        platform.close()
        net.stop()
