"""uvicorn serving one ASGI app in a daemon thread (the control API, the generative service)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

from netgpt.errors import PortInUseError

__all__ = ["HttpServer"]


class HttpServer:
    """uvicorn serving ``app`` on ``host:port`` in a daemon thread; :meth:`stop` ends it."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 8080) -> None:
        self.host, self.port = host, port
        config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                                access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"netgpt-http-{port}",
                                        daemon=True)

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
                raise PortInUseError(
                    f"the HTTP server did not start on {self.url}; is the port free?")
            time.sleep(0.02)

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for it."""
        self._server.should_exit = True
        self._thread.join(timeout=15)
