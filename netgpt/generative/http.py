"""The generative service's HTTP front: an OpenAI-compatible chat endpoint.

``POST /v1/chat/completions`` takes the OpenAI body (``model``, ``messages``, ``stream``,
``max_tokens``) and answers the last user message for a user at a site. The site is the
``X-NetGPT-Site`` header, or the body's ``site``, or the model name's suffix
(``netgpt@New York``); ``netgpt_mode`` picks ``edge+cloud`` (default) or ``cloud-only``.
Answers are ``chat.completion`` objects (or ``chat.completion.chunk`` server-sent events ending
in ``data: [DONE]`` with ``stream``), with ``usage`` and a ``netgpt`` object: site, mode, edge,
network and cloud milliseconds, bytes over the WAN, the local services used, the completed
prompt. ``GET /v1/models`` lists one model per served site; ``GET /health`` says it is up.
``GET /v1/netgpt/placement`` says where the instances run; ``POST`` it with ``{"site",
"device"}`` to move a site's edge instance (the platform's placement repair does), answered with
what the move cost.

Errors are OpenAI-shaped ``{"error": {"message", "type", "param"}}``: 400 for a bad request
(the message names the bad value), 502 when the network drops the edge-cloud exchange, 503
when the cloud model is down.
"""

# No ``from __future__ import annotations``: FastAPI reads the route annotations at run time.
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Literal

from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from netgpt.errors import ConfigError, LLMError, LLMUnavailableError
from netgpt.generative.service import GenerativeService, ServiceAnswer
from netgpt.sim_networks.flow_timing import FlowDroppedError

__all__ = ["MODEL_PREFIX", "create_service_app"]

MODEL_PREFIX = "netgpt"


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | None = None


class ChatCompletionBody(BaseModel):
    """The part of OpenAI's chat-completions body the service reads (the rest is ignored)."""

    model_config = ConfigDict(extra="ignore")
    model: str = MODEL_PREFIX
    messages: list[_Message] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    site: str | None = None
    netgpt_mode: Literal["edge+cloud", "cloud-only"] = "edge+cloud"


def _error(status: int, message: str, kind: str, param: str | None = None) -> JSONResponse:
    return JSONResponse(status_code=status,
                        content={"error": {"message": message, "type": kind, "param": param}})


def _metrics(answer: ServiceAnswer) -> dict[str, Any]:
    s = answer.sample
    return {"site": s.site, "mode": s.mode, "request_id": s.request_id,
            "edge_device": s.edge_device, "cloud_device": s.cloud_device,
            "edge_ms": round(s.edge_ms, 3), "network_ms": round(s.network_ms, 3),
            "cloud_ms": round(s.cloud_ms, 3), "total_ms": round(s.total_ms, 3),
            "wan_bytes_up": s.wan_bytes_up, "wan_bytes_down": s.wan_bytes_down,
            "path": list(answer.timing.path), "services": list(answer.prompt.services),
            "completed_prompt": answer.prompt.text, "edge_adapter": answer.prompt.adapter,
            "edge_confidence": round(answer.prompt.confidence, 4)}


def _site_of(body: ChatCompletionBody, header: str | None) -> str:
    if header:
        return header
    if body.site:
        return body.site
    _, at, site = body.model.partition("@")
    if at and site:
        return site
    raise ConfigError("no site given: send the X-NetGPT-Site header, a 'site' field, or the "
                      f"model '{MODEL_PREFIX}@SITE' (see GET /v1/models)")


def _request_text(body: ChatCompletionBody) -> str:
    users = [m.content for m in body.messages if m.role == "user" and m.content]
    if not users:
        raise ConfigError("messages hold no user message with content; the service answers "
                          "the last user message")
    return users[-1]


class PlacementBody(BaseModel):
    """Move one site's edge instance."""

    model_config = ConfigDict(extra="forbid")
    site: str
    device: str


