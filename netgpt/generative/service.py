"""The generative service: a site's edge completes the request, the cloud answers, over the WAN.

:class:`GenerativeService` serves one request in one of two modes:

* ``edge+cloud`` (NetGPT): the site's edge instance completes the user's words with the site's
  context (:class:`~netgpt.generative.base.PromptCompleter`, the site's LoRA adapter); only the
  completed prompt crosses the WAN; the cloud model answers.
* ``cloud-only``: the user's words and the site's whole context cross the WAN; the cloud
  completes them with the global model (site adapters live at the edge) and answers.

The edge-cloud leg is a :class:`~netgpt.generative.base.CloudLeg`. On the embedded network it
is a :class:`ModelledLeg`: the cloud instance (:class:`~netgpt.generative.cloud.CloudInstance`)
runs in process and the exchange is timed by a :class:`WanPath` (:class:`EmbeddedWan`: the
network's live state through :mod:`netgpt.sim_networks.flow_timing`, the path the network
forwards the flow on, its delays, queues and losses), and the leg waits that long, so a client
measures what a user would. In the Mininet lab it is
:class:`~netgpt.generative.lab_leg.LabLeg`: real HTTP between the hosts' namespaces, across FRR
routers. Every request, failed ones too, becomes one
:class:`~netgpt.telemetry.base.ServiceSample` handed to ``record`` (the telemetry store).

Placement (:class:`~netgpt.intents.model.WorkloadPlacement`) says where each instance runs;
:meth:`GenerativeService.move_edge` moves a site's edge instance and says what the move cost.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import networkx as nx

from netgpt.cloud_models.base import ChatResponse, HealthReport
from netgpt.errors import ConfigError, LLMError
from netgpt.generative.base import (
    CloudCall,
    CloudLeg,
    CloudReply,
    CompletedPrompt,
    LegResult,
    PromptCompleter,
    ServiceMode,
    SiteContext,
)
from netgpt.generative.cloud import CloudInstance
from netgpt.intents.model import WorkloadPlacement
from netgpt.intents.placement import PlacementMove
from netgpt.sim_networks.flow_timing import (
    FlowDroppedError,
    FlowTiming,
    QueueModel,
    exchange_timing,
)
from netgpt.sim_networks.live import LiveNetwork
from netgpt.sim_networks.topology import Topology
from netgpt.telemetry.base import ServiceSample

__all__ = [
    "DEFAULT_WORKLOAD",
    "MAX_REQUEST_CHARS",
    "EmbeddedWan",
    "GenerativeService",
    "LocalWan",
    "ModelledLeg",
    "ServiceAnswer",
    "ServiceStream",
    "WanPath",
    "default_placement",
    "files_bytes",
]

DEFAULT_WORKLOAD = "generative"
MAX_REQUEST_CHARS = 2000
# What an HTTP/1.1 POST and its 200 answer add to the JSON bodies (request line, host, content
# type and length, keep-alive; status line, date, server, content type and length).
_REQUEST_HEADERS = (
    "POST /v1/chat/completions HTTP/1.1\r\nHost: cloud:8800\r\nContent-Type: application/json\r\n"
    "Content-Length: 00000\r\nConnection: keep-alive\r\nAuthorization: Bearer "
    + "x" * 40 + "\r\n\r\n"
)
_ANSWER_HEADERS = (
    "HTTP/1.1 200 OK\r\ndate: Sun, 22 Nov 2026 12:00:00 GMT\r\nserver: uvicorn\r\n"
    "content-type: application/json\r\ncontent-length: 00000\r\n\r\n"
)


class WanPath(Protocol):
    """Carries one exchange between an edge instance and the cloud instance."""

    def exchange(self, flow_id: str, edge_device: str, cloud_device: str, *, bytes_up: int,
                 bytes_down: int, port: int) -> FlowTiming:
        """Time the exchange; :class:`FlowDroppedError` when the network drops it."""
        ...


class LocalWan:
    """No network between the instances (everything on one host): the exchange takes no time."""

    def exchange(self, flow_id: str, edge_device: str, cloud_device: str, *, bytes_up: int,
                 bytes_down: int, port: int) -> FlowTiming:
        """A zero-time exchange."""
        return FlowTiming(0.0, 0.0, 0.0, 0.0, (edge_device, cloud_device), (), 0.0, 0)


class EmbeddedWan:
    """The exchange timed on the embedded network's live state (routing, ACLs, loads)."""

    def __init__(self, live: LiveNetwork, queue: QueueModel | None = None) -> None:
        self.live = live
        self.queue = queue or QueueModel()

    def exchange(self, flow_id: str, edge_device: str, cloud_device: str, *, bytes_up: int,
                 bytes_down: int, port: int) -> FlowTiming:
        """The flow's path, delays, queues and losses on the network as it is now."""
        return exchange_timing(self.live.twin(), self.live.report, edge_device, cloud_device,
                               flow_id=flow_id, bytes_up=bytes_up, bytes_down=bytes_down,
                               port=port, queue=self.queue)


