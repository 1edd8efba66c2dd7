"""The generative service in the Mininet lab: real HTTP between hosts, across FRR routers.

The cloud instance's HTTP server (:class:`~netgpt.generative.cloud.CloudHttpServer`) listens in
the network namespace of the host behind the cloud device; each request leaves from a socket in
the namespace of the host behind its site's edge device. So the edge-cloud exchange is one real
TCP connection through the lab's routers, shaped by their tc queues, filtered by their
nftables ACLs, routed by OSPF and counted by snmpd, and what the service records is measured:

* ``up_ms``: from the connect to the moment the cloud had read the whole request;
* ``down_ms``: from the moment the cloud began its answer to the last byte at the edge;
* ``network_ms`` their sum; ``rtt_ms`` the TCP handshake; ``retransmissions`` the kernel's
  count for the connection (``TCP_INFO``); bytes are those written and read, headers included.

The clocks are one (the lab's hosts share this machine's kernel), which is what makes the split
exact. The edge and cloud instances' models run in this process; only their network presence
is in the hosts. :func:`lab_service` deploys the service on a running lab.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, Protocol

from netgpt.cloud_models.base import ChatResponse, HealthReport, LanguageModel
from netgpt.errors import (
    ConfigError,
    LLMError,
    LLMOutputError,
    LLMRequestError,
    LLMUnavailableError,
)
from netgpt.generative.base import (
    CloudCall,
    CloudReply,
    CompletedPrompt,
    LegResult,
    PromptCompleter,
)
from netgpt.generative.cloud import CloudHttpServer, CloudInstance
from netgpt.generative.deploy import assemble_service, sites_with_context
from netgpt.generative.directory import load_directory
from netgpt.generative.service import GenerativeService, default_placement
from netgpt.intents.model import WorkloadPlacement
from netgpt.sim_networks.flow_timing import FlowDroppedError, FlowTiming
from netgpt.sim_networks.topology import Topology
from netgpt.telemetry.store import SqliteTelemetryStore

__all__ = ["HostNetwork", "LabLeg", "lab_service"]

_TCP_INFO_LEN = 104
_TCPI_TOTAL_RETRANS = 100  # offset of tcpi_total_retrans in struct tcp_info (linux/tcp.h)


class HostNetwork(Protocol):
    """End hosts behind devices, whose network this process can open sockets in.

    :class:`~netgpt.sim_networks.lab.MininetLab` is one.
    """

    topology: Topology

    def has_host(self, device: str) -> bool:
        """Whether an end host sits behind ``device``."""
        ...

    def host_address(self, device: str) -> str:
        """The host's address."""
        ...

    def host_socket(self, device: str) -> socket.socket:
        """An unbound TCP socket in the host's network."""
        ...

    def host_listener(self, device: str, port: int) -> socket.socket:
        """A TCP socket listening on the host's ``port`` (0: any free one)."""
        ...


def _retransmissions(sock: socket.socket) -> int:
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
    except OSError:
        return 0
    if len(info) < _TCPI_TOTAL_RETRANS + 4:
        return 0
    return int(struct.unpack_from("I", info, _TCPI_TOTAL_RETRANS)[0])


class _Exchange:
    """One HTTP exchange on a connected socket: what was sent, read, and when."""

    def __init__(self, sock: socket.socket, where: str, started: float,
                 connected: float) -> None:
        self.sock = sock
        self.where = where  # "tcp/PORT from A to B (ADDRESS)"
        self.started = started
        self.connected = connected
        self.sent = 0
        self.read = 0
        self.reader: BinaryIO = sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)
        self.sent += len(data)

    def line(self) -> bytes:
        raw = self.reader.readline(1 << 20)
        self.read += len(raw)
        return raw

    def rest(self, n: int | None) -> bytes:
        raw = self.reader.read() if n is None else self.reader.read(n)
        self.read += len(raw)
        return raw

    def head(self) -> tuple[int, dict[str, str]]:
        status_line = self.line().decode("latin-1").split()
        if len(status_line) < 2 or not status_line[1].isdigit():
            raise LLMOutputError(f"the cloud instance sent no HTTP status line: {status_line}")
        headers: dict[str, str] = {}
        while True:
            raw = self.line()
            if raw in (b"\r\n", b"\n", b""):
                break
            name, _, value = raw.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line[1]), headers

    def close(self) -> int:
        retrans = _retransmissions(self.sock)
        self.reader.close()
        self.sock.close()
        return retrans


