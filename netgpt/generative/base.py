"""The typed things the generative service passes between its parts, and its one protocol.

A user at a site asks in a few words; the site's **edge** instance completes the request with
local context (:class:`SiteContext`) into a :class:`CompletedPrompt`; the prompt crosses the
WAN to the **cloud** instance, whose language model answers. Each request leaves one
:class:`~netgpt.telemetry.base.ServiceSample` (edge, network and cloud time, tokens,
bytes over the WAN).

* :class:`PromptCompleter` is the edge stage's contract (:mod:`netgpt.edge_models.prompt_model`
  keeps it with GPT-2 and a LoRA adapter per site).
* :class:`CloudLeg` is the edge-to-cloud leg's contract: it carries a :class:`CloudCall` from
  the edge instance's device to the cloud instance's and the :class:`CloudReply` back
  (:class:`~netgpt.generative.service.ModelledLeg` on the embedded network,
  :class:`~netgpt.generative.lab_leg.LabLeg` over real HTTP in the Mininet lab).
* Everything here is plain data: no I/O, no model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from netgpt.cloud_models.base import ChatResponse, HealthReport
from netgpt.errors import ConfigError
from netgpt.sim_networks.flow_timing import FlowTiming

__all__ = [
    "CloudCall",
    "CloudLeg",
    "CloudReply",
    "CompletedPrompt",
    "LegResult",
    "LocalService",
    "PromptCompleter",
    "ServiceMode",
    "SiteContext",
]

ServiceMode = Literal["edge+cloud", "cloud-only"]


@dataclass(frozen=True)
class LocalService:
    """Something near the user that the network knows about (a printer room, a video cache).

    ``name`` is unique within a site; ``kind`` is a general word (``printing``, ``video``);
    ``where`` says where it is in the operator's words; ``hops`` counts router hops from the
    user's attachment device; ``status`` is ``up``, ``degraded`` or ``down``.
    """

    name: str
    kind: str
    where: str
    hops: int = 0
    status: str = "up"

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ConfigError("a local service needs a non-empty name")
        if self.hops < 0:
            raise ConfigError(f"hops {self.hops} of local service {self.name!r} must be >= 0")
        if self.status not in ("up", "degraded", "down"):
            raise ConfigError(
                f"status {self.status!r} of local service {self.name!r} must be up, degraded "
                "or down"
            )


@dataclass(frozen=True)
class SiteContext:
    """What the edge at ``site`` knows when a user there asks.

    ``device`` is where the user attaches; ``local_time`` is ``HH:MM`` at the site and
    ``utc_offset_h`` its offset; ``services`` the local services in the order the site lists
    them; ``network`` short facts the network knows about the user's location ("uplink to core
    62% busy", "18 ms to the cloud").
    """

    site: str
    device: str
    local_time: str
    utc_offset_h: float = 0.0
    services: tuple[LocalService, ...] = ()
    network: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.site.strip():
            raise ConfigError("a site context needs a non-empty site name")
        hh, sep, mm = self.local_time.partition(":")
        if not (sep and hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60):
            raise ConfigError(f"local_time {self.local_time!r} must be HH:MM")
        names = [s.name for s in self.services]
        if len(set(names)) != len(names):
            raise ConfigError(f"local service names at site {self.site!r} repeat: {names}")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SiteContext:
        """The context :func:`dataclasses.asdict` wrote (as it crosses the WAN, cloud-only).

        Raises :class:`ConfigError` naming what is missing or wrong.
        """
        try:
            services = tuple(LocalService(**dict(s)) for s in raw.get("services", ()))
            return cls(site=str(raw["site"]), device=str(raw["device"]),
                       local_time=str(raw["local_time"]),
                       utc_offset_h=float(raw.get("utc_offset_h", 0.0)), services=services,
                       network=tuple(str(f) for f in raw.get("network", ())))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"not a site context ({type(exc).__name__}: {exc}); it needs "
                              "site, device and local_time") from None

    def service(self, name: str) -> LocalService:
        """The local service called ``name``; ConfigError naming the known ones otherwise."""
        for s in self.services:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.services) or "none"
        raise ConfigError(f"site {self.site!r} has no local service {name!r} (known: {known})")


@dataclass(frozen=True)
class CompletedPrompt:
    """The edge stage's output: the user's words completed with the local context they need.

    ``text`` is what is sent to the cloud model; ``services`` the local services it chose
    (names from the context, most relevant first); ``confidence`` in (0, 1]; ``adapter`` the
    site adapter used (``None``: the global model).
    """

    request: str
    text: str
    site: str
    services: tuple[str, ...] = ()
    model: str = ""
    adapter: str | None = None
    confidence: float = 1.0
    elapsed_s: float = 0.0


@runtime_checkable
class PromptCompleter(Protocol):
    """The edge stage: complete a user's request with the site's context.

    ``use_adapter=False`` answers with the global model even when the site has an adapter
    (the cloud-only comparison runs completion in the cloud, where site adapters do not live).
    Raises :class:`~netgpt.errors.ConfigError` for an empty or over-long request.
    """

    def complete(
        self, request: str, context: SiteContext, *, use_adapter: bool = True
    ) -> CompletedPrompt:
        """Return the completed prompt for ``request`` at ``context.site``."""
        ...


SYSTEM_PROMPT = (
    "You are NetGPT, the network's assistant. Answer the user's request in two or three "
    "sentences. Use the local context the request gives (site, local time, nearby services, "
    "network facts) and name the local service you recommend."
)
CLOUD_MODEL_NAME = "netgpt-cloud"


@dataclass(frozen=True)
class CloudCall:
    """What an edge instance sends the cloud instance for one request.

    ``edge+cloud``: ``prompt`` is the edge's completed prompt and only its text crosses the WAN.
    ``cloud-only``: the user's ``request`` and the site's whole ``context`` cross it, and the
    cloud completes them (with the global model). :meth:`body` is the OpenAI-shaped JSON body
    that crosses; :meth:`from_body` reads it back on the cloud side.
    """

    mode: ServiceMode
    request: str
    context: SiteContext | None = None
    prompt: CompletedPrompt | None = None
    max_tokens: int = 160

    def __post_init__(self) -> None:
        if self.mode == "edge+cloud" and self.prompt is None:
            raise ConfigError("an edge+cloud call carries the edge's completed prompt")
        if self.mode == "cloud-only" and self.context is None:
            raise ConfigError("a cloud-only call carries the site's context")
        if self.max_tokens < 1:
            raise ConfigError(f"max_tokens {self.max_tokens} must be at least 1")

    def body(self) -> dict[str, Any]:
        """The JSON body that crosses the WAN."""
        if self.prompt is not None and self.mode == "edge+cloud":
            return {"model": CLOUD_MODEL_NAME, "max_tokens": self.max_tokens,
                    "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                                 {"role": "user", "content": self.prompt.text}]}
        assert self.context is not None
        return {"model": CLOUD_MODEL_NAME, "max_tokens": self.max_tokens,
                "messages": [{"role": "user", "content": self.request}],
                "netgpt_context": asdict(self.context)}

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> CloudCall:
        """The call a cloud instance received; ConfigError naming what is wrong otherwise.

        A body with ``netgpt_context`` is a cloud-only call; without, the last user message is
        an edge's completed prompt (whose chosen services stay at the edge).
        """
        messages = body.get("messages")
        users = [m.get("content") for m in messages or () if isinstance(m, Mapping)
                 and m.get("role") == "user"]
        if not users or not isinstance(users[-1], str) or not users[-1].strip():
            raise ConfigError("the body has no user message: send 'messages' with a "
                              "{'role': 'user', 'content': ...} entry")
        max_tokens = body.get("max_tokens", 160)
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise ConfigError(f"max_tokens {max_tokens!r} must be a positive integer")
        raw = body.get("netgpt_context")
        if raw is not None:
            if not isinstance(raw, Mapping):
                raise ConfigError("netgpt_context must be an object (a site context)")
            return cls("cloud-only", users[-1], context=SiteContext.from_dict(raw),
                       max_tokens=max_tokens)
        text = users[-1]
        return cls("edge+cloud", text, prompt=CompletedPrompt(request=text, text=text, site=""),
                   max_tokens=max_tokens)


@dataclass(frozen=True)
class CloudReply:
    """The cloud instance's answer to a :class:`CloudCall`.

    ``prompt`` is the prompt the cloud completed (cloud-only), ``None`` for an edge's prompt;
    ``cloud_ms`` the time spent in the cloud instance (completion and generation).
    """

    response: ChatResponse
    cloud_ms: float
    prompt: CompletedPrompt | None = None


@dataclass(frozen=True)
class LegResult:
    """One request carried to the cloud and back: the reply, the network's share, the bytes.

    ``bytes_up`` / ``bytes_down`` count what crossed the WAN (HTTP headers included).
    """

    reply: CloudReply
    timing: FlowTiming
    bytes_up: int
    bytes_down: int


class CloudLeg(Protocol):
    """Carries calls between an edge instance's device and the cloud instance's device.

    Every method raises :class:`~netgpt.sim_networks.flow_timing.FlowDroppedError` when the
    network drops the exchange (nothing reaches the cloud when the request leg is dropped) and
    :class:`~netgpt.errors.LLMError` when the cloud model fails.
    """

    def chat(self, flow_id: str, edge_device: str, cloud_device: str, call: CloudCall, *,
             port: int) -> LegResult:
        """Carry ``call`` and its reply, in full."""
        ...

    def stream(self, flow_id: str, edge_device: str, cloud_device: str, call: CloudCall, *,
               port: int, done: Callable[[LegResult], None]) -> Iterator[str]:
        """Carry ``call``; yield the answer's pieces as they arrive; ``done`` gets the result."""
        ...

    def probe(self, flow_id: str, edge_device: str, cloud_device: str, *,
              port: int) -> FlowTiming:
        """A round trip to the cloud instance (what the edge tells users about the way)."""
        ...

    def transfer(self, flow_id: str, source_device: str, destination_device: str, *,
                 n_bytes: int, port: int) -> FlowTiming:
        """Copy ``n_bytes`` from one device to another (an edge instance moving)."""
        ...

    def user_leg(self, flow_id: str, user_device: str, edge_device: str, *, bytes_up: int,
                 bytes_down: int, port: int) -> FlowTiming:
        """A user's request to an edge instance away from the users' device, the answer back.

        ``bytes_up`` there, ``bytes_down`` back.
        """
        ...

    def health(self) -> HealthReport:
        """Whether the cloud instance's model is up."""
        ...

    def close(self) -> None:
        """Release what the leg holds (servers, sockets)."""
        ...