def _addressable(topology: Topology, device: str) -> bool:
    return bool(topology.local_prefixes(device))


def default_placement(topology: Topology, *, workload: str = DEFAULT_WORKLOAD,
                      cloud_device: str | None = None, port: int = 8800) -> WorkloadPlacement:
    """Where the service runs by default: the cloud in the server farm, an edge at every site.

    The cloud instance goes to the device of a group of kind ``servers``, or else to the device
    nearest, by link delay, to all others; each site's edge to its best-connected device. Only
    devices with local prefixes can host an instance (a flow needs an address). Raises
    :class:`ConfigError` for an unknown or unaddressable ``cloud_device``.
    """
    g = topology.graph
    hosts = [d for d in topology.devices if _addressable(topology, d)]
    if not hosts:
        raise ConfigError(f"topology {topology.name!r} has no device with local prefixes to "
                          "host the service")
    if cloud_device is None:
        farms = [grp.device for grp in topology.groups.values() if grp.kind == "servers"]
        if farms:
            cloud_device = farms[0]
        else:
            dist = dict(nx.all_pairs_dijkstra_path_length(g, weight="delay_ms"))
            cloud_device = min(hosts, key=lambda d: (sum(dist[d].values()), d))
    elif cloud_device not in g:
        raise ConfigError(f"cloud device {cloud_device!r} is not in topology {topology.name!r}; "
                          f"devices: {topology.devices}")
    elif cloud_device not in hosts:
        raise ConfigError(f"cloud device {cloud_device!r} has no local prefixes, so no flow can "
                          f"reach it; choose one of {hosts}")
    edges: dict[str, str] = {}
    for d in sorted(hosts, key=lambda d: (-g.degree(d), d)):
        edges.setdefault(str(g.nodes[d].get("site", d)), d)
    return WorkloadPlacement(workload=workload, cloud_device=cloud_device, edges=edges, port=port)


@dataclass(frozen=True)
class ServiceAnswer:
    """One answered request: its text, prompt, the context it was completed with, and timing."""

    text: str
    prompt: CompletedPrompt
    sample: ServiceSample
    timing: FlowTiming
    context: SiteContext


class ServiceStream:
    """The answer's text in pieces; :attr:`answer` is set once the pieces are exhausted."""

    def __init__(self, pieces: Iterator[str]) -> None:
        self._pieces = pieces
        self.answer: ServiceAnswer | None = None

    def __iter__(self) -> Iterator[str]:
        return self._pieces


def _body_bytes(payload: object, headers: str) -> int:
    return len(headers.encode()) + len(json.dumps(payload, separators=(",", ":")).encode())


def _answer_body(request_id: str, response: ChatResponse) -> dict[str, object]:
    return {"id": request_id, "object": "chat.completion", "model": response.model,
            "choices": [{"index": 0, "finish_reason": response.finish_reason,
                         "message": {"role": "assistant", "content": response.text}}]}


