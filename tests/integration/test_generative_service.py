"""The generative service on the embedded network: HTTP answers with the site's context,
metrics in the telemetry store, and a latency objective the closed loop keeps."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from netgpt.agents.platform import IntentPlatform
from netgpt.agents.watch import IntentWatcher
from netgpt.generative.deploy import HttpEdgeMover, embedded_service
from netgpt.generative.http import create_service_app
from netgpt.generative.service import GenerativeService
from netgpt.http_server import HttpServer
from netgpt.intents.model import LifecycleState
from netgpt.sim_networks.runtime import EmbeddedNetwork
from netgpt.sim_networks.twin import Demand
from netgpt.telemetry.store import SqliteTelemetryStore
from netgpt.telemetry.views import service_level
from tests.integration.networks import start_network

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[tuple[EmbeddedNetwork, GenerativeService,
                                                SqliteTelemetryStore, str]]:
    net = start_network("abilene", tmp_path / "net", start=62000)
    store = SqliteTelemetryStore(tmp_path / "service.sqlite")
    service = embedded_service(net.live, store=store)
    server = HttpServer(create_service_app(service), port=_free_port())
    server.start()
    try:
        yield net, service, store, server.url
    finally:
        server.stop()
        store.close()
        net.stop()


def _ask(url: str, text: str, site: str, **extra: object) -> httpx.Response:
    body = {"model": f"netgpt@{site}", "messages": [{"role": "user", "content": text}], **extra}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)


def test_answers_carry_the_site_context_and_metrics_reach_the_store(
        deployed) -> None:  # type: ignore[no-untyped-def]
    net, service, store, url = deployed
    assert "netgpt@New York" in [m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]]

    reply = _ask(url, "need to print my slides", "New York")
    assert reply.status_code == 200, reply.text
    data = reply.json()
    answer = data["choices"][0]["message"]["content"]
    m = data["netgpt"]
    # the site's context: where the user is, the local time, the right local service
    assert "New York" in answer and "nyc-print-7" in answer, answer
    assert m["services"][0] == "nyc-print-7" and m["edge_adapter"] is not None
    assert "local time" in m["completed_prompt"]
    # the exchange crossed the network the way it forwards New York -> Kansas City
    twin = net.live.twin()
    one_way = twin.path_latency_ms("NYCMng", "KSCYng")[1]
    assert m["path"][0] == "NYCMng" and m["path"][-1] == "KSCYng"
    assert m["network_ms"] >= 2 * one_way - 1e-6
    assert m["total_ms"] >= m["edge_ms"] + m["network_ms"] + m["cloud_ms"] - 1.0

    # streaming: the same service, the text in pieces, the metrics in the last chunk
    with httpx.stream("POST", f"{url}/v1/chat/completions", timeout=30, json={
            "model": "netgpt", "stream": True, "site": "Denver",
            "messages": [{"role": "user", "content": "my video keeps freezing"}]}) as r:
        assert r.status_code == 200
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert "Denver" in text and chunks[-1]["netgpt"]["site"] == "Denver"

    # cloud-only ships the whole context over the WAN; edge+cloud only the completed prompt
    cloud_only = _ask(url, "need to print my slides", "New York", netgpt_mode="cloud-only")
    assert cloud_only.status_code == 200
    c = cloud_only.json()["netgpt"]
    assert c["edge_ms"] == 0 and c["wan_bytes_up"] > m["wan_bytes_up"]

    frame = store.service_frame(workload="generative")
    assert list(frame["site"]) == ["New York", "Denver", "New York"]
    assert list(frame["mode"]) == ["edge+cloud", "edge+cloud", "cloud-only"]
    assert frame["ok"].all() and (frame["wan_bytes_up"] > 0).all()
    assert frame.iloc[0]["network_ms"] == pytest.approx(m["network_ms"], abs=1e-3)
    assert frame.iloc[0]["services"].startswith("nyc-print-7")

    # bad requests: a clear 400 naming the value, nothing recorded
    unknown = _ask(url, "printer?", "Paris")
    assert unknown.status_code == 400 and "Paris" in unknown.json()["error"]["message"]
    empty = _ask(url, "   ", "New York")
    assert empty.status_code == 400 and "empty" in empty.json()["error"]["message"]
    assert len(store.service_frame()) == 3
    assert service.sites == sorted(service.placement.edges)


@pytest.fixture
def managed(deployed, tmp_path: Path) -> Iterator[IntentPlatform]:  # type: ignore[no-untyped-def]
    """A platform managing the deployed service (its placement and its request store)."""
    net, service, store, _ = deployed
    assert net.inventory is not None
    platform = IntentPlatform(net.inventory, tmp_path / "agent", topology=net.topology,
                              edge_model=False)
    platform.manage_workload(service.placement, store)
    try:
        yield platform
    finally:
        platform.close()


def test_an_operator_acl_on_the_service_port_fails_requests_visibly(
        deployed, managed: IntentPlatform) -> None:  # type: ignore[no-untyped-def]
    _, _, store, url = deployed
    platform = managed
    slo = platform.submit(
        "keep p95 latency of the generative service under 300 ms for users at New York")
    assert slo.outcome == "deployed", slo.state.get("reason")
    run = platform.submit("block tcp port 8800 from NYCMng to KSCYng")
    assert run.outcome == "deployed", run.state.get("reason")
    reply = _ask(url, "need to print my slides", "New York")
    assert reply.status_code == 502, reply.text
    assert "dropped" in reply.json()["error"]["message"]
    # other sites still get answers
    assert _ask(url, "need to print my slides", "Denver").status_code == 200
    frame = store.service_frame()
    failed = frame[~frame["ok"]]
    assert list(failed["site"]) == ["New York"] and "8800" in failed.iloc[0]["error"]
    # the objective is violated, and no routing change can help: escalated, nothing changed
    before = platform.read_configs()
    events = {e.intent_id: e for e in IntentWatcher(platform).check_once()}
    hit = events[slo.run_id]
    assert hit.action == "escalated" and hit.state is LifecycleState.VIOLATED, hit.detail
    assert "every one of 1 requests failed" in hit.report.results[0].measurement
    assert "cause is elsewhere" in hit.detail
    assert platform.read_configs() == before


def test_an_acl_on_the_edges_way_to_the_cloud_is_kept_by_moving_the_edge_instance(
        deployed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    net, service, store, url = deployed
    assert net.inventory is not None
    platform = IntentPlatform(net.inventory, tmp_path / "agent", topology=net.topology,
                              edge_model=False)
    # the platform moves edges the way a separate control plane does: the service's HTTP route
    platform.manage_workload(service.placement, store, mover=HttpEdgeMover(url),
                             edge_bytes=service.edge_bytes)
    try:
        slo = platform.submit(
            "keep p95 latency of the generative service under 300 ms for users at New York")
        assert slo.outcome == "deployed", slo.state.get("reason")
        acl = platform.submit("block tcp port 8800 from NYCMng to KSCYng")
        assert acl.outcome == "deployed", acl.state.get("reason")
        assert _ask(url, "need to print my slides", "New York").status_code == 502

        (hit,) = [e for e in IntentWatcher(platform).check_once() if e.intent_id == slo.run_id]
        assert hit.action == "moved", hit.detail
        new_edge = service.placement.edges["New York"]
        assert new_edge != "NYCMng" and platform.workloads["generative"].edges["New York"] == (
            new_edge)
        assert f"from NYCMng to {new_edge}" in hit.detail and "MB" in hit.detail
        moved = [r for r in platform.audit.records(slo.run_id) if r.step == "placement"]
        assert [r.outcome for r in moved] == ["moved"]
        assert moved[0].detail["bytes_moved"] == service.edge_bytes > 500_000
        assert moved[0].detail["transfer_ms"] > 0

        # New York's users are answered again: their words go to the new edge first
        reply = _ask(url, "need to print my slides", "New York")
        assert reply.status_code == 200, reply.text
        m = reply.json()["netgpt"]
        assert m["edge_device"] == new_edge and m["path"][:2] == ["NYCMng", new_edge]
        assert "nyc-print-7" in reply.json()["choices"][0]["message"]["content"]
        # the operator's ACL is untouched, and the objective holds on the new requests
        assert acl.run_id in [i.id for i in platform.store.intents()
                              if i.state is not LifecycleState.WITHDRAWN]
        (after,) = [e for e in IntentWatcher(platform).check_once()
                    if e.intent_id == slo.run_id]
        assert after.action == "none" and after.report.results[0].holds, after.detail
    finally:
        platform.close()


def test_a_latency_objective_is_kept_when_load_raises_the_service_latency(
        deployed, managed: IntentPlatform) -> None:  # type: ignore[no-untyped-def]
    net, service, store, _ = deployed
    platform = managed
    watcher = IntentWatcher(platform)
    asked = [0]

    def burst(n: int = 30) -> None:
        # request ids name the flows: which packets the network loses is then reproducible
        for _ in range(n):
            i = asked[0] = asked[0] + 1
            service.ask("New York", ["printer?", "video is choppy", "where is the pod"][i % 3],
                        request_id=f"r{i}")

    run = platform.submit(
        "keep p95 latency of the generative service under 300 ms for users at New York")
    assert run.outcome == "deployed", run.state.get("reason")
    burst()
    (ok,) = watcher.check_once()
    assert ok.action == "none" and ok.state is LifecycleState.FULFILLED, ok.detail
    before_load = ok.report.results[0]
    assert before_load.source == "telemetry" and before_load.value is not None

    # a backup from Chicago to Kansas City floods New York's path to the cloud
    path = net.live.twin().paths("NYCMng", net.live.twin().default_address("KSCYng"))
    assert "CHINng" in path[0].devices
    net.live.inject((Demand("CHINng", "KSCYng", 11_000.0),))
    burst()
    (hit,) = watcher.check_once()
    before = hit.report.results[0]
    assert not before.holds and before.value is not None and before.value > 300, (
        before.measurement)
    assert hit.action == "repaired", hit.detail

    burst()
    (after_event,) = watcher.check_once()
    after = after_event.report.results[0]
    assert after_event.action == "none" and after.holds, after.measurement
    assert after.value is not None and after.value < 300 < before.value
    # the report says both, and the network changed through the guarded path
    steps = [(r.step, r.outcome) for r in platform.audit.records(run.run_id)]
    assert ("watch", "violated") in steps and steps[-1] == ("apply", "deployed")
    assert platform.audit.verify()[0]
    recent = store.service_frame(workload="generative", site="New York")
    assert service_level(recent.tail(30), "latency_p95_ms", window_s=60).value < 300


def test_cli_net_up_with_the_service_ask_status_down(tmp_path: Path) -> None:
    import subprocess
    import sys

    from netgpt.generative.deploy import manage_deployed_service, read_deployment
    from netgpt.inventory import Inventory
    from netgpt.sim_networks.runtime import free_port_base

    def netgpt(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "netgpt.cli", *args, "--state-dir",
                               str(tmp_path)], capture_output=True, text=True, cwd=tmp_path,
                              timeout=120)

    nc = free_port_base(12, start=64000)
    sn = free_port_base(12, start=64100, kind=socket.SOCK_DGRAM)
    port = _free_port()
    up = netgpt("net", "up", "--topo", "abilene", "--netconf-port-base", str(nc),
                "--snmp-port-base", str(sn), "--service-port", str(port))
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        assert f"http://127.0.0.1:{port}/v1/chat/completions" in up.stdout
        deployment = read_deployment(tmp_path)
        assert deployment is not None and deployment.placement.cloud_device == "KSCYng"
        ask = netgpt("service", "ask", "need to print my slides", "--site", "New York")
        assert ask.returncode == 0, ask.stderr
        assert "nyc-print-7" in ask.stdout and "network" in ask.stdout
        bad = netgpt("service", "ask", "printer?", "--site", "Paris")
        assert bad.returncode == 2 and "Paris" in bad.stderr
        status = netgpt("service", "status")
        assert status.returncode == 0, status.stderr
        assert "New York" in status.stdout and "KSCYng" in status.stdout
        # the control plane finds the workload and measures its objectives from its store
        platform = IntentPlatform(Inventory.load(tmp_path / "inventory.yaml"),
                                  tmp_path / "agent", edge_model=False)
        try:
            assert manage_deployed_service(platform, tmp_path) is not None
            assert "generative" in platform.workloads
            assert platform.service_metrics is not None
            rows = platform.service_metrics.service_frame(workload="generative")
            assert list(rows["site"]) == ["New York"]
        finally:
            platform.close()
    finally:
        down = netgpt("net", "down")
    assert down.returncode == 0, down.stderr
    assert read_deployment(tmp_path) is None
    missing = netgpt("service", "status")
    assert missing.returncode == 2 and "--service-port" in missing.stderr
