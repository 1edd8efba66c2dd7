"""The ``openai_compat`` backend: any OpenAI-compatible chat server over HTTP (vLLM first).

Requests go to ``{base_url}/chat/completions`` with ``httpx``. A schema-constrained request
carries the schema the way the server expects (:attr:`OpenAICompatSettings.structured`):

* ``response_format`` (default): OpenAI's ``{"type": "json_schema", "json_schema": {"name",
  "schema", "strict"}}``; vLLM turns it into its structured-output (guided decoding) request.
* ``structured_outputs``: vLLM's own field, ``{"structured_outputs": {"json": schema}}`` (what
  replaced ``guided_json``, removed in vLLM 0.12).

An adapter is chosen the way vLLM's multi-LoRA serving expects: the request's ``model`` is the
adapter's ``--lora-modules`` name. Connection failures and HTTP 429/502/503/504 are retried
``retries`` times with exponential back-off; a timeout is not retried (the caller's latency
budget is spent). Every library error is translated: refused or dropped connections ->
:class:`~netgpt.errors.LLMUnavailableError`, no answer within ``timeout_s`` ->
:class:`~netgpt.errors.LLMTimeoutError`, HTTP errors -> :class:`~netgpt.errors.LLMRequestError`,
a body that is not a chat completion -> :class:`~netgpt.errors.LLMOutputError`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from netgpt.cloud_models.base import ChatRequest, ChatResponse, HealthReport
from netgpt.errors import (
    LLMOutputError,
    LLMRequestError,
    LLMTimeoutError,
    LLMUnavailableError,
)

__all__ = ["OpenAICompatModel", "OpenAICompatSettings"]

_BACKEND = "openai_compat"
_RETRY_STATUS = frozenset({429, 502, 503, 504})


class OpenAICompatSettings(BaseModel):
    """Where the server is and how to talk to it. Validated on construction."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = Field(default="netgpt-intent", min_length=1)
    api_key: str | None = None
    timeout_s: float = Field(default=30.0, gt=0, le=3600)
    connect_timeout_s: float = Field(default=3.0, gt=0, le=600)
    retries: int = Field(default=2, ge=0, le=10)
    backoff_s: float = Field(default=0.25, ge=0, le=60)
    structured: Literal["response_format", "structured_outputs"] = "response_format"

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        url = httpx.URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"base_url {value!r} must be http(s)://HOST[:PORT]/v1")
        return value.rstrip("/")


