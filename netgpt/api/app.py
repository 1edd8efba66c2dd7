"""The REST API, the console and ``/metrics`` over one :class:`ControlService`.

Every route but ``/api/health``, ``/api/login`` and the console's static files needs a caller:
``Authorization: Bearer TOKEN`` or the session cookie ``/api/login`` sets. Roles: viewer reads,
operator submits and withdraws, approver approves or rejects others' changes, admin replaces
the policies. Errors are JSON ``{"detail": ...}`` with a 4xx status that says whose fault it is:
400 bad value, 401 who are you, 403 not allowed, 404 unknown id, 409 state does not allow it,
413 body too large, 422 malformed body, 502 a device failed, 503 the model server is down.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the route functions' annotations
# at run time, and the role dependencies they name are local to create_app.
import asyncio
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from netgpt.api.auth import ApiUser, Role, SessionBook, TokenBook
from netgpt.api.events import LiveEvent
from netgpt.api.models import (
    AuditView,
    DeviceView,
    ErrorView,
    ForecastView,
    IntentRequest,
    LinkView,
    LoginRequest,
    PendingView,
    RunView,
    TelemetryView,
    TopologyView,
    UserView,
)
from netgpt.api.service import ControlService, ForbiddenError, UnknownItemError
from netgpt.errors import DeviceError, LifecycleError, LLMError, NetGPTError
from netgpt.intents.model import Intent
from netgpt.policies.base import PolicySet

__all__ = ["MAX_BODY_BYTES", "SESSION_COOKIE", "create_app"]

SESSION_COOKIE = "netgpt_session"
MAX_BODY_BYTES = 64 * 1024


class _Unauthenticated(NetGPTError):
    """No valid token or session (401)."""


class _BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, whether or not they say their length.

    A body without ``Content-Length`` (chunked) is read up to the limit first, then replayed.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                await self._refuse(send)
                return
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        body = (b'{"detail":"request body over %d bytes; send less (an intent is at most 2000 '
                b'characters)"}' % self.max_bytes)
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


_ERRORS = {
    400: "A bad value or a server set up without what this needs; the detail says which",
    401: "No valid token or session: send 'Authorization: Bearer TOKEN' or log in",
    403: "The caller's role, or the four-eyes rule, does not allow this",
    404: "No such id or link",
    409: "The intent's state does not allow this",
    413: f"The request body is over {MAX_BODY_BYTES} bytes",
    502: "A device failed or did not answer; the detail names it",
    503: "The model server is down or too slow",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations of the error statuses a route answers (422 FastAPI declares)."""
    return {code: {"model": ErrorView, "description": _ERRORS[code]} for code in codes}