class ModelledLeg:
    """The edge-cloud leg on a modelled WAN: the cloud instance runs in process.

    The request's and answer's bytes are timed on ``wan`` (:class:`EmbeddedWan`: the embedded
    network's live state), and the leg waits that long when ``wait_network`` (off in tests
    that only count), so a client measures what a user would.
    """

    def __init__(self, wan: WanPath, instance: CloudInstance, *,
                 wait_network: bool = True) -> None:
        self.wan = wan
        self.instance = instance
        self.wait_network = wait_network

    def _wait(self, ms: float) -> None:
        if self.wait_network and ms > 0:
            time.sleep(ms / 1e3)

    def chat(self, flow_id: str, edge_device: str, cloud_device: str, call: CloudCall, *,
             port: int) -> LegResult:
        """Carry ``call`` and its reply (see :class:`~netgpt.generative.base.CloudLeg`)."""
        up = _body_bytes(call.body(), _REQUEST_HEADERS)
        # a request the network drops never reaches the cloud
        self.wan.exchange(flow_id, edge_device, cloud_device, bytes_up=up, bytes_down=0,
                          port=port)
        reply = self.instance.answer(call)
        down = _body_bytes(_answer_body(flow_id, reply.response), _ANSWER_HEADERS)
        timing = self.wan.exchange(flow_id, edge_device, cloud_device, bytes_up=up,
                                   bytes_down=down, port=port)
        self._wait(timing.network_ms)
        return LegResult(reply, timing, up, down)

    def stream(self, flow_id: str, edge_device: str, cloud_device: str, call: CloudCall, *,
               port: int, done: Callable[[LegResult], None]) -> Iterator[str]:
        """Carry ``call``, the answer in pieces.

        The WAN time is taken before the first piece for the request leg and after the last
        for the answer leg; the answer's bytes are counted as they stream (the timing is made
        for ``max_tokens`` words of answer, an upper bound).
        """
        up = _body_bytes(call.body(), _REQUEST_HEADERS)
        estimate = _body_bytes({"content": "w" * 6 * call.max_tokens}, _ANSWER_HEADERS)
        timing = self.wan.exchange(flow_id, edge_device, cloud_device, bytes_up=up,
                                   bytes_down=estimate, port=port)
        self._wait(timing.up_ms)
        down = len(_ANSWER_HEADERS)
        replies: list[CloudReply] = []
        for piece in self.instance.stream(call, replies.append):
            down += len(json.dumps({"delta": {"content": piece}}).encode()) + 8
            yield piece
        self._wait(timing.network_ms - timing.up_ms)
        done(LegResult(replies[0], timing, up, down))

    def probe(self, flow_id: str, edge_device: str, cloud_device: str, *,
              port: int) -> FlowTiming:
        """An empty exchange timed on the WAN (no wait)."""
        return self.wan.exchange(flow_id, edge_device, cloud_device, bytes_up=0, bytes_down=0,
                                 port=port)

    def transfer(self, flow_id: str, source_device: str, destination_device: str, *,
                 n_bytes: int, port: int) -> FlowTiming:
        """``n_bytes`` one way, timed on the WAN (no wait)."""
        return self.wan.exchange(flow_id, source_device, destination_device, bytes_up=n_bytes,
                                 bytes_down=0, port=port)

    def user_leg(self, flow_id: str, user_device: str, edge_device: str, *, bytes_up: int,
                 bytes_down: int, port: int) -> FlowTiming:
        """The user's exchange with a remote edge, timed on the WAN (and waited)."""
        timing = self.wan.exchange(flow_id, user_device, edge_device, bytes_up=bytes_up,
                                   bytes_down=bytes_down, port=port)
        self._wait(timing.network_ms)
        return timing

    def health(self) -> HealthReport:
        """The cloud model's health."""
        return self.instance.model.health()

    def close(self) -> None:
        """Nothing is held."""