class OpenAICompatModel:
    """A :class:`~netgpt.cloud_models.base.LanguageModel` talking to an OpenAI-compatible server."""

    def __init__(self, settings: OpenAICompatSettings | None = None) -> None:
        self.settings = settings or OpenAICompatSettings()
        headers = {"Accept": "application/json"}
        if self.settings.api_key:
            headers["Authorization"] = f"Bearer {self.settings.api_key}"
        self._client = httpx.Client(
            base_url=self.settings.base_url,
            headers=headers,
            timeout=httpx.Timeout(self.settings.timeout_s, connect=self.settings.connect_timeout_s),
        )

    @property
    def backend(self) -> str:
        """``openai_compat``."""
        return _BACKEND

    @property
    def model(self) -> str:
        """The served model's name."""
        return self.settings.model

    # -- requests ---------------------------------------------------------------------------

    def _body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.adapter or self.settings.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": stream,
        }
        if request.stop:
            body["stop"] = list(request.stop)
        if request.logprobs and not stream:
            body["logprobs"] = True
        if request.json_schema is not None:
            schema = dict(request.json_schema)
            if self.settings.structured == "structured_outputs":
                body["structured_outputs"] = {"json": schema}
            else:
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": request.schema_name, "schema": schema,
                                    "strict": True},
                }
        return body

    def _timeout(self, request: ChatRequest) -> httpx.Timeout:
        read = request.timeout_s or self.settings.timeout_s
        return httpx.Timeout(read, connect=min(self.settings.connect_timeout_s, read))

    def _where(self) -> str:
        return f"{self.settings.base_url}/chat/completions"

    def _unavailable(self, exc: Exception) -> LLMUnavailableError:
        return LLMUnavailableError(
            f"cannot reach the model server at {self.settings.base_url} ({type(exc).__name__}: "
            f"{exc}); is it running? ('netgpt llm status'; start it with 'netgpt llm serve')",
            backend=_BACKEND,
        )

    def _timed_out(self, exc: Exception, timeout: httpx.Timeout) -> LLMTimeoutError:
        phase = "connecting" if isinstance(exc, httpx.ConnectTimeout) else "waiting for the answer"
        limit = timeout.connect if isinstance(exc, httpx.ConnectTimeout) else timeout.read
        return LLMTimeoutError(
            f"no answer from {self._where()} within {limit:g} s ({phase}); the server is busy or "
            "stalled: raise timeout_s or check 'netgpt llm status'",
            backend=_BACKEND,
        )

    def _refused(self, response: httpx.Response) -> LLMRequestError:
        try:
            detail = response.json()
            detail = detail.get("error", detail) if isinstance(detail, dict) else detail
            if isinstance(detail, dict):
                detail = detail.get("message", detail)
        except ValueError:
            detail = response.text[:300]
        hint = ""
        if response.status_code == 404:
            hint = (f"; is {self.settings.model!r} (or the adapter) served there? "
                    "'netgpt llm status' lists what is")
        elif response.status_code in (401, 403):
            hint = "; check api_key"
        return LLMRequestError(
            f"the server refused the request: HTTP {response.status_code}: {detail}{hint}",
            backend=_BACKEND, status=response.status_code,
        )

    def _post(self, body: dict[str, Any], timeout: httpx.Timeout) -> dict[str, Any]:
        attempts = self.settings.retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._client.post("/chat/completions", json=body, timeout=timeout)
            except httpx.TimeoutException as exc:
                raise self._timed_out(exc, timeout) from exc
            except httpx.TransportError as exc:  # refused, reset, closed mid-answer
                if last:
                    raise self._unavailable(exc) from exc
                time.sleep(self.settings.backoff_s * 2**attempt)
                continue
            if response.status_code in _RETRY_STATUS and not last:
                time.sleep(self.settings.backoff_s * 2**attempt)
                continue
            if response.status_code >= 400:
                raise self._refused(response)
            try:
                data = response.json()
            except ValueError as exc:
                raise LLMOutputError(
                    f"the server's answer is not JSON: {response.text[:200]!r}", backend=_BACKEND,
                    output=response.text[:2000],
                ) from exc
            if not isinstance(data, dict):
                raise LLMOutputError(f"the server's answer is not a chat completion: {data!r}",
                                     backend=_BACKEND, output=str(data)[:2000])
            return data
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def chat(self, request: ChatRequest) -> ChatResponse:
        """Send ``request``; see :meth:`LanguageModel.chat <.base.LanguageModel.chat>`."""
        start = time.perf_counter()
        data = self._post(self._body(request, stream=False), self._timeout(request))
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise LLMOutputError(
                f"the server's answer has no choices[0].message.content: {str(data)[:300]}",
                backend=_BACKEND, output=json.dumps(data)[:2000],
            ) from exc
        if not isinstance(text, str):
            raise LLMOutputError("the server's answer holds no text (content is null)",
                                 backend=_BACKEND, output=json.dumps(data)[:2000])
        usage = data.get("usage") or {}
        return ChatResponse(
            text=text,
            backend=_BACKEND,
            model=str(data.get("model") or body_model(request, self.settings.model)),
            adapter=request.adapter,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason=str(choice.get("finish_reason") or ""),
            latency_s=time.perf_counter() - start,
            mean_logprob=_mean_logprob(choice.get("logprobs")),
        )

    def stream(self, request: ChatRequest) -> Iterator[str]:
        """Yield text pieces from the server's event stream as they arrive."""
        timeout = self._timeout(request)
        body = self._body(request, stream=True)
        try:
            with self._client.stream("POST", "/chat/completions", json=body,
                                     timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._refused(response)
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        return
                    try:
                        event = json.loads(payload)
                        delta = event["choices"][0].get("delta", {}).get("content")
                    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
                        raise LLMOutputError(f"bad event in the server's stream: {payload[:200]!r}",
                                             backend=_BACKEND, output=payload[:2000]) from exc
                    if delta:
                        yield delta
        except httpx.TimeoutException as exc:
            raise self._timed_out(exc, timeout) from exc
        except httpx.TransportError as exc:
            raise self._unavailable(exc) from exc

    def health(self) -> HealthReport:
        """Ask ``/health`` (vLLM) and ``/models``; never raises."""
        start = time.perf_counter()
        root = self.settings.base_url.removesuffix("/v1")
        timeout = httpx.Timeout(min(5.0, self.settings.timeout_s),
                                connect=self.settings.connect_timeout_s)
        try:
            health = self._client.get(f"{root}/health", timeout=timeout)
            models = self._client.get("/models", timeout=timeout)
        except httpx.HTTPError as exc:
            return HealthReport(ok=False, backend=_BACKEND, model=self.model,
                                detail=str(self._unavailable(exc)),
                                latency_ms=(time.perf_counter() - start) * 1000)
        elapsed = (time.perf_counter() - start) * 1000
        if health.status_code not in (200, 404) or models.status_code != 200:
            return HealthReport(ok=False, backend=_BACKEND, model=self.model, latency_ms=elapsed,
                                detail=f"/health HTTP {health.status_code}, /models HTTP "
                                       f"{models.status_code}")
        try:
            ids = [str(m["id"]) for m in models.json().get("data", [])]
        except (ValueError, KeyError, TypeError, AttributeError):
            ids = []
        if self.model not in ids:
            return HealthReport(ok=False, backend=_BACKEND, model=self.model, latency_ms=elapsed,
                                detail=f"the server is up but does not serve {self.model!r} "
                                       f"(it serves {ids})", adapters=tuple(ids))
        return HealthReport(ok=True, backend=_BACKEND, model=self.model, latency_ms=elapsed,
                            detail=f"serving {ids} at {self.settings.base_url}",
                            adapters=tuple(i for i in ids if i != self.model))

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def __enter__(self) -> OpenAICompatModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def body_model(request: ChatRequest, default: str) -> str:
    """The model name a request is sent to: its adapter, else the server's model."""
    return request.adapter or default


def _mean_logprob(logprobs: Any) -> float | None:
    if not isinstance(logprobs, dict):
        return None
    content = logprobs.get("content")
    if not isinstance(content, list) or not content:
        return None
    values = [float(t["logprob"]) for t in content
              if isinstance(t, dict) and isinstance(t.get("logprob"), int | float)
              and t["logprob"] > float("-inf")]
    return sum(values) / len(values) if values else None

