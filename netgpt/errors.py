"""The one exception tree of NetGPT.

Every error the project raises derives from :class:`NetGPTError`. Library errors (ncclient, pysnmp,
paramiko, lxml, networkx) are translated at the module that calls the library, with
``raise ... from``.
Each message names the bad value and says what to do.

::

    NetGPTError
    ├── ConfigError (ValueError)             bad settings, inventory or command-line values
    │   ├── TopologyError                    bad topology name or file
    │   └── IntentParseError                 intent text the parser cannot place (words, hints)
    ├── ConfigValidationError (ValueError)   a device config that does not fit the model
    ├── ForecastError (ValueError)           history a forecaster cannot use, missing weights
    ├── TelemetryError (ValueError)          stored telemetry that cannot answer the question
    ├── LLMError                             a language model gave no usable answer
    │   ├── LLMUnavailableError (ConnectionError)   server down or refusing, model files missing
    │   ├── LLMTimeoutError (TimeoutError)          no answer in time
    │   ├── LLMRequestError                         the server refused the request (HTTP error)
    │   ├── LLMOutputError (ValueError)             not JSON, or not fitting the schema / names
    │   └── LLMServerError (RuntimeError)           the vLLM environment/server could not be
    │                                               created, started or stopped
    ├── NetworkRuntimeError (RuntimeError)   the emulated network could not start / is not running
    │   └── PortInUseError (OSError)         a port the runtime wanted is taken
    └── DeviceError                          talking to a device failed
        ├── DeviceConnectionError (ConnectionError)   unreachable, refused
        ├── AuthenticationError (PermissionError)      credentials refused
        ├── DeviceTimeoutError (TimeoutError)           no answer in time
        ├── CapabilityError                             the device lacks a needed capability
        ├── LockError                                   the datastore is locked by someone else
        ├── RpcError                                    the device answered an rpc-error
        │   ├── MergeConfigError                        candidate load refused
        │   └── CommitError                             validate/commit/confirm refused
        └── SnmpError                                   SNMP error status or malformed response
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "CapabilityError",
    "CommitError",
    "ConfigError",
    "ConfigValidationError",
    "DeviceConnectionError",
    "DeviceError",
    "DeviceTimeoutError",
    "ForecastError",
    "IntentParseError",
    "LLMError",
    "LLMOutputError",
    "LLMRequestError",
    "LLMServerError",
    "LLMTimeoutError",
    "LLMUnavailableError",
    "LockError",
    "MergeConfigError",
    "NetGPTError",
    "NetworkRuntimeError",
    "PortInUseError",
    "RpcError",
    "SnmpError",
    "TelemetryError",
    "TopologyError",
]


class NetGPTError(Exception):
    """Root of every error raised by NetGPT."""


class ConfigError(NetGPTError, ValueError):
    """A setting, inventory entry or command-line value is wrong."""


class LifecycleError(ConfigError):
    """The intent's lifecycle state does not allow the request.

    For example: approving one that no longer waits, withdrawing one already withdrawn, or an
    illegal state move.
    """


class TopologyError(ConfigError):
    """A topology name, spec or file is wrong."""


class IntentParseError(ConfigError):
    """Intent text the controlled-language parser could not turn into a formal intent.

    ``words`` are the words it could not place (or that caused the refusal), ``spans`` their
    ``(start, end)`` character offsets in the text, ``suggestions`` the closest valid readings,
    and ``reason`` one of ``empty``, ``unplaced``, ``unknown-name``, ``incomplete``,
    ``contradiction``, ``out-of-range``, ``refused``, ``hidden-character`` (an invisible control
    or format character).
    """

    def __init__(
        self,
        message: str,
        *,
        words: tuple[str, ...] = (),
        spans: tuple[tuple[int, int], ...] = (),
        suggestions: tuple[str, ...] = (),
        reason: str = "unplaced",
    ) -> None:
        detail = message
        if suggestions:
            detail = f"{detail}; did you mean: " + " | ".join(suggestions)
        super().__init__(detail)
        self.message = message
        self.words = words
        self.spans = spans
        self.suggestions = suggestions
        self.reason = reason


class ConfigValidationError(NetGPTError, ValueError):
    """A device configuration does not fit the YANG-shaped model.

    ``path`` is the XPath-like location of the offending node (e.g.
    ``/interfaces/interface[name='eth1']/enabled``), ``tag`` the NETCONF error-tag to report.
    """

    def __init__(self, message: str, *, path: str = "", tag: str = "invalid-value") -> None:
        super().__init__(f"{message} (at {path})" if path else message)
        self.message = message
        self.path = path
        self.tag = tag


class ForecastError(NetGPTError, ValueError):
    """A forecaster cannot work with what it was given.

    Raised for history it cannot use (too short, too many missing values, infinite values, wrong
    shape), horizons beyond what a model was trained for, and missing or unreadable weights or
    adapters. The message names the bad value and what to do.
    """


class TelemetryError(NetGPTError, ValueError):
    """The telemetry asked for is not there (no rates stored for an interface, an empty store)."""


class LLMError(NetGPTError):
    """A language model gave no usable answer. ``backend`` names the backend that was asked.

    Callers treat every subclass the same way: the model's proposal is missing, so fall back to
    asking the operator (or the controlled-language parser); nothing has been applied.
    """

    def __init__(self, message: str, *, backend: str = "") -> None:
        super().__init__(f"{backend}: {message}" if backend else message)
        self.message = message
        self.backend = backend


class LLMUnavailableError(LLMError, ConnectionError):
    """The model cannot be reached: server down or refusing connections, model files missing."""


class LLMTimeoutError(LLMError, TimeoutError):
    """The model did not answer within the timeout."""


class LLMRequestError(LLMError):
    """The server refused the request (an HTTP error status); ``status`` holds it."""

    def __init__(self, message: str, *, backend: str = "", status: int = 0) -> None:
        super().__init__(message, backend=backend)
        self.status = status


class LLMOutputError(LLMError, ValueError):
    """The model answered, but not usably: not JSON, not fitting the schema, unknown names.

    ``output`` holds the model's last raw answer, ``attempts`` how many answers were tried.
    """

    def __init__(
        self, message: str, *, backend: str = "", output: str = "", attempts: int = 1
    ) -> None:
        super().__init__(message, backend=backend)
        self.output = output
        self.attempts = attempts


class LLMServerError(LLMError, RuntimeError):
    """The vLLM environment or server could not be created, started or stopped."""


class NetworkRuntimeError(NetGPTError, RuntimeError):
    """The emulated network could not be started, reached or stopped."""


class PortInUseError(NetworkRuntimeError, OSError):
    """A TCP/UDP port the runtime needs is already taken."""


class DeviceError(NetGPTError):
    """Talking to a device failed. ``device`` names it."""

    def __init__(self, message: str, *, device: str = "") -> None:
        super().__init__(f"{device}: {message}" if device else message)
        self.device = device


class DeviceConnectionError(DeviceError, ConnectionError):
    """The device could not be reached (refused, unreachable, closed)."""


class AuthenticationError(DeviceError, PermissionError):
    """The device refused the credentials."""


class DeviceTimeoutError(DeviceError, TimeoutError):
    """The device did not answer in time."""


class CapabilityError(DeviceError):
    """The device does not advertise a capability the operation needs."""


class LockError(DeviceError):
    """A datastore lock could not be taken (held by another session)."""


class RpcError(DeviceError):
    """The device answered with an ``rpc-error``."""

    def __init__(
        self,
        message: str,
        *,
        device: str = "",
        tag: str = "",
        path: str = "",
    ) -> None:
        detail = message
        if tag:
            detail = f"{detail} [error-tag {tag}]"
        if path:
            detail = f"{detail} [error-path {path}]"
        super().__init__(detail, device=device)
        self.tag = tag
        self.path = path
        self.error_message = message


class MergeConfigError(RpcError):
    """Loading a candidate configuration was refused."""


class CommitError(RpcError):
    """Validate, commit, confirm or cancel-commit was refused."""


class SnmpError(DeviceError):
    """An SNMP request failed (error status, timeout reported by the engine, bad response)."""
