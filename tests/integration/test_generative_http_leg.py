"""The edge-cloud leg as real HTTP (the lab's), here over loopback sockets without root.

Every device's "host" is this machine's loopback, so the bytes cross a real TCP connection to a
real cloud-instance server; the lab tests run the same leg between Mininet hosts.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from netgpt.errors import LLMUnavailableError
from netgpt.generative.base import CloudCall
from netgpt.generative.lab_leg import lab_service
from netgpt.generative.service import GenerativeService
from netgpt.sim_networks.flow_timing import FlowDroppedError
from netgpt.sim_networks.topology import Topology, build_topology
from netgpt.telemetry.store import SqliteTelemetryStore

pytestmark = pytest.mark.integration


class LoopbackHosts:
    """Every device's host is 127.0.0.1 in this namespace (a HostNetwork with no routers)."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology

    def has_host(self, device: str) -> bool:
        return device in self.topology.graph

    def host_address(self, device: str) -> str:
        return "127.0.0.1"

    def host_socket(self, device: str) -> socket.socket:
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)

    def host_listener(self, device: str, port: int) -> socket.socket:
        sock = self.host_socket(device)
        sock.bind(("127.0.0.1", port))
        sock.listen(16)
        return sock


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[GenerativeService, SqliteTelemetryStore, int]]:
    store = SqliteTelemetryStore(tmp_path / "service.sqlite")
    port = _free_port()
    service = lab_service(LoopbackHosts(build_topology("abilene")), store=store, port=port)
    try:
        yield service, store, port
    finally:
        service.close()
        store.close()


def test_requests_cross_a_real_connection_and_are_recorded(served) -> None:  # type: ignore[no-untyped-def]
    service, store, _ = served
    answer = service.ask("New York", "need to print my slides")
    assert "New York" in answer.text and "nyc-print-7" in answer.text, answer.text
    assert answer.prompt.adapter is not None  # completed at the edge, with the site's adapter
    t = answer.timing
    assert t.rtt_ms > 0 and t.up_ms > 0 and t.down_ms > 0
    assert t.network_ms == pytest.approx(t.up_ms + t.down_ms)
    s = answer.sample
    # the bytes are those written and read on the socket: the JSON body plus HTTP headers
    call = CloudCall("edge+cloud", "need to print my slides", prompt=answer.prompt)
    body = len(json.dumps(call.body(), separators=(",", ":")).encode())
    assert body < s.wan_bytes_up < body + 200
    assert s.wan_bytes_down > len(answer.text.encode())
    assert s.cloud_ms > 0 and s.total_ms >= s.edge_ms + s.network_ms + s.cloud_ms - 1.0

    # cloud-only: the words and the whole context cross; the cloud completes without adapter
    only = service.ask("New York", "need to print my slides", mode="cloud-only")
    assert only.prompt.adapter is None and only.sample.edge_ms == 0
    assert only.sample.wan_bytes_up > s.wan_bytes_up
    assert "New York" in only.text

    # streaming: pieces as the server's events arrive, the metrics once they end
    stream = service.stream("Denver", "my video keeps freezing")
    text = "".join(stream)
    assert stream.answer is not None and text == stream.answer.text and "Denver" in text
    assert stream.answer.sample.wan_bytes_down > len(text)

    frame = store.service_frame(workload="generative")
    assert list(frame["mode"]) == ["edge+cloud", "cloud-only", "edge+cloud"]
    assert frame["ok"].all() and (frame["network_ms"] > 0).all()
    assert frame.iloc[0]["wan_bytes_up"] == s.wan_bytes_up


def test_the_cloud_instance_refuses_a_bad_body_by_name(served) -> None:  # type: ignore[no-untyped-def]
    _, _, port = served
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    no_user = httpx.post(url, json={"messages": [{"role": "system", "content": "hi"}]})
    assert no_user.status_code == 400 and "user message" in no_user.json()["error"]["message"]
    bad_context = httpx.post(url, json={"messages": [{"role": "user", "content": "hi"}],
                                        "netgpt_context": {"site": "X"}})
    assert bad_context.status_code == 400 and "device" in bad_context.json()["error"]["message"]
    assert httpx.get(f"http://127.0.0.1:{port}/health").json()["ok"] is True


def test_a_cloud_that_is_gone_fails_the_request_as_dropped_and_records_it(
        served) -> None:  # type: ignore[no-untyped-def]
    service, store, _ = served
    service.leg.close()  # the cloud instance stops listening: connections are refused
    with pytest.raises(FlowDroppedError, match=r"tcp/.* from NYCMng to KSCYng"):
        service.ask("New York", "need to print my slides")
    frame = store.service_frame()
    assert len(frame) == 1 and not frame.iloc[0]["ok"]
    assert "refused" in frame.iloc[0]["error"].lower()


def test_a_down_model_answers_503_which_the_edge_reports_as_unavailable(
        tmp_path: Path) -> None:
    class DownModel:
        backend = "down"
        model = "down"

        def chat(self, request):  # type: ignore[no-untyped-def]
            raise LLMUnavailableError("the model server at 127.0.0.1:1 refused the connection")

        def stream(self, request):  # type: ignore[no-untyped-def]
            raise LLMUnavailableError("the model server at 127.0.0.1:1 refused the connection")

        def health(self):  # type: ignore[no-untyped-def]
            raise LLMUnavailableError("down")

    service = lab_service(LoopbackHosts(build_topology("abilene")), cloud=DownModel(),
                          port=_free_port())
    try:
        with pytest.raises(LLMUnavailableError, match="refused the connection"):
            service.ask("Denver", "printer?")
    finally:
        service.close()
