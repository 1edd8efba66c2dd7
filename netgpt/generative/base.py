"""The typed things the generative service passes between its parts, and its one protocol.

A user at a site asks in a few words; the site's **edge** instance completes the request with
local context (:class:`SiteContext`) into a :class:`CompletedPrompt`; the prompt crosses the
WAN to the **cloud** instance, whose language model answers. Each request leaves one
:class:`~netgpt.telemetry.base.ServiceSample` (edge, network and cloud time, tokens,
bytes over the WAN).

* :class:`PromptCompleter` is the edge stage's contract (:mod:`netgpt.edge_models.prompt_model`
  keeps it with GPT-2 and a LoRA adapter per site).
* Everything here is plain data: no I/O, no model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from netgpt.errors import ConfigError

__all__ = [
    "CompletedPrompt",
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
