"""Running the API: uvicorn in a thread, under the platform, telemetry and the closed loop."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from netgpt.agents.platform import IntentPlatform
from netgpt.api.app import create_app
from netgpt.api.auth import Role, TokenBook, write_token_file
from netgpt.api.service import ControlService
from netgpt.errors import ConfigError, PortInUseError
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


class ApiServer:
    """uvicorn serving ``app`` on ``host:port`` in a daemon thread; :meth:`stop` ends it."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 8080) -> None:
        self.host, self.port = host, port
        config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                                access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="netgpt-http", daemon=True)

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8080``."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 15.0) -> None:
        """Start and wait until it accepts connections."""
        with socket.socket() as probe:
            if probe.connect_ex((self.host, self.port)) == 0:
                raise PortInUseError(f"{self.host}:{self.port} is in use; choose another --port")
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise PortInUseError(f"the API did not start on {self.url}; is the port free?")
            time.sleep(0.02)

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for it."""
        self._server.should_exit = True
        self._thread.join(timeout=15)


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
    say: Callable[[str], None] = lambda _: None,
) -> Iterator[Serving]:
    """Platform + telemetry + closed loop + HTTP for as long as the ``with`` block runs.

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
    service: ControlService | None = None
    server: ApiServer | None = None
    try:
        platform.start_telemetry(telemetry_interval_s)
        service = ControlService(platform, tick_s=telemetry_interval_s,
                                 watch_interval_s=watch_interval_s, policy_file=policies_path)
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
