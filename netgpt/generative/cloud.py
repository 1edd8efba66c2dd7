"""The cloud instance: what answers a :class:`~netgpt.generative.base.CloudCall`.

:class:`CloudInstance` is the cloud's work, in process: a cloud-only call is completed first
(the global prompt model, no site adapter: adapters live at the edge), then the cloud model
answers. :class:`CloudHttpServer` puts an instance behind HTTP on a listening socket it is
handed, which may live in another network namespace (the Mininet lab puts it in the cloud
host's), so the call crosses a real network:

* ``POST /v1/chat/completions``: the call's body (:meth:`CloudCall.body`); the answer is an
  OpenAI ``chat.completion`` with a ``netgpt_cloud`` object (``cloud_ms``, ``received``,
  ``replied``: the server's monotonic clock when the request was read and when the answer
  began, and for cloud-only the completed prompt). With ``"stream": true`` the answer is
  server-sent events, the last one before ``data: [DONE]`` carrying ``netgpt_cloud``.
* ``GET /health``: the model's health.

Errors are OpenAI-shaped: 400 for a bad body (the message names it), 503 when the model is
unavailable, 502 when it failed. Every answer closes its connection.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from netgpt.cloud_models.base import ChatMessage, ChatRequest, ChatResponse, LanguageModel
from netgpt.errors import ConfigError, LLMError, LLMUnavailableError
from netgpt.generative.base import (
    SYSTEM_PROMPT,
    CloudCall,
    CloudReply,
    CompletedPrompt,
    PromptCompleter,
)

__all__ = ["MAX_BODY_BYTES", "CloudHttpServer", "CloudInstance"]

MAX_BODY_BYTES = 1 << 20


class CloudInstance:
    """Completes (cloud-only) and answers calls with ``model``."""

    def __init__(self, completer: PromptCompleter, model: LanguageModel) -> None:
        self.completer = completer
        self.model = model

    def _prompt(self, call: CloudCall) -> tuple[str, CompletedPrompt | None]:
        if call.mode == "edge+cloud":
            assert call.prompt is not None
            return call.prompt.text, None
        assert call.context is not None
        prompt = self.completer.complete(call.request, call.context, use_adapter=False)
        return prompt.text, prompt

    @staticmethod
    def _request(text: str, max_tokens: int) -> ChatRequest:
        return ChatRequest(messages=(ChatMessage("system", SYSTEM_PROMPT),
                                     ChatMessage("user", text)),
                           max_tokens=max_tokens, temperature=0.0)

    def answer(self, call: CloudCall) -> CloudReply:
        """The full answer (LLMError when the model fails)."""
        start = time.perf_counter()
        text, prompt = self._prompt(call)
        response = self.model.chat(self._request(text, call.max_tokens))
        return CloudReply(response, (time.perf_counter() - start) * 1e3, prompt)

    def stream(self, call: CloudCall, done: Callable[[CloudReply], None]) -> Iterator[str]:
        """The answer in pieces as the model writes them; ``done`` gets the reply after them.

        The reply's response counts words, not model tokens (a stream has no usage figures).
        """
        start = time.perf_counter()
        text, prompt = self._prompt(call)
        words: list[str] = []
        for piece in self.model.stream(self._request(text, call.max_tokens)):
            words.append(piece)
            yield piece
        answer = "".join(words)
        response = ChatResponse(text=answer, backend=self.model.backend, model=self.model.model,
                                prompt_tokens=len(text.split()),
                                completion_tokens=len(answer.split()), finish_reason="stop")
        done(CloudReply(response, (time.perf_counter() - start) * 1e3, prompt))


def _cloud_fields(reply: CloudReply, received: float, replied: float) -> dict[str, Any]:
    return {"cloud_ms": reply.cloud_ms, "received": received, "replied": replied,
            "prompt": asdict(reply.prompt) if reply.prompt is not None else None}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the service records every request itself."""

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def _error(self, status: int, message: str, kind: str) -> None:
        self._json(status, {"error": {"message": message, "type": kind, "param": None}})

    def do_GET(self) -> None:
        if self.path != "/health":
            self._error(404, f"no route {self.path}; try POST /v1/chat/completions",
                        "invalid_request_error")
            return
        report = self.server.instance.model.health()
        self._json(200, {"ok": report.ok, "detail": report.detail})

    def do_POST(self) -> None:
        if self.path != "/v1/chat/completions":
            self._error(404, f"no route {self.path}; try POST /v1/chat/completions",
                        "invalid_request_error")
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            if not 0 < length <= MAX_BODY_BYTES:
                raise ConfigError(f"Content-Length {length} must be 1..{MAX_BODY_BYTES}")
            body = json.loads(self.rfile.read(length))
            if not isinstance(body, dict):
                raise ConfigError("the body must be a JSON object")
            call = CloudCall.from_body(body)
        except (ValueError, ConfigError) as exc:
            self._error(400, f"bad request body: {exc}", "invalid_request_error")
            return
        received = time.monotonic()
        if body.get("stream"):
            self._stream(call, received)
            return
        try:
            reply = self.server.instance.answer(call)
        except LLMUnavailableError as exc:
            self._error(503, f"the cloud model is unavailable: {exc}", "server_error")
            return
        except (LLMError, ConfigError) as exc:
            self._error(502, f"the cloud model failed: {exc}", "server_error")
            return
        r = reply.response
        self._json(200, {
            "object": "chat.completion", "model": r.model,
            "choices": [{"index": 0, "finish_reason": r.finish_reason or "stop",
                         "message": {"role": "assistant", "content": r.text}}],
            "usage": {"prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens},
            "netgpt_cloud": _cloud_fields(reply, received, time.monotonic())})

    def _stream(self, call: CloudCall, received: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        replies: list[CloudReply] = []
        replied: float | None = None

        def event(payload: dict[str, Any] | str) -> None:
            text = payload if isinstance(payload, str) else json.dumps(payload)
            self.wfile.write(f"data: {text}\n\n".encode())
            self.wfile.flush()

        try:
            for piece in self.server.instance.stream(call, replies.append):
                replied = replied or time.monotonic()
                event({"object": "chat.completion.chunk",
                       "choices": [{"index": 0, "delta": {"content": piece}}]})
        except (LLMError, ConfigError) as exc:
            event({"error": {"message": f"the cloud model failed: {exc}", "type": "server_error",
                             "param": None}})
            return
        reply = replies[0]
        event({"object": "chat.completion.chunk", "model": reply.response.model,
               "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
               "netgpt_cloud": _cloud_fields(reply, received, replied or time.monotonic())})
        event("[DONE]")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, listener: socket.socket, instance: CloudInstance) -> None:
        super().__init__(listener.getsockname()[:2], _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = listener
        self.instance = instance


class CloudHttpServer:
    """Serves ``instance`` on ``listener`` (bound and listening) in a thread until :meth:`stop`."""

    def __init__(self, instance: CloudInstance, listener: socket.socket) -> None:
        self.instance = instance
        self._server = _Server(listener, instance)
        self.address: tuple[str, int] = listener.getsockname()[:2]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.2},
                                        name=f"cloud-instance:{self.address[1]}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
