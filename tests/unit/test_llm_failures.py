"""The openai_compat backend's failure paths, against real HTTP servers on loopback.

Each server here is a small scripted OpenAI-compatible endpoint (stdlib http.server on a free
port): real sockets and the real httpx client, no mocks. The last test shows that a model
proposing a forbidden action gets nowhere: the intent it proposes compiles to a change the
guardrails refuse.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from netgpt.cloud_models import ChatMessage, ChatRequest, choose_plan, explain, read_intent
from netgpt.cloud_models.intent_draft import draft_from_intent, draft_json
from netgpt.cloud_models.openai_compat import OpenAICompatModel, OpenAICompatSettings
from netgpt.errors import (
    LLMError,
    LLMOutputError,
    LLMRequestError,
    LLMTimeoutError,
    LLMUnavailableError,
)
from netgpt.intents.compiler import compile_intent
from netgpt.intents.names import NameTable
from netgpt.intents.parser import parse_intent
from netgpt.policies.guardrails import default_policies, evaluate_change
from netgpt.sim_networks.topology import build_topology

pytestmark = pytest.mark.unit

CAMPUS = build_topology("campus")
NAMES = NameTable.from_topology(CAMPUS)


def completion(content: str | None, *, model: str = "netgpt-intent") -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": "stop",
                     "logprobs": {"content": [{"token": "x", "logprob": -0.1},
                                              {"token": "y", "logprob": -0.3}]}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 2},
    }


class ScriptedServer:
    """An OpenAI-compatible server answering from a script; it records what it was sent.

    Each script entry is ``(status, body)``, ``("stall", seconds)`` or ``("stream", pieces)``;
    the last entry repeats.
    """

    def __init__(self, script: list[tuple[Any, Any]]) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/health":
                    self._send(200, b"")
                elif self.path == "/v1/models":
                    self._send(200, {"data": [{"id": "netgpt-intent"}, {"id": "campus"}]})
                else:
                    self._send(404, {"error": {"message": "no such path"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                server.requests.append(json.loads(self.rfile.read(length)))
                index = min(len(server.requests), len(server.script)) - 1
                kind, value = server.script[index]
                if kind == "stall":
                    server.release.wait(value)
                    return
                if kind == "stream":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    for piece in value:
                        event = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                        self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                        self.wfile.flush()
                    self.wfile.write(b"data: [DONE]\n\n")
                    return
                self._send(kind, value)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def client(base_url: str, **settings: Any) -> OpenAICompatModel:
    return OpenAICompatModel(OpenAICompatSettings(base_url=base_url, backoff_s=0.01, **settings))


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 where nothing listens (bound then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield port


def ask(llm: OpenAICompatModel) -> ChatRequest:
    return ChatRequest(messages=(ChatMessage("user", "hello"),), max_tokens=8)


# ------------------------------------------------------------------------------------------
# transport


def test_server_down_is_unavailable_after_retries(closed_port):
    llm = client(f"http://127.0.0.1:{closed_port}/v1", retries=2)
    start = time.monotonic()
    with pytest.raises(LLMUnavailableError) as err:
        llm.chat(ask(llm))
    assert isinstance(err.value, ConnectionError)
    assert f"127.0.0.1:{closed_port}" in str(err.value)
    assert "netgpt llm serve" in str(err.value)
    assert time.monotonic() - start < 5
    report = llm.health()
    assert not report.ok and "cannot reach" in report.detail
    with pytest.raises(LLMUnavailableError):
        read_intent(llm, "engineering must reach servers", NAMES)
    llm.close()


def test_stalled_server_times_out():
    with ScriptedServer([("stall", 30)]) as server:
        llm = client(server.base_url, timeout_s=0.5, retries=3)
        start = time.monotonic()
        with pytest.raises(LLMTimeoutError) as err:
            llm.chat(ask(llm))
        elapsed = time.monotonic() - start
        assert isinstance(err.value, TimeoutError)
        assert 0.4 < elapsed < 3, elapsed
        assert "0.5 s" in str(err.value)
        assert len(server.requests) == 1  # a timeout is not retried
        # the per-request timeout overrides the backend's
        request = ChatRequest(messages=(ChatMessage("user", "x"),), timeout_s=0.2)
        start = time.monotonic()
        with pytest.raises(LLMTimeoutError):
            llm.chat(request)
        assert time.monotonic() - start < 1.5
        llm.close()


def test_unavailable_status_is_retried_then_succeeds():
    with ScriptedServer([(503, {"error": {"message": "loading"}}),
                         (200, completion("hi"))]) as server:
        llm = client(server.base_url, retries=2)
        response = llm.chat(ask(llm))
        assert response.text == "hi"
        assert len(server.requests) == 2
        assert response.confidence == pytest.approx(0.8187, abs=1e-3)  # exp(mean(-0.1, -0.3))


def test_http_errors_are_request_errors_naming_the_status():
    with ScriptedServer([(404, {"error": {"message": "The model `nope` does not exist."}})]) \
            as server:
        llm = client(server.base_url, model="nope")
        with pytest.raises(LLMRequestError) as err:
            llm.chat(ask(llm))
        assert err.value.status == 404
        assert "does not exist" in str(err.value) and "netgpt llm status" in str(err.value)
        health = llm.health()
        assert not health.ok and "does not serve 'nope'" in health.detail


def test_non_json_body_and_missing_content_are_output_errors():
    with ScriptedServer([(200, b"<html>proxy error</html>")]) as server:
        llm = client(server.base_url)
        with pytest.raises(LLMOutputError, match="not JSON"):
            llm.chat(ask(llm))
    with ScriptedServer([(200, completion(None))]) as server:
        llm = client(server.base_url)
        with pytest.raises(LLMOutputError, match="no text"):
            llm.chat(ask(llm))


def test_stream_yields_pieces_in_order():
    with ScriptedServer([("stream", ["Hel", "lo", " there"])]) as server:
        llm = client(server.base_url)
        assert list(llm.stream(ask(llm))) == ["Hel", "lo", " there"]
        assert server.requests[0]["stream"] is True


def test_health_lists_model_and_adapters():
    with ScriptedServer([(200, completion("x"))]) as server:
        report = client(server.base_url).health()
        assert report.ok and report.adapters == ("campus",)


# ------------------------------------------------------------------------------------------
# structured output: what is sent, invalid JSON, schema mismatch, the one retry


def test_schema_request_fields_for_vllm():
    good = draft_json(draft_from_intent(parse_intent("engineering must reach servers", NAMES)))
    with ScriptedServer([(200, completion(good))]) as server:
        reading = read_intent(client(server.base_url), "engineering must reach servers", NAMES,
                              adapter="campus")
        body = server.requests[0]
        assert body["model"] == "campus"  # vLLM multi-LoRA: the adapter is the model name
        assert body["response_format"]["type"] == "json_schema"
        schema = body["response_format"]["json_schema"]["schema"]
        assert "group:engineering" in json.dumps(schema)
        assert body["temperature"] == 0 and body["logprobs"] is True
        assert reading.attempts == 1 and reading.backend == "openai_compat"
        assert reading.intent.expectations == parse_intent(
            "engineering must reach servers", NAMES).expectations
        assert reading.adapter == "campus" and 0 < (reading.confidence or 0) <= 1
    with ScriptedServer([(200, completion(good))]) as server:
        read_intent(client(server.base_url, structured="structured_outputs"), "x y", NAMES)
        body = server.requests[0]
        assert "json" in body["structured_outputs"] and "response_format" not in body


def test_invalid_json_twice_is_a_clean_failure_after_one_restated_retry():
    with ScriptedServer([(200, completion("engineering reaches servers, I think"))]) as server:
        with pytest.raises(LLMOutputError) as err:
            read_intent(client(server.base_url), "let engineering talk to servers", NAMES)
        assert err.value.attempts == 2
        assert "not valid JSON" in str(err.value)
        assert err.value.output == "engineering reaches servers, I think"
        assert len(server.requests) == 2
        retry = server.requests[1]["messages"]
        assert retry[-2] == {"role": "assistant",
                             "content": "engineering reaches servers, I think"}
        assert "matching this JSON schema" in retry[-1]["content"]
        assert '"title":"IntentDraft"' in retry[-1]["content"]  # the schema, restated


def test_schema_mismatch_then_a_good_answer_is_accepted_on_retry():
    unknown_name = json.dumps({"expectations": [{"kind": "reachability",
                                                 "source": "group:marketing",
                                                 "destination": "group:servers"}],
                               "priority": 5})
    good = draft_json(draft_from_intent(parse_intent("finance must reach servers", NAMES)))
    with ScriptedServer([(200, completion(unknown_name)), (200, completion(good))]) as server:
        reading = read_intent(client(server.base_url), "finance folks need the servers", NAMES)
        assert reading.attempts == 2
        assert reading.intent.expectations == parse_intent(
            "finance must reach servers", NAMES).expectations
        assert "unknown group 'marketing'" in server.requests[1]["messages"][-1]["content"]


@pytest.mark.parametrize(
    "bad",
    [
        {"expectations": [{"kind": "teleport", "source": "any", "destination": "any"}],
         "priority": 5},
        {"expectations": [], "priority": 5},
        {"expectations": [{"kind": "load_balancing", "source": "group:lab",
                           "destination": "group:servers", "paths": 1}], "priority": 5},
        {"expectations": [{"kind": "access", "action": "block",
                           "traffic": {"source": "group:lab", "ports": "23"}}], "priority": 5},
        {"expectations": [{"kind": "reachability", "source": "group:lab",
                           "destination": "group:servers"}], "priority": 11},
        {"expectations": [{"kind": "reachability", "source": "router:core1",
                           "destination": "group:servers"}], "priority": 5},
        ["not", "an", "object"],
    ],
)
def test_schema_mismatch_twice_is_a_clean_failure(bad):
    with ScriptedServer([(200, completion(json.dumps(bad)))]) as server:
        with pytest.raises(LLMOutputError) as err:
            read_intent(client(server.base_url), "something odd", NAMES)
        assert err.value.attempts == 2 and len(server.requests) == 2
        assert "did not fit the schema twice" in str(err.value)
        assert isinstance(err.value, LLMError) and isinstance(err.value, ValueError)


def test_a_requirement_from_a_place_to_itself_is_a_misreading():
    loop = json.dumps({"expectations": [{"kind": "reachability", "source": "group:lab",
                                         "destination": "group:lab"}], "priority": 5})
    with ScriptedServer([(200, completion(loop))]) as server:
        with pytest.raises(LLMOutputError, match="group:lab as both source and destination"):
            read_intent(client(server.base_url), "the lab must reach the servers", NAMES)
        assert len(server.requests) == 2


def test_retry_refused_by_the_server_is_still_an_output_error():
    script: list[tuple[Any, Any]] = [(200, completion("{")),
                                     (400, {"error": {"message": "prompt too long"}})]
    with ScriptedServer(script) as server, pytest.raises(
        LLMOutputError, match="retry with the schema restated failed"
    ):
        read_intent(client(server.base_url), "anything", NAMES)


def test_choose_plan_and_explain_over_http():
    with ScriptedServer([(200, completion(json.dumps({"index": 7, "reason": "r"}))),
                         (200, completion(json.dumps({"index": 1, "reason": "fewer hops"})))]) \
            as server:
        index, reason = choose_plan(client(server.base_url), ["a", "b"], "low latency")
        assert (index, reason) == (1, "fewer hops")
        assert "index 7 is not an option" in server.requests[1]["messages"][-1]["content"]
        schema = server.requests[0]["response_format"]["json_schema"]["schema"]
        assert schema["properties"]["index"]["maximum"] == 1
    with ScriptedServer([(200, completion("  The change was refused because ...  "))]) as server:
        assert explain(client(server.base_url), "rule x failed") == (
            "The change was refused because ...")
        assert "json_schema" not in json.dumps(server.requests[0])


# ------------------------------------------------------------------------------------------
# a model proposing a forbidden action: the intent comes back, the guardrails refuse its change


def test_forbidden_action_proposed_by_a_model_is_refused_by_the_guardrails():
    # "take core1 off the air": a model reads it as core1 reaching nothing, which compiles to
    # dropping everything at core1's edge, the controller's own traffic included
    proposal = {
        "expectations": [{"kind": "reachability", "source": "device:core1",
                          "destination": "any", "reachable": False}],
        "priority": 10,
    }
    with ScriptedServer([(200, completion(json.dumps(proposal)))]) as server:
        reading = read_intent(client(server.base_url), "take core1 off the air, urgently",
                              NAMES)
    intent = reading.intent  # a well-formed proposal: models only propose
    assert intent.priority == 10
    configs = {d: CAMPUS.initial_config(d) for d in CAMPUS.devices}
    change_set = compile_intent(intent, CAMPUS, configs)
    assert change_set.devices == ("core1",)
    verdicts = evaluate_change(default_policies(), intent, change_set, configs,
                               now=datetime.now(UTC), topology=CAMPUS)
    refused = [v for v in verdicts if not v.passed]
    assert [v.rule for v in refused] == ["no-controller-block"]
    assert "core1 eth0" in refused[0].evidence and "controller" in refused[0].evidence
