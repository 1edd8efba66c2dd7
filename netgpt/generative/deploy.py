"""Deploying the generative service on a network: its pieces put together in one place.

:func:`embedded_service` puts the service on the embedded network: edge instances at the sites,
the cloud instance in the server farm or at the most central device
(:func:`~netgpt.generative.service.default_placement`), the WAN leg timed on the network's live
state, requests recorded in a telemetry store. :class:`SiteContexts` gives each request the
site's context at that moment: the directory's local services, the local time, and what the
network knows about the way to the cloud (round trip, the busiest link on it).

The deployment is written to ``service.json`` (placement, address, store path) so the control
plane (``netgpt serve``, ``netgpt demo``) manages the workload it did not start.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from netgpt.cloud_models.base import LanguageModel
from netgpt.errors import ConfigError, NetGPTError
from netgpt.generative.answer import GroundedAnswerModel
from netgpt.generative.base import CloudLeg, PromptCompleter, SiteContext
from netgpt.generative.cloud import CloudInstance
from netgpt.generative.directory import SiteDirectory, load_directory, site_context
from netgpt.generative.service import (
    EmbeddedWan,
    GenerativeService,
    ModelledLeg,
    default_placement,
    files_bytes,
)
from netgpt.intents.model import WorkloadPlacement
from netgpt.intents.placement import PlacementMove
from netgpt.sim_networks.live import LiveNetwork
from netgpt.sim_networks.topology import Topology
from netgpt.telemetry.store import SqliteTelemetryStore

if TYPE_CHECKING:  # the network process imports this module; it needs no agent
    from netgpt.agents.platform import IntentPlatform
    from netgpt.http_server import HttpServer

__all__ = [
    "SERVICE_FILE",
    "ServiceDeployment",
    "ServiceFront",
    "SiteContexts",
    "assemble_service",
    "embedded_service",
    "manage_deployed_service",
    "read_deployment",
    "serve_service",
    "sites_with_context",
    "write_deployment",
]

SERVICE_FILE = "service.json"


def shipped_edge_bytes(weights: Path | None = None) -> int:
    """What moving an edge instance copies: the prompt model's files and one site adapter."""
    from netgpt.edge_models.prompt_model import SHIPPED_PROMPT_WEIGHTS

    root = weights or SHIPPED_PROMPT_WEIGHTS
    adapters = [d for d in (root / "adapters").glob("*") if d.is_dir()]
    base = files_bytes([f for f in root.iterdir() if f.is_file()]) if root.is_dir() else 0
    return base + max((files_bytes([d]) for d in adapters), default=0)