def _content(media_type: str, description: str, **schema: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declaration of a 200 that is not JSON."""
    return {200: {"description": description,
                  "content": {media_type: {"schema": {"type": "string", **schema}}}}}


_EVENT_STREAM = {
    "description": "Server-sent events, each a kind and its JSON data",
    "content": {"text/event-stream": {"itemSchema": {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"enum": ["hello", "intent", "run", "watch", "links", "policy", "error"]},
            "data": {"type": "string", "contentMediaType": "application/json"},
        },
    }}},
}


def _status(exc: NetGPTError) -> int:
    if isinstance(exc, _Unauthenticated):
        return 401
    if isinstance(exc, ForbiddenError):
        return 403
    if isinstance(exc, UnknownItemError):
        return 404
    if isinstance(exc, DeviceError):
        return 502
    if isinstance(exc, LLMError):
        return 503
    if isinstance(exc, LifecycleError):
        return 409
    return 400


def create_app(service: ControlService, tokens: TokenBook, *,
               sessions: SessionBook | None = None, secure_cookie: bool = False) -> FastAPI:
    """The ASGI app. ``service`` must be started by the caller (``netgpt serve`` does)."""
    book = sessions or SessionBook()
    # what the spec says about authentication; caller() below decides
    bearer = HTTPBearer(auto_error=False, scheme_name="token",
                        description="An API token: 'Authorization: Bearer TOKEN'")
    session = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, scheme_name="session",
                           description="The console's session cookie, set by POST /api/login")
    app = FastAPI(
        title="NetGPT",
        version="0.1.0",
        description="Intent-based network management: intents, approvals, topology, telemetry, "
        "forecasts, audit. Authenticate with 'Authorization: Bearer TOKEN'.",
    )

    @app.exception_handler(NetGPTError)
    async def _netgpt_error(request: Request, exc: NetGPTError) -> JSONResponse:
        status = _status(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 405:  # Allow: every method of the path, not only one route's
            allowed = sorted({
                method for route in app.router.routes
                if route.matches(request.scope)[0] is Match.PARTIAL
                for method in getattr(route, "methods", None) or ()})
            exc.headers = {**(exc.headers or {}), "Allow": ", ".join(allowed)}
        return await http_exception_handler(request, exc)

    def caller(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        sid: Annotated[str | None, Depends(session)],
    ) -> ApiUser:
        if request.headers.get("authorization"):  # a header that is there decides, cookie or not
            user = tokens.user(credentials.credentials) if credentials is not None else None
            if user is None:
                raise _Unauthenticated("the bearer token is not valid; ask an admin for one")
            return user
        user = book.user(sid) if sid else None
        if user is None:
            raise _Unauthenticated(
                "log in: send 'Authorization: Bearer TOKEN' or POST /api/login with the token"
            )
        return user

    def role(needed: Role) -> Callable[[ApiUser], ApiUser]:
        def check(user: Annotated[ApiUser, Depends(caller)]) -> ApiUser:
            if not user.may(needed):
                raise ForbiddenError(
                    f"{user.name} is a {user.role.name.lower()}; this needs the "
                    f"{needed.name.lower()} role or above"
                )
            return user

        return check

    Viewer = Annotated[ApiUser, Depends(role(Role.VIEWER))]
    Operator = Annotated[ApiUser, Depends(role(Role.OPERATOR))]
    Approver = Annotated[ApiUser, Depends(role(Role.APPROVER))]
    Admin = Annotated[ApiUser, Depends(role(Role.ADMIN))]
    audit = service.platform.audit

    # -- session ----------------------------------------------------------------------------

    @app.get("/api/health", tags=["session"])
    def health() -> dict[str, str]:
        """Liveness: no authentication."""
        return {"status": "ok"}

    @app.post("/api/login", tags=["session"], responses=_errors(400, 401, 413))
    def login(body: LoginRequest) -> JSONResponse:
        """Trade a token for an HttpOnly session cookie (what the console uses)."""
        user = tokens.user(body.token)
        if user is None:
            audit.append(actor="unknown", intent_id="-", step="login", outcome="refused")
            raise _Unauthenticated("that token is not valid; ask an admin for one")
        audit.append(actor=user.name, intent_id="-", step="login", outcome="ok")
        response = JSONResponse(UserView(name=user.name, role=_role(user)).model_dump())
        response.set_cookie(SESSION_COOKIE, book.open(user), httponly=True, samesite="strict",
                            secure=secure_cookie, max_age=int(book.ttl_s))
        return response

    @app.post("/api/logout", tags=["session"])
    def logout(request: Request) -> JSONResponse:
        """End the console session."""
        sid = request.cookies.get(SESSION_COOKIE)
        if sid:
            book.close(sid)
        response = JSONResponse({"status": "logged out"})
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.get("/api/me", tags=["session"], responses=_errors(401))
    def me(user: Viewer) -> UserView:
        """Who the caller is."""
        return UserView(name=user.name, role=_role(user))

    # -- intents ----------------------------------------------------------------------------

    @app.post("/api/intents", tags=["intents"],
              responses=_errors(400, 401, 403, 413, 502, 503))
    def submit(body: IntentRequest, user: Operator) -> RunView:
        """Submit an intent in words (``dry_run``: plan and verify only).

        A change that policy says a person must approve comes back ``awaiting_approval``;
        another approver decides.
        """
        return service.submit(user, body.text, dry_run=body.dry_run)

    @app.get("/api/intents", tags=["intents"], responses=_errors(401))
    def intents(user: Viewer) -> list[Intent]:
        """Every intent, newest first, with lifecycle state and fulfilment report."""
        return service.intents()

    @app.get("/api/intents/{intent_id}", tags=["intents"], responses=_errors(401, 404))
    def intent(intent_id: str, user: Viewer) -> Intent:
        """One intent."""
        return service.intent(intent_id)

    @app.post("/api/intents/{intent_id}/withdraw", tags=["intents"],
              responses=_errors(400, 401, 403, 404, 409, 502))
    def withdraw(intent_id: str, user: Operator) -> Intent:
        """Revert what the intent changed (all or nothing) and mark it withdrawn."""
        return service.withdraw(user, intent_id)

    # -- approvals --------------------------------------------------------------------------

    @app.get("/api/approvals", tags=["approvals"], responses=_errors(401))
    def approvals(user: Viewer) -> list[PendingView]:
        """Changes waiting for an approver, with per-device diffs."""
        return [PendingView(run_id=p.run_id, text=p.text, submitter=p.submitter, why=p.why,
                            diffs=p.diffs) for p in service.approvals()]

    @app.post("/api/approvals/{run_id}/approve", tags=["approvals"],
              responses=_errors(400, 401, 403, 404, 409, 502, 503))
    def approve(run_id: str, user: Approver) -> RunView:
        """Approve someone else's change: the run resumes and applies it."""
        return service.decide(user, run_id, "approve")

    @app.post("/api/approvals/{run_id}/reject", tags=["approvals"],
              responses=_errors(400, 401, 403, 404, 409))
    def reject(run_id: str, user: Approver) -> RunView:
        """Reject a pending change: nothing is applied."""
        return service.decide(user, run_id, "reject")

    # -- network ----------------------------------------------------------------------------

    @app.get("/api/topology", tags=["network"], responses=_errors(401))
    def topology(user: Viewer) -> TopologyView:
        """Devices and links with live utilization (for the map)."""
        return service.topology()

    @app.get("/api/devices", tags=["network"], responses=_errors(401))
    def devices(user: Viewer) -> list[DeviceView]:
        """Devices, their sites and whether they answer SNMP."""
        return service.devices()

    @app.get("/api/links", tags=["network"], responses=_errors(401))
    def links(user: Viewer) -> list[LinkView]:
        """Links with measured utilization in each direction."""
        return service.links()

    Rows = Annotated[int, Query(ge=1, le=10_000)]
    Horizon = Annotated[int, Query(ge=1, le=288)]

    @app.get("/api/links/{source}/{target}/telemetry", tags=["telemetry"],
             responses=_errors(400, 401, 404))
    def telemetry(source: str, target: str, user: Viewer, rows: Rows = 288) -> TelemetryView:
        """Egress utilization of ``source -> target`` per polling round."""
        return service.telemetry(source, target, rows)

    @app.get("/api/links/{source}/{target}/forecast", tags=["telemetry"],
             responses=_errors(400, 401, 404))
    def forecast(
        source: str, target: str, user: Viewer, horizon: Horizon = 12,
        threshold: Annotated[float | None, Query(gt=0, le=1)] = None,
    ) -> ForecastView:
        """Quantile forecast of the link's utilization (edge model) over ``horizon`` polls."""
        return service.forecast(source, target, horizon, threshold)

    @app.get("/api/links/{source}/{target}/forecast.png", tags=["telemetry"],
             response_class=Response,
             responses={**_content("image/png", "The chart", format="binary"),
                        **_errors(400, 401, 404)})
    def forecast_png(source: str, target: str, user: Viewer, horizon: Horizon = 12) -> Response:
        """History, forecast and 10-90% band as a PNG."""
        return Response(service.forecast_png(source, target, horizon), media_type="image/png")

    # -- audit, policies, events, metrics ---------------------------------------------------

    @app.get("/api/audit", tags=["audit"], responses=_errors(401))
    def audit_log(
        user: Viewer,
        intent_id: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 200,
    ) -> list[AuditView]:
        """The newest audit records, oldest first (of one intent's runs with ``intent_id``)."""
        return [AuditView(seq=r.seq, at=r.at, actor=r.actor, intent_id=r.intent_id,
                          step=r.step, outcome=r.outcome, detail=r.detail, hash=r.hash)
                for r in service.audit(intent_id, limit)]

    @app.get("/api/audit/verify", tags=["audit"], responses=_errors(401))
    def audit_verify(user: Viewer) -> dict[str, Any]:
        """Check the audit log's hash chain."""
        ok, detail = audit.verify()
        return {"ok": ok, "detail": detail}

    @app.get("/api/policies", tags=["policies"], responses=_errors(401))
    def policies(user: Viewer) -> PolicySet:
        """The guardrails every change is checked against."""
        return service.platform.policies

    @app.put("/api/policies", tags=["policies"], responses=_errors(400, 401, 403, 413))
    def set_policies(body: PolicySet, user: Admin) -> PolicySet:
        """Replace the guardrails (admin only; audited)."""
        return service.set_policies(user, body)

    @app.get("/api/events", tags=["events"], response_class=StreamingResponse,
             responses={200: _EVENT_STREAM, **_errors(401)})
    async def events(request: Request, user: Viewer) -> StreamingResponse:
        """Server-sent events of live state changes.

        Kinds: ``hello`` (first, names the caller), ``intent`` (state changed), ``run``,
        ``watch`` (closed loop), ``links`` (utilization, every tick), ``policy``, ``error`` (the
        background loop could not reach a device).
        """

        async def stream() -> AsyncIterator[str]:
            key, queue = service.bus.subscribe()
            try:
                yield LiveEvent("hello", {"user": user.name}).encode()
                while not await request.is_disconnected():
                    try:
                        event = await asyncio.wait_for(queue.get(), timeout=15)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    yield event.encode()
            finally:
                service.bus.unsubscribe(key)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    @app.get("/metrics", tags=["metrics"], response_class=Response,
             responses={**_content("text/plain", "Prometheus text format"), **_errors(401)})
    def metrics(user: Viewer) -> Response:
        """Prometheus: intents by state, apply latency, device reachability, link utilization."""
        return Response(generate_latest(service.registry), media_type=CONTENT_TYPE_LATEST)

    # -- console ----------------------------------------------------------------------------

    console = resources.files("netgpt.api").joinpath("console")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(console.joinpath("index.html").read_text(encoding="utf-8"))

    @app.get("/console/{name}", include_in_schema=False)
    def console_file(name: str) -> Response:
        types = {"console.js": "text/javascript", "console.css": "text/css"}
        if name not in types:
            raise UnknownItemError(f"no console file {name!r}")
        return Response(console.joinpath(name).read_text(encoding="utf-8"),
                         media_type=types[name])

    app.add_middleware(_BodyLimit, max_bytes=MAX_BODY_BYTES)
    return app


def _role(user: ApiUser) -> Any:
    return user.role.name.lower()
