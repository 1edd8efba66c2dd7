"""The generative service in process: modes, bytes, samples, placement moves, the HTTP front."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from netgpt.edge_models.prompt_model import EdgePromptModel
from netgpt.errors import ConfigError
from netgpt.generative.answer import GroundedAnswerModel
from netgpt.generative.base import CloudCall, CompletedPrompt, SiteContext
from netgpt.generative.deploy import embedded_service, read_deployment
from netgpt.generative.http import create_service_app
from netgpt.generative.service import GenerativeService
from netgpt.sim_networks.live import LiveNetwork
from netgpt.sim_networks.topology import abilene, campus
from netgpt.sim_networks.twin import Demand
from netgpt.telemetry.base import ServiceSample


@pytest.fixture(scope="module")
def model() -> EdgePromptModel:
    return EdgePromptModel.load()


def _service(model: EdgePromptModel, topology_name: str = "abilene"
             ) -> tuple[GenerativeService, LiveNetwork, list[ServiceSample]]:
    topo = abilene() if topology_name == "abilene" else campus()
    live = LiveNetwork(topo, None)
    samples: list[ServiceSample] = []
    service = embedded_service(live, completer=model, wait_network=False)
    service.record = samples.extend
    return service, live, samples


def test_edge_and_cloud_only_answer_with_context_and_count_the_wan(model: EdgePromptModel
                                                                   ) -> None:
    service, live, samples = _service(model)
    edge = service.ask("New York", "need to print my slides")
    cloud = service.ask("New York", "need to print my slides", mode="cloud-only")
    assert "nyc-print-7" in edge.text and "New York" in edge.text
    assert edge.prompt.adapter is not None and cloud.prompt.adapter is None
    assert edge.sample.edge_ms > 0 and cloud.sample.edge_ms == 0
    # cloud-only sends the site's whole context; edge+cloud only the completed prompt
    assert cloud.sample.wan_bytes_up > edge.sample.wan_bytes_up
    one_way = live.twin().path_latency_ms("NYCMng", "KSCYng")[1]
    assert edge.sample.network_ms == pytest.approx(2 * one_way, abs=0.5)
    assert [s.mode for s in samples] == ["edge+cloud", "cloud-only"]
    assert samples[0].services.split(",")[0] == "nyc-print-7"
    assert all(s.ok and s.workload == "generative" for s in samples)


def test_bad_input_is_refused_and_nothing_is_recorded(model: EdgePromptModel) -> None:
    service, _, samples = _service(model)
    with pytest.raises(ConfigError, match="no edge instance at site 'Paris'"):
        service.ask("Paris", "printer?")
    with pytest.raises(ConfigError, match="empty"):
        service.ask("New York", "  ")
    with pytest.raises(ConfigError, match="at most 2000"):
        service.ask("New York", "x" * 2001)
    with pytest.raises(ConfigError, match="mode 'edge'"):
        service.ask("New York", "printer?", mode="edge")  # type: ignore[arg-type]
    assert samples == []


def test_streaming_gives_the_same_answer_in_pieces(model: EdgePromptModel) -> None:
    service, _, samples = _service(model)
    whole = service.ask("Denver", "my video keeps freezing")
    stream = service.stream("Denver", "my video keeps freezing")
    pieces = list(stream)
    assert stream.answer is not None and stream.answer.sample.site == "Denver"
    assert len(pieces) > 3 and "".join(pieces) == stream.answer.text
    assert stream.answer.prompt.services == whole.prompt.services
    assert len(samples) == 2


def test_moving_an_edge_instance_costs_its_files_over_the_network(model: EdgePromptModel
                                                                  ) -> None:
    service, live, _ = _service(model)
    service.edge_bytes = 5_000_000
    before = service.ask("New York", "printer?")
    move = service.move_edge("New York", "WASHng")
    assert (move.old_device, move.new_device) == ("NYCMng", "WASHng")
    assert move.bytes_moved == 5_000_000 and move.transfer_ms > 0
    after = service.ask("New York", "printer?")
    assert after.sample.edge_device == "WASHng" and before.sample.edge_device == "NYCMng"
    # the users stay in New York: their words now cross to Washington first
    assert after.timing.path[:2] == ("NYCMng", "WASHng") and after.timing.path[-1] == "KSCYng"
    assert after.sample.wan_bytes_up > before.sample.wan_bytes_up
    # a flood on the way makes the same move slower
    service.move_edge("New York", "NYCMng")
    live.inject((Demand("NYCMng", "WASHng", 11_000.0),))
    slow = service.move_edge("New York", "WASHng")
    assert slow.transfer_ms > move.transfer_ms
    with pytest.raises(ConfigError, match="Paris"):
        service.move_edge("Paris", "WASHng")


def test_campus_service_runs_in_the_server_farm(model: EdgePromptModel) -> None:
    service, _, _ = _service(model, "campus")
    assert service.placement.cloud_device == "acc8"
    answer = service.ask("north", "printer?")
    assert "north" in answer.text and answer.sample.edge_device in ("acc1", "acc2", "acc3",
                                                                    "acc4")


def test_http_front_speaks_the_openai_shape(model: EdgePromptModel) -> None:
    service, _, samples = _service(model)
    client = TestClient(create_service_app(service))
    assert client.get("/health").json()["ok"] is True
    r = client.post("/v1/chat/completions", headers={"X-NetGPT-Site": "New York"}, json={
        "model": "gpt-4o", "messages": [{"role": "system", "content": "be brief"},
                                        {"role": "user", "content": "printer?"}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "netgpt@New York"
    assert body["usage"]["total_tokens"] > 0 and body["netgpt"]["site"] == "New York"
    with client.stream("POST", "/v1/chat/completions", json={
            "model": "netgpt@Denver", "stream": True,
            "messages": [{"role": "user", "content": "printer?"}]}) as s:
        lines = [ln[6:] for ln in s.iter_lines() if ln.startswith("data: ")]
    assert lines[-1] == "[DONE]" and json.loads(lines[-2])["netgpt"]["site"] == "Denver"
    # errors: OpenAI-shaped, naming the bad value
    for body_, words in (
        ({"model": "netgpt", "messages": [{"role": "user", "content": "hi"}]}, "no site given"),
        ({"model": "netgpt@Denver", "messages": []}, "messages"),
        ({"model": "netgpt@Denver", "messages": [{"role": "user", "content": "hi"}],
          "netgpt_mode": "edge"}, "netgpt_mode"),
        ({"model": "netgpt@Denver", "messages": [{"role": "assistant", "content": "hi"}]},
         "no user message"),
    ):
        bad = client.post("/v1/chat/completions", json=body_)
        assert bad.status_code == 400, bad.text
        assert words in bad.json()["error"]["message"]
    assert len(samples) == 2


def test_no_deployment_file_means_no_service(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert read_deployment(tmp_path) is None
    (tmp_path / "service.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not a service deployment"):
        read_deployment(tmp_path)


def test_grounded_answer_refuses_a_request_without_user_text() -> None:
    from netgpt.cloud_models.base import ChatMessage, ChatRequest
    from netgpt.errors import LLMOutputError

    with pytest.raises(LLMOutputError, match="no user message"):
        GroundedAnswerModel().chat(ChatRequest(messages=(ChatMessage("system", "x"),)))


def test_a_model_backend_writes_the_answer_in_the_cloud(model: EdgePromptModel) -> None:
    from netgpt.cloud_models.registry import llm_from_config

    cloud = llm_from_config("transformers_local")  # the project's own small Llama, in process
    try:
        topo = abilene()
        service = embedded_service(LiveNetwork(topo, None), completer=model, cloud=cloud,
                                   wait_network=False)
        answer = service.ask("New York", "need to print my slides", max_tokens=24)
        assert answer.text.strip() and "grounded" not in answer.text
        assert 0 < answer.sample.completion_tokens <= 24
        assert answer.sample.cloud_ms > 0 and "nyc-print-7" in answer.prompt.text
    finally:
        cloud.close()


def test_context_round_trips_through_the_wire_format() -> None:
    ctx = SiteContext("New York", "NYCMng", "09:30", -5.0, (), ("2 ms round trip",))
    call = CloudCall("cloud-only", "printer?", context=ctx)
    back = CloudCall.from_body(call.body())
    assert back.mode == "cloud-only" and back.context == ctx and back.request == "printer?"
    prompt = CompletedPrompt(request="printer?", text="At New York: printer?", site="New York")
    edge = CloudCall.from_body(CloudCall("edge+cloud", "printer?", prompt=prompt).body())
    assert edge.mode == "edge+cloud" and edge.prompt is not None
    assert edge.prompt.text == "At New York: printer?"


def test_a_malformed_call_body_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="no user message"):
        CloudCall.from_body({"messages": [{"role": "system", "content": "x"}]})
    with pytest.raises(ConfigError, match="max_tokens 0"):
        CloudCall.from_body({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0})
    with pytest.raises(ConfigError, match="local_time"):
        CloudCall.from_body({"messages": [{"role": "user", "content": "x"}],
                             "netgpt_context": {"site": "A", "device": "d"}})