def create_service_app(service: GenerativeService,
                       on_move: Callable[[], None] | None = None) -> FastAPI:
    """The HTTP app over ``service`` (routes in the module docstring).

    ``on_move`` runs after an edge instance moved (the deployment record follows).
    """
    app = FastAPI(title="NetGPT generative service", version="1")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(400, f"{where or 'body'}: {first.get('msg', 'invalid request')}",
                      "invalid_request_error", where or None)

    @app.get("/health")
    def health() -> dict[str, Any]:
        cloud = service.leg.health()
        return {"ok": cloud.ok, "sites": service.sites, "cloud": cloud.detail,
                "cloud_device": service.placement.cloud_device}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        now = int(time.time())
        return {"object": "list",
                "data": [{"id": f"{MODEL_PREFIX}@{site}", "object": "model", "created": now,
                          "owned_by": "netgpt"} for site in service.sites]}

    @app.get("/v1/netgpt/placement")
    def placement() -> dict[str, Any]:
        return service.placement.model_dump(mode="json")

    @app.post("/v1/netgpt/placement", response_model=None)
    def move(body: PlacementBody) -> JSONResponse:
        try:
            moved = service.move_edge(body.site, body.device)
        except ConfigError as exc:
            return _error(400, str(exc), "invalid_request_error")
        except FlowDroppedError as exc:
            return _error(502, f"the edge's files cannot reach {body.device}: {exc}",
                          "network_error")
        if on_move is not None:
            on_move()
        return JSONResponse({"site": moved.site, "old_device": moved.old_device,
                             "new_device": moved.new_device, "bytes_moved": moved.bytes_moved,
                             "transfer_ms": moved.transfer_ms,
                             "placement": service.placement.model_dump(mode="json")})

    @app.post("/v1/chat/completions", response_model=None)
    def chat(body: ChatCompletionBody,
             x_netgpt_site: str | None = Header(default=None)) -> JSONResponse | StreamingResponse:
        try:
            site = _site_of(body, x_netgpt_site)
            text = _request_text(body)
            if body.stream:
                stream = service.stream(site, text, mode=body.netgpt_mode,
                                        max_tokens=body.max_tokens)
            else:
                answer = service.ask(site, text, mode=body.netgpt_mode, max_tokens=body.max_tokens)
        except ConfigError as exc:
            return _error(400, str(exc), "invalid_request_error")
        except FlowDroppedError as exc:
            return _error(502, f"the network dropped the edge-cloud exchange: {exc}",
                          "network_error")
        except LLMUnavailableError as exc:
            return _error(503, f"the cloud model is unavailable: {exc}", "server_error")
        except LLMError as exc:
            return _error(502, f"the cloud model failed: {exc}", "server_error")
        created = int(time.time())
        if not body.stream:
            s = answer.sample
            return JSONResponse({
                "id": f"chatcmpl-{s.request_id}", "object": "chat.completion",
                "created": created, "model": f"{MODEL_PREFIX}@{site}",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": answer.text}}],
                "usage": {"prompt_tokens": s.prompt_tokens,
                          "completion_tokens": s.completion_tokens,
                          "total_tokens": s.prompt_tokens + s.completion_tokens},
                "netgpt": _metrics(answer)})
        cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"

        def chunk(delta: dict[str, Any], finish: str | None, **extra: Any) -> str:
            payload = {"id": cid, "object": "chat.completion.chunk", "created": created,
                       "model": f"{MODEL_PREFIX}@{site}",
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                       **extra}
            return f"data: {json.dumps(payload)}\n\n"

        def events() -> Iterator[str]:
            yield chunk({"role": "assistant"}, None)
            try:
                for piece in stream:
                    yield chunk({"content": piece}, None)
            except (FlowDroppedError, LLMError) as exc:
                err = {"error": {"message": str(exc), "type": "server_error", "param": None}}
                yield f"data: {json.dumps(err)}\n\n"
                return
            answer = stream.answer
            assert answer is not None
            yield chunk({}, "stop", netgpt=_metrics(answer))
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app