class GenerativeService:
    """Serves requests from users at sites (see the module docstring).

    ``contexts(site)`` gives the site's context at the moment of the request; ``leg`` carries
    each request from its site's edge instance to the cloud instance and back; ``record``
    receives every :class:`ServiceSample`. ``edge_bytes`` is what moving an edge instance
    copies (its model and adapter files).
    """

    def __init__(
        self,
        *,
        placement: WorkloadPlacement,
        completer: PromptCompleter,
        leg: CloudLeg,
        contexts: Callable[[str], SiteContext],
        record: Callable[[Sequence[ServiceSample]], None] | None = None,
        max_tokens: int = 160,
        edge_bytes: int = 0,
    ) -> None:
        self.completer = completer
        self.leg = leg
        self.contexts = contexts
        self.record = record
        self.max_tokens = max_tokens
        self.edge_bytes = edge_bytes
        self._placement = placement
        self._lock = threading.Lock()

    @property
    def placement(self) -> WorkloadPlacement:
        """Where the instances run now."""
        with self._lock:
            return self._placement

    @property
    def sites(self) -> list[str]:
        """Sites with an edge instance."""
        return sorted(self.placement.edges)

    def warm_up(self) -> None:
        """Complete one request per site, unrecorded, as an instance does when it starts.

        The first completion with a site's adapter loads it (about half a second for the first
        of all); a started instance has paid that before its first user.
        """
        for site in self.sites:
            self.completer.complete("hello", self.contexts(site), use_adapter=True)

    def close(self) -> None:
        """Release the leg (in the lab: the cloud instance's server)."""
        self.leg.close()

    # -- one request ------------------------------------------------------------------------

    def _check(self, site: str, request: str, mode: str) -> tuple[str, str]:
        if mode not in ("edge+cloud", "cloud-only"):
            raise ConfigError(f"mode {mode!r} must be 'edge+cloud' or 'cloud-only'")
        text = request.strip()
        if not text:
            raise ConfigError("the request is empty; say what you need in a few words")
        if len(text) > MAX_REQUEST_CHARS:
            raise ConfigError(f"the request has {len(text)} characters; the service takes at "
                              f"most {MAX_REQUEST_CHARS}")
        placement = self.placement
        if site not in placement.edges:
            raise ConfigError(f"no edge instance at site {site!r}; sites served: "
                              f"{sorted(placement.edges)}")
        return placement.edges[site], placement.cloud_device

    def _call(self, site: str, request: str, mode: ServiceMode, max_tokens: int | None
              ) -> tuple[CloudCall, SiteContext, float]:
        """(the call to send, the site's context, edge ms)."""
        context = self.contexts(site)
        limit = max_tokens or self.max_tokens
        if mode == "cloud-only":
            return CloudCall("cloud-only", request, context=context, max_tokens=limit), context, 0.0
        start = time.perf_counter()
        prompt = self.completer.complete(request, context, use_adapter=True)
        took = (time.perf_counter() - start) * 1e3
        return (CloudCall("edge+cloud", request, context=context, prompt=prompt,
                          max_tokens=limit), context, took)

    def _sample(self, request_id: str, site: str, mode: ServiceMode, edge: str, cloud: str,
                edge_ms: float, started: float, result: LegResult | None = None,
                error: str = "", services: Sequence[str] = ()) -> ServiceSample:
        r = result.reply.response if result is not None else None
        sample = ServiceSample(
            request_id=request_id, timestamp=time.time(), workload=self.placement.workload,
            site=site, mode=mode, edge_device=edge, cloud_device=cloud, edge_ms=edge_ms,
            network_ms=result.timing.network_ms if result is not None else 0.0,
            cloud_ms=result.reply.cloud_ms if result is not None else 0.0,
            total_ms=(time.perf_counter() - started) * 1e3,
            prompt_tokens=r.prompt_tokens if r is not None else 0,
            completion_tokens=r.completion_tokens if r is not None else 0,
            wan_bytes_up=result.bytes_up if result is not None else 0,
            wan_bytes_down=result.bytes_down if result is not None else 0,
            ok=not error, error=error, services=",".join(services))
        if self.record is not None:
            self.record([sample])
        return sample

    def _with_user_leg(self, rid: str, request: str, context: SiteContext, edge: str,
                       result: LegResult) -> LegResult:
        """``result`` with the user's own leg added when the edge runs away from the users.

        The user's words go to the edge device and the answer comes back: its time joins the
        network time, its bytes the WAN bytes (they cross the WAN too). A dropped leg raises
        :class:`FlowDroppedError` (the user never gets the answer).
        """
        if context.device == edge:
            return result
        up = _body_bytes({"messages": [{"role": "user", "content": request}]}, _REQUEST_HEADERS)
        down = _body_bytes(_answer_body(rid, result.reply.response), _ANSWER_HEADERS)
        user = self.leg.user_leg(f"user:{rid}", context.device, edge, bytes_up=up,
                                 bytes_down=down, port=self.placement.port)
        t = result.timing
        joined = FlowTiming(user.network_ms + t.network_ms, user.up_ms + t.up_ms,
                            user.down_ms + t.down_ms, user.rtt_ms + t.rtt_ms,
                            user.path[:-1] + t.path, user.links + t.links,
                            1 - (1 - user.loss) * (1 - t.loss),
                            user.retransmissions + t.retransmissions)
        return LegResult(result.reply, joined, result.bytes_up + up, result.bytes_down + down)

    @staticmethod
    def _prompt_of(call: CloudCall, result: LegResult) -> CompletedPrompt:
        prompt = result.reply.prompt if call.mode == "cloud-only" else call.prompt
        assert prompt is not None
        return prompt

    def ask(self, site: str, request: str, *, mode: ServiceMode = "edge+cloud",
            request_id: str | None = None, max_tokens: int | None = None) -> ServiceAnswer:
        """Answer ``request`` from a user at ``site``.

        Raises :class:`ConfigError` for bad input (nothing recorded), and, after recording the
        failed request, :class:`FlowDroppedError` when the network drops the exchange and
        :class:`~netgpt.errors.LLMError` when the cloud model fails.
        """
        edge, cloud = self._check(site, request, mode)
        rid = request_id or uuid.uuid4().hex[:12]
        started = time.perf_counter()
        call, context, edge_ms = self._call(site, request, mode, max_tokens)
        try:
            result = self._with_user_leg(
                rid, request, context, edge,
                self.leg.chat(rid, edge, cloud, call, port=self.placement.port))
        except (FlowDroppedError, LLMError) as exc:
            self._sample(rid, site, mode, edge, cloud, edge_ms, started, error=str(exc))
            raise
        prompt = self._prompt_of(call, result)
        sample = self._sample(rid, site, mode, edge, cloud, edge_ms, started, result,
                              services=prompt.services)
        return ServiceAnswer(result.reply.response.text, prompt, sample, result.timing, context)

    def stream(self, site: str, request: str, *, mode: ServiceMode = "edge+cloud",
               request_id: str | None = None, max_tokens: int | None = None) -> ServiceStream:
        """Answer as :meth:`ask` does, the text in pieces as the cloud model writes them.

        Bad input raises at once; network and model failures while iterating (recorded).
        """
        edge, cloud = self._check(site, request, mode)
        rid = request_id or uuid.uuid4().hex[:12]
        holder: ServiceStream

        def pieces() -> Iterator[str]:
            started = time.perf_counter()
            call, context, edge_ms = self._call(site, request, mode, max_tokens)
            results: list[LegResult] = []
            words: list[str] = []
            try:
                for piece in self.leg.stream(rid, edge, cloud, call, port=self.placement.port,
                                             done=results.append):
                    words.append(piece)
                    yield piece
                result = self._with_user_leg(rid, request, context, edge, results[0])
            except (FlowDroppedError, LLMError) as exc:
                self._sample(rid, site, mode, edge, cloud, edge_ms, started, error=str(exc))
                raise
            prompt = self._prompt_of(call, result)
            sample = self._sample(rid, site, mode, edge, cloud, edge_ms, started, result,
                                  services=prompt.services)
            holder.answer = ServiceAnswer("".join(words), prompt, sample, result.timing,
                                          context)

        holder = ServiceStream(pieces())
        return holder

    # -- placement ----------------------------------------------------------------------------

    def move_edge(self, site: str, device: str) -> PlacementMove:
        """Run ``site``'s edge instance on ``device`` from now on; return what the move cost.

        The edge's files are copied to the new device over the network as it is now: from the
        old device, or from the cloud instance's when the old one cannot reach it. Raises
        :class:`ConfigError` for an unknown site, and :class:`FlowDroppedError` when neither
        can reach the new device (nothing moves).
        """
        placement = self.placement
        old = placement.edge_of(site)
        if device == old:
            return PlacementMove(site, old, device, 0, 0.0)
        try:
            timing = self.leg.transfer(f"move:{site}:{device}", old, device,
                                       n_bytes=self.edge_bytes, port=placement.port)
        except FlowDroppedError:
            if placement.cloud_device in (old, device):
                raise
            timing = self.leg.transfer(f"move:{site}:{device}", placement.cloud_device, device,
                                       n_bytes=self.edge_bytes, port=placement.port)
        with self._lock:
            self._placement = self._placement.moved(site, device)
        return PlacementMove(site, old, device, self.edge_bytes, timing.network_ms)


def files_bytes(paths: Sequence[Path]) -> int:
    """Total size of the files under ``paths`` (what moving an edge instance copies)."""
    total = 0
    for p in paths:
        if p.is_dir():
            total += sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
        elif p.is_file():
            total += p.stat().st_size
    return total