class LabLeg:
    """Carries calls as real HTTP between lab hosts (see the module docstring).

    The cloud instance's server listens on ``port`` of the host behind ``cloud_device`` from
    construction until :meth:`close`. ``timeout_s`` bounds the connect and every read: past it
    the exchange counts as dropped by the network.
    """

    def __init__(self, hosts: HostNetwork, instance: CloudInstance, cloud_device: str, *,
                 port: int = 8800, timeout_s: float = 5.0) -> None:
        if not hosts.has_host(cloud_device):
            raise ConfigError(f"no host behind cloud device {cloud_device!r} to run the cloud "
                              "instance on; choose a device with an end host")
        self.hosts = hosts
        self.instance = instance
        self.cloud_device = cloud_device
        self.port = port
        self.timeout_s = timeout_s
        self._server = CloudHttpServer(instance, hosts.host_listener(cloud_device, port))

    # -- connections --------------------------------------------------------------------------

    def _open(self, edge_device: str, destination: str, port: int) -> _Exchange:
        if destination != self.cloud_device or port != self.port:
            raise ConfigError(f"the cloud instance listens at {self.cloud_device}:{self.port}, "
                              f"not {destination}:{port}")
        return self._connect(edge_device, destination, port)

    def _connect(self, source_device: str, destination_device: str, port: int) -> _Exchange:
        if not self.hosts.has_host(source_device):
            raise ConfigError(f"no host behind {source_device!r} to send from; devices with "
                              "hosts can run an edge instance")
        address = self.hosts.host_address(destination_device)
        where = f"tcp/{port} from {source_device} to {destination_device} ({address})"
        sock = self.hosts.host_socket(source_device)
        sock.settimeout(self.timeout_s)
        started = time.monotonic()
        try:
            sock.connect((address, port))
        except OSError as exc:
            sock.close()
            why = (f"no answer to the connection within {self.timeout_s:g} s"
                   if isinstance(exc, TimeoutError) else str(exc))
            raise FlowDroppedError(f"{where} is dropped: {why}") from None
        return _Exchange(sock, where, started, time.monotonic())

    def _dropped(self, ex: _Exchange, exc: OSError) -> FlowDroppedError:
        ex.close()
        why = (f"no bytes for {self.timeout_s:g} s" if isinstance(exc, TimeoutError)
               else str(exc))
        return FlowDroppedError(f"{ex.where}: the exchange broke off after {ex.sent} bytes "
                                f"sent and {ex.read} read: {why}")

    def _post(self, ex: _Exchange, body: dict[str, Any]) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        head = (f"POST /v1/chat/completions HTTP/1.1\r\n"
                f"Host: {self.hosts.host_address(self.cloud_device)}:{self.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                "Connection: close\r\n\r\n").encode()
        ex.send(head + data)

    @staticmethod
    def _failure(status: int, payload: bytes) -> LLMError:
        try:
            message = json.loads(payload)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = payload[:200].decode("utf-8", "replace")
        if status == 503:
            return LLMUnavailableError(message)
        if status == 400:
            return LLMRequestError(message)
        return LLMError(message)

    def _timing(self, ex: _Exchange, edge: str, cloud: dict[str, Any], ended: float,
                retrans: int) -> FlowTiming:
        up = max(0.0, (float(cloud["received"]) - ex.started) * 1e3)
        down = max(0.0, (ended - float(cloud["replied"])) * 1e3)
        return FlowTiming(up + down, up, down, (ex.connected - ex.started) * 1e3,
                          (edge, self.cloud_device), (), 0.0, retrans)

    @staticmethod
    def _reply(cloud: dict[str, Any], response: ChatResponse) -> CloudReply:
        raw = cloud.get("prompt")
        prompt = None
        if isinstance(raw, dict):
            prompt = CompletedPrompt(**{**raw, "services": tuple(raw.get("services", ()))})
        return CloudReply(response, float(cloud["cloud_ms"]), prompt)

    # -- the leg ------------------------------------------------------------------------------

    def chat(self, flow_id: str, edge_device: str, cloud_device: str, call: CloudCall, *,
             port: int) -> LegResult:
        """POST the call from the edge's host to the cloud's and read the answer."""
        ex = self._open(edge_device, cloud_device, port)
        try:
            self._post(ex, call.body())
            status, headers = ex.head()
            length = headers.get("content-length")
            payload = ex.rest(int(length) if length and length.isdigit() else None)
        except OSError as exc:
            raise self._dropped(ex, exc) from None
        ended = time.monotonic()
        retrans = ex.close()
        if status != 200:
            raise self._failure(status, payload)
        try:
            answer = json.loads(payload)
            cloud = answer["netgpt_cloud"]
            choice = answer["choices"][0]
            usage = answer.get("usage", {})
            response = ChatResponse(
                text=choice["message"]["content"], backend=self.instance.model.backend,
                model=str(answer.get("model", "")),
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", 0)),
                finish_reason=str(choice.get("finish_reason", "")))
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise LLMOutputError(f"the cloud instance's answer is not a chat completion "
                                 f"({exc})") from None
        reply = self._reply(cloud, response)
        return LegResult(reply, self._timing(ex, edge_device, cloud, ended, retrans),
                         ex.sent, ex.read)

    def stream(self, flow_id: str, edge_device: str, cloud_device: str, call: CloudCall, *,
               port: int, done: Callable[[LegResult], None]) -> Iterator[str]:
        """POST the call with ``stream``; yield the answer's pieces as their events arrive."""
        ex = self._open(edge_device, cloud_device, port)
        words: list[str] = []
        cloud: dict[str, Any] | None = None
        model = ""
        try:
            self._post(ex, {**call.body(), "stream": True})
            status, _ = ex.head()
            if status != 200:
                payload = ex.rest(None)
                ex.close()
                raise self._failure(status, payload)
            while True:
                raw = ex.line()
                if not raw:
                    break
                text = raw.decode("utf-8").strip()
                if not text.startswith("data: "):
                    continue
                data = text[len("data: "):]
                if data == "[DONE]":
                    break
                event = json.loads(data)
                if "error" in event:
                    ex.close()
                    raise LLMError(str(event["error"].get("message", event["error"])))
                if "netgpt_cloud" in event:
                    cloud, model = event["netgpt_cloud"], str(event.get("model", ""))
                    continue
                piece = event["choices"][0]["delta"].get("content")
                if piece:
                    words.append(piece)
                    yield piece
        except OSError as exc:
            raise self._dropped(ex, exc) from None
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            ex.close()
            raise LLMOutputError(f"the cloud instance's stream is malformed ({exc})") from None
        ended = time.monotonic()
        retrans = ex.close()
        if cloud is None:
            raise FlowDroppedError(f"tcp/{self.port} between {edge_device} and "
                                   f"{self.cloud_device}: the stream ended before its last "
                                   "event")
        answer = "".join(words)
        prompt_text = call.prompt.text if call.prompt is not None else call.request
        response = ChatResponse(text=answer, backend=self.instance.model.backend, model=model,
                                prompt_tokens=len(prompt_text.split()),
                                completion_tokens=len(answer.split()), finish_reason="stop")
        done(LegResult(self._reply(cloud, response),
                       self._timing(ex, edge_device, cloud, ended, retrans), ex.sent, ex.read))

    def probe(self, flow_id: str, edge_device: str, cloud_device: str, *,
              port: int) -> FlowTiming:
        """A TCP handshake with the cloud instance: its round trip."""
        ex = self._open(edge_device, cloud_device, port)
        rtt = (ex.connected - ex.started) * 1e3
        retrans = ex.close()
        return FlowTiming(rtt, rtt / 2, rtt / 2, rtt, (edge_device, cloud_device), (), 0.0,
                          retrans)

    def _bytes_exchange(self, source_device: str, destination_device: str, up: int,
                        down: int) -> FlowTiming:
        """``up`` bytes from one host to the other on a fresh TCP connection, ``down`` back.

        The destination listens on a free port for this exchange only. Timed to the last byte
        back (or, with nothing back, to the destination's receipt of the last byte up).
        """
        listener = self.hosts.host_listener(destination_device, 0)
        listener.settimeout(self.timeout_s)
        got: list[float] = []

        def serve() -> None:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(self.timeout_s)
                total = 0
                try:
                    while total < up and (chunk := conn.recv(min(1 << 16, up - total))):
                        total += len(chunk)
                    if total == up:
                        got.append(time.monotonic())
                        conn.sendall(b"\0" * down)
                except OSError:
                    return

        worker = threading.Thread(target=serve, name="host-exchange", daemon=True)
        worker.start()
        try:
            ex = self._connect(source_device, destination_device, listener.getsockname()[1])
            try:
                ex.send(b"\0" * up)
                back = 0
                while back < down and (chunk := ex.sock.recv(min(1 << 16, down - back))):
                    back += len(chunk)
            except OSError as exc:
                raise self._dropped(ex, exc) from None
            ended = time.monotonic()
            worker.join(self.timeout_s + 1)
            retrans = ex.close()
        finally:
            listener.close()
        if not got or back < down:
            raise FlowDroppedError(f"{up} bytes from {source_device} to {destination_device} "
                                   f"and {down} back did not complete")
        up_ms = (got[0] - ex.started) * 1e3
        total = ((ended if down else got[0]) - ex.started) * 1e3
        return FlowTiming(total, up_ms, total - up_ms, (ex.connected - ex.started) * 1e3,
                          (source_device, destination_device), (), 0.0, retrans)

    def transfer(self, flow_id: str, source_device: str, destination_device: str, *,
                 n_bytes: int, port: int) -> FlowTiming:
        """Copy ``n_bytes`` over a TCP connection between the two hosts; time to the last byte."""
        return self._bytes_exchange(source_device, destination_device, n_bytes, 0)

    def user_leg(self, flow_id: str, user_device: str, edge_device: str, *, bytes_up: int,
                 bytes_down: int, port: int) -> FlowTiming:
        """The user's bytes from their site's host to the edge's host and the answer's back.

        On a port of its own (the edge host listens for this exchange only), so an ACL on the
        service's port does not see it.
        """
        return self._bytes_exchange(user_device, edge_device, bytes_up, bytes_down)

    def health(self) -> HealthReport:
        """The cloud model's health."""
        return self.instance.model.health()

    def close(self) -> None:
        """Stop the cloud instance's server."""
        self._server.stop()


def lab_service(
    hosts: HostNetwork,
    *,
    store: SqliteTelemetryStore | None = None,
    completer: PromptCompleter | None = None,
    cloud: LanguageModel | None = None,
    placement: WorkloadPlacement | None = None,
    port: int = 8800,
    timeout_s: float = 5.0,
) -> GenerativeService:
    """The service deployed on a running lab (``hosts``), its edge-cloud leg real HTTP.

    The cloud instance listens in the host behind the cloud device; edge instances serve the
    sites whose devices have hosts and whose services the directory knows. Defaults as
    :func:`~netgpt.generative.deploy.embedded_service`. Close the service
    (:meth:`GenerativeService.close`) to stop the cloud instance's server. ``timeout_s``: how
    long an exchange may go without an answer before it counts as dropped.
    """
    topology = hosts.topology
    directory = load_directory()
    place = placement or default_placement(topology, port=port)
    hosted = {site: dev for site, dev in place.edges.items() if hosts.has_host(dev)}
    place = sites_with_context(topology, place.model_copy(update={"edges": hosted}), directory)
    return assemble_service(
        topology, place, directory,
        lambda instance: LabLeg(hosts, instance, place.cloud_device, port=place.port,
                                timeout_s=timeout_s),
        store=store, completer=completer, cloud=cloud)