class SiteContexts:
    """``contexts(site)``: the site's :class:`SiteContext` now, with live network facts."""

    def __init__(self, topology: Topology, leg: CloudLeg,
                 placement: Callable[[], WorkloadPlacement], *,
                 directory: SiteDirectory | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.topology = topology
        self.leg = leg
        self.placement = placement
        self.directory = directory or load_directory()
        self.clock = clock

    def network_facts(self, site: str) -> tuple[str, ...]:
        """What the network knows about the way from ``site``'s edge to the cloud."""
        p = self.placement()
        edge = p.edges.get(site)
        if edge is None:
            return ()
        try:
            t = self.leg.probe(f"probe:{site}", edge, p.cloud_device, port=p.port)
        except NetGPTError as exc:
            return (f"the cloud is unreachable from here: {exc}",)
        facts = [f"{t.rtt_ms:.0f} ms round trip to the cloud"]
        worst = t.bottleneck
        if worst is not None:
            facts.append(f"busiest link toward the cloud {worst.device}-{worst.neighbour} "
                         f"{worst.utilization:.0%} loaded")
        return tuple(facts)

    def __call__(self, site: str) -> SiteContext:
        """The context of a user at ``site`` now (ConfigError for an unknown site)."""
        return site_context(self.topology, site, at=self.clock(),
                            network=self.network_facts(site), directory=self.directory)


def sites_with_context(topology: Topology, placement: WorkloadPlacement,
                        directory: SiteDirectory) -> WorkloadPlacement:
    """The placement with an edge only where the directory knows the site's services."""
    keep = {}
    for site, device in placement.edges.items():
        try:
            directory.entry(topology.name, site)
        except ConfigError:
            continue
        keep[site] = device
    if not keep:
        raise ConfigError(f"the site directory has no site of topology {topology.name!r}; add "
                          "its sites to netgpt/generative/data/sites.yaml")
    return placement.model_copy(update={"edges": keep})


def assemble_service(
    topology: Topology,
    placement: WorkloadPlacement,
    directory: SiteDirectory,
    leg: Callable[[CloudInstance], CloudLeg],
    *,
    store: SqliteTelemetryStore | None = None,
    completer: PromptCompleter | None = None,
    cloud: LanguageModel | None = None,
) -> GenerativeService:
    """A service over the leg ``leg(cloud_instance)`` builds, its edges warmed up.

    ``completer`` defaults to the shipped edge prompt model with its site adapters, ``cloud``
    to :class:`GroundedAnswerModel` (no model server). Requests go to ``store`` when given. The
    leg is closed again when the warm-up fails.
    """
    if completer is None:
        from netgpt.edge_models.prompt_model import EdgePromptModel

        completer = EdgePromptModel.load()
    carrier = leg(CloudInstance(completer, cloud or GroundedAnswerModel()))
    holder: list[GenerativeService] = []
    contexts = SiteContexts(topology, carrier, lambda: holder[0].placement, directory=directory)
    service = GenerativeService(
        placement=placement, completer=completer, leg=carrier, contexts=contexts,
        record=store.add_service_samples if store is not None else None,
        edge_bytes=shipped_edge_bytes())
    holder.append(service)
    try:
        service.warm_up()
    except BaseException:
        carrier.close()
        raise
    return service


def embedded_service(
    live: LiveNetwork,
    *,
    store: SqliteTelemetryStore | None = None,
    completer: PromptCompleter | None = None,
    cloud: LanguageModel | None = None,
    placement: WorkloadPlacement | None = None,
    wait_network: bool = True,
) -> GenerativeService:
    """The service on the embedded network behind ``live`` (see the module docstring).

    Defaults as :func:`assemble_service`; the edge instances are warmed up (their adapters
    loaded) before it returns.
    """
    topology = live.topology
    directory = load_directory()
    place = sites_with_context(topology, placement or default_placement(topology), directory)
    wan = EmbeddedWan(live)
    return assemble_service(
        topology, place, directory,
        lambda instance: ModelledLeg(wan, instance, wait_network=wait_network),
        store=store, completer=completer, cloud=cloud)


@dataclass(frozen=True)
class ServiceDeployment:
    """Where a running service is: its placement, its HTTP address, its request store."""

    placement: WorkloadPlacement
    url: str
    store: Path


def write_deployment(state_dir: Path, deployment: ServiceDeployment) -> Path:
    """Write ``service.json`` into ``state_dir``; return its path."""
    path = state_dir / SERVICE_FILE
    path.write_text(json.dumps({"placement": deployment.placement.model_dump(mode="json"),
                                "url": deployment.url, "store": str(deployment.store)},
                               indent=2))
    return path


def read_deployment(state_dir: Path) -> ServiceDeployment | None:
    """The service deployed on the network of ``state_dir``, or ``None`` when none runs."""
    path = state_dir / SERVICE_FILE
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
        return ServiceDeployment(WorkloadPlacement.model_validate(raw["placement"]),
                                 str(raw["url"]), Path(raw["store"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a service deployment ({exc}); remove it and "
                          "restart the network with --service") from exc


class HttpEdgeMover:
    """Moves the edge instances of a service deployed elsewhere, through its HTTP control route.

    ``POST {url}/v1/netgpt/placement`` with ``{"site", "device"}`` (see
    :func:`netgpt.generative.http.create_service_app`); its errors come back as the same
    exception types the service raised.
    """

    def __init__(self, url: str, *, timeout_s: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def move_edge(self, site: str, device: str) -> PlacementMove:
        """Ask the service to move ``site``'s edge instance to ``device``."""
        import httpx

        from netgpt.sim_networks.flow_timing import FlowDroppedError

        try:
            reply = httpx.post(f"{self.url}/v1/netgpt/placement",
                               json={"site": site, "device": device}, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise ConfigError(f"the generative service at {self.url} did not answer the move "
                              f"({exc}); is the network process running?") from None
        try:
            body = reply.json()
        except ValueError:
            body = {}
        if reply.status_code == 200:
            return PlacementMove(site, str(body["old_device"]), device, int(body["bytes_moved"]),
                                 float(body["transfer_ms"]))
        message = (body.get("error") or {}).get("message", reply.text[:200])
        if reply.status_code == 502:
            raise FlowDroppedError(message)
        raise ConfigError(f"the service refused the move: {message}")


class ServiceFront:
    """A deployed service behind its HTTP endpoint; :meth:`stop` ends both and the record."""

    def __init__(self, service: GenerativeService, server: HttpServer, store: SqliteTelemetryStore,
                 state_dir: Path) -> None:
        self.service = service
        self.server = server
        self.store = store
        self.state_dir = state_dir

    def stop(self) -> None:
        """Stop the endpoint, release the service's leg, close its store, remove service.json."""
        self.server.stop()
        self.service.close()
        self.store.close()
        (self.state_dir / SERVICE_FILE).unlink(missing_ok=True)


def serve_service(
    state_dir: Path,
    port: int,
    build: Callable[[SqliteTelemetryStore, LanguageModel | None], GenerativeService],
    *,
    llm: str = "",
) -> ServiceFront:
    """Build a service with ``build(store, cloud)``, serve it on ``port``, write service.json.

    Its requests are recorded in ``service.sqlite`` in ``state_dir``; ``llm`` names the cloud
    model's backend (``netgpt.cloud_models.registry``; empty: grounded answers).
    """
    from netgpt.generative.http import create_service_app
    from netgpt.http_server import HttpServer

    store_path = state_dir / "service.sqlite"
    store = SqliteTelemetryStore(store_path)
    cloud = None
    try:
        if llm:
            from netgpt.cloud_models.registry import llm_from_config

            cloud = llm_from_config(llm)
        service = build(store, cloud)
    except BaseException:
        store.close()
        raise
    def record() -> None:  # service.json follows the service's placement
        write_deployment(state_dir, ServiceDeployment(service.placement, server.url, store_path))

    server = HttpServer(create_service_app(service, on_move=record), port=port)
    try:
        server.start()
    except BaseException:
        service.close()
        store.close()
        raise
    record()
    return ServiceFront(service, server, store, state_dir)


def manage_deployed_service(platform: IntentPlatform, state_dir: Path) -> ServiceDeployment | None:
    """Let ``platform`` manage the service deployed on the network of ``state_dir``, if any.

    Its placement becomes the platform's knowledge of the workload, its request store the
    source its objectives are measured from, and its HTTP control route the way the platform
    moves its edge instances (:class:`HttpEdgeMover`).
    """
    deployment = read_deployment(state_dir)
    if deployment is not None:
        platform.manage_workload(deployment.placement, SqliteTelemetryStore(deployment.store),
                                 mover=HttpEdgeMover(deployment.url),
                                 edge_bytes=shipped_edge_bytes())
    return deployment
