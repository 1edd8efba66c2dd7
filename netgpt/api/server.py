"""Running the API: uvicorn in a thread, under the platform, telemetry and the closed loop."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from netgpt.agents.platform import IntentPlatform
from netgpt.api.app import create_app
from netgpt.api.auth import Role, TokenBook, write_token_file
from netgpt.api.service import ControlService
from netgpt.edge_models.base import Forecaster
from netgpt.errors import ConfigError
from netgpt.generative.deploy import manage_deployed_service
from netgpt.http_server import HttpServer as ApiServer
from netgpt.inventory import Inventory
from netgpt.policies.guardrails import load_policies
from netgpt.sim_networks.topology import Topology

__all__ = ["DEFAULT_USERS", "ApiServer", "load_or_create_tokens", "serving"]

DEFAULT_USERS = [("admin", Role.ADMIN), ("approver", Role.APPROVER),
                 ("operator", Role.OPERATOR), ("viewer", Role.VIEWER)]


def load_or_create_tokens(path: Path) -> tuple[TokenBook, bool]:
    """The token book at ``path``; a missing file is created (0600) with one user per role.

    Returns the book and whether the file was created.
    """
    if path.exists():
        return TokenBook.from_file(path), False
    write_token_file(path, DEFAULT_USERS)
    return TokenBook.from_file(path), True


@dataclass
class Serving:
    """A running API over a platform (what :func:`serving` yields)."""

    server: ApiServer
    service: ControlService
    platform: IntentPlatform
    tokens_file: Path


@contextmanager
def serving(
    inventory: Inventory,
    state_dir: Path,
    *,
    topology: Topology | None = None,
    host: str = "127.0.0.1",
    port: int = 8080,
    tokens_file: Path | None = None,
    policy_file: Path | None = None,
    telemetry_interval_s: float = 1.0,
    watch_interval_s: float = 10.0,
    load_forecaster: Callable[[], Forecaster] | None = None,
    watch_forecaster: Forecaster | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> Iterator[Serving]:
    """Platform + telemetry + closed loop + HTTP for as long as the ``with`` block runs.

    ``load_forecaster`` gives the forecaster of the API's link forecasts (default: the shipped
    model); ``watch_forecaster``, a loaded one of its own, makes the closed loop act on predicted
    crossings too.

    ``tokens_file`` defaults to ``$NETGPT_API_TOKENS`` or ``STATE_DIR/api-tokens.json`` (created
    with one user per role if missing; its path is said, its tokens never are). Admins' policy
    edits are kept in ``policy_file`` (default ``STATE_DIR/policies.yaml``) and read at start.
    """
    tokens_path = tokens_file or Path(
        os.environ.get("NETGPT_API_TOKENS", state_dir / "api-tokens.json"))
    book, created = load_or_create_tokens(tokens_path)
    if created:
        say(f"created API tokens for {', '.join(n for n, _ in DEFAULT_USERS)} in {tokens_path} "
            "(mode 0600); log in with one of them")
    policies_path = policy_file or state_dir / "policies.yaml"
    policies = load_policies(policies_path) if policies_path.exists() else None
    platform = IntentPlatform(inventory, state_dir / "agent", topology=topology,
                              policies=policies)
    if manage_deployed_service(platform, state_dir) is not None:
        say("managing the generative service deployed on this network")
    service: ControlService | None = None
    server: ApiServer | None = None
    try:
        platform.start_telemetry(telemetry_interval_s)
        service = ControlService(platform, tick_s=telemetry_interval_s,
                                 watch_interval_s=watch_interval_s, policy_file=policies_path,
                                 load_forecaster=load_forecaster, proactive=watch_forecaster)
        server = ApiServer(create_app(service, book), host, port)
        server.start()
        service.start()
        yield Serving(server, service, platform, tokens_path)
    finally:
        if server is not None:
            server.stop()
        if service is not None:
            service.stop()
        platform.close()


def check_bind_host(host: str) -> None:
    """Refuse a host that is not an address of this machine (clear message, no traceback)."""
    try:
        socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot bind to host {host!r} ({exc}); use 127.0.0.1") from None
