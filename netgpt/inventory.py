"""The inventory: which devices exist, where their agents listen, and which credentials to use.

Two YAML files. ``inventory.yaml`` (safe to share) lists devices with address, NETCONF port, SNMP
port and a *credentials reference*; ``credentials.yaml`` (mode 0600, never logged) maps each
reference to NETCONF and SNMP secrets. Every command that talks to devices reads these; the
emulated network and the lab write them.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from netgpt.errors import ConfigError

__all__ = [
    "Credentials",
    "DeviceEntry",
    "Inventory",
    "LinkEntry",
    "NetconfCredentials",
    "SnmpCredentials",
    "default_state_dir",
    "generate_credentials",
    "load_credentials",
    "save_credentials",
]

_MODEL = ConfigDict(extra="forbid")


def default_state_dir() -> Path:
    """Where the emulated network keeps its inventory, keys and PID file.

    ``$NETGPT_STATE_DIR`` overrides; default ``./.netgpt`` (the current directory).
    """
    return Path(os.environ.get("NETGPT_STATE_DIR", ".netgpt")).resolve()


class NetconfCredentials(BaseModel):
    """SSH credentials for NETCONF: a password and/or a private key, and known host keys."""

    model_config = _MODEL
    username: str = Field(min_length=1)
    password: SecretStr | None = None
    key_file: Path | None = None
    known_hosts: Path | None = None  # verify host keys against this file when set


class SnmpCredentials(BaseModel):
    """SNMP credentials: v3 authPriv by default; v2c only when ``version`` says so."""

    model_config = _MODEL
    version: Literal["3", "2c"] = "3"
    user: str = "netgpt"
    auth_protocol: Literal["sha", "sha256", "md5"] = "sha"
    auth_key: SecretStr | None = None
    priv_protocol: Literal["aes128", "des"] = "aes128"
    priv_key: SecretStr | None = None
    community: SecretStr | None = None  # v2c read community (opt-in)
    write_community: SecretStr | None = None  # v2c write community (opt-in)


class Credentials(BaseModel):
    """One credentials entry: what a device reference resolves to."""

    model_config = _MODEL
    netconf: NetconfCredentials
    snmp: SnmpCredentials


class DeviceEntry(BaseModel):
    """One device in the inventory."""

    model_config = _MODEL
    name: str = Field(min_length=1)
    host: str = "127.0.0.1"
    netconf_port: int = Field(ge=1, le=65535)
    snmp_port: int = Field(ge=1, le=65535)
    credentials: str = "default"
    role: str = "router"
    site: str = ""


class LinkEntry(BaseModel):
    """One link between two inventory devices, for mapping interfaces to links."""

    model_config = _MODEL
    a: str
    a_interface: str
    b: str
    b_interface: str
    capacity_mbps: float = Field(gt=0)


class Inventory(BaseModel):
    """Devices of one network and where their secrets live."""

    model_config = _MODEL
    network: str
    backend: str = "embedded"
    topology: str = ""
    credentials_file: Path
    runtime_pid: int | None = None
    devices: list[DeviceEntry]
    links: list[LinkEntry] = Field(default_factory=list)

    def device(self, name: str) -> DeviceEntry:
        """The entry called ``name``; a :class:`ConfigError` lists close names otherwise."""
        for d in self.devices:
            if d.name == name:
                return d
        names = [d.name for d in self.devices]
        close = [n for n in names if n.lower().startswith(name[:2].lower())][:5]
        raise ConfigError(
            f"device {name!r} is not in the inventory of network {self.network!r}"
            + (f"; did you mean {close}?" if close else f"; known devices: {names[:12]}")
        )

    def credentials_for(self, entry: DeviceEntry) -> Credentials:
        """Resolve ``entry``'s credentials reference in the credentials file."""
        table = load_credentials(self.credentials_file)
        try:
            return table[entry.credentials]
        except KeyError:
            raise ConfigError(
                f"device {entry.name!r} refers to credentials {entry.credentials!r}, which "
                f"{str(self.credentials_file)!r} does not define; known: {sorted(table)}"
            ) from None

    @classmethod
    def load(cls, path: Path) -> Inventory:
        """Read and validate an inventory file."""
        if not path.is_file():
            raise ConfigError(
                f"no inventory at {str(path)!r}; start a network with 'netgpt net up' or pass "
                "--inventory FILE"
            )
        try:
            raw = yaml.safe_load(path.read_text())
            inv = cls.model_validate(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"{path}: {where}: {first['msg']}") from None
        if not inv.credentials_file.is_absolute():
            inv.credentials_file = (path.parent / inv.credentials_file).resolve()
        return inv

    def save(self, path: Path) -> None:
        """Write the inventory (no secrets in it)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.model_dump(mode="json")
        path.write_text(yaml.safe_dump(data, sort_keys=False))


def generate_credentials(*, known_hosts: Path | None = None) -> Credentials:
    """Fresh random credentials for a new network (SNMPv3 authPriv; v2c communities too)."""
    return Credentials(
        netconf=NetconfCredentials(
            username="netgpt",
            password=SecretStr(secrets.token_urlsafe(18)),
            known_hosts=known_hosts,
        ),
        snmp=SnmpCredentials(
            auth_key=SecretStr(secrets.token_urlsafe(18)),
            priv_key=SecretStr(secrets.token_urlsafe(18)),
            community=SecretStr("ro-" + secrets.token_hex(6)),
            write_community=SecretStr("rw-" + secrets.token_hex(6)),
        ),
    )


def _reveal(obj: object) -> object:
    if isinstance(obj, SecretStr):
        return obj.get_secret_value()
    if isinstance(obj, dict):
        return {k: _reveal(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def save_credentials(path: Path, table: dict[str, Credentials]) -> None:
    """Write the credentials file with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {name: _reveal(c.model_dump()) for name, c in table.items()}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(yaml.safe_dump(data, sort_keys=False))
    os.chmod(path, 0o600)


SECRET_FIELDS = frozenset({"password", "auth_key", "priv_key", "community", "write_community"})


def _resolve_secrets(entry: object, where: str) -> object:
    """Replace ``env:NAME`` and ``file:PATH`` secret values by what they point to.

    A secret can then live in the environment or in a file of its own (a mounted secret)
    instead of in the credentials file. Errors name the variable or file, never a value.
    """
    if isinstance(entry, dict):
        return {
            k: (_secret_value(v, f"{where}: {k}") if k in SECRET_FIELDS and isinstance(v, str)
                else _resolve_secrets(v, f"{where}: {k}"))
            for k, v in entry.items()
        }
    return entry


def _secret_value(value: str, where: str) -> str:
    if value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise ConfigError(f"{where}: environment variable {name!r} is not set; export it or "
                              "put the secret in the credentials file")
        return os.environ[name]
    if value.startswith("file:"):
        secret_path = Path(value[5:]).expanduser()
        try:
            return secret_path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read secret file {str(secret_path)!r} "
                              f"({exc.strerror})") from None
    return value


def load_credentials(path: Path) -> dict[str, Credentials]:
    """Read the credentials file; errors never echo secret values.

    Any secret may be written ``env:NAME`` (read from the environment) or ``file:PATH`` (read
    from a file, trailing newline stripped).
    """
    if not path.is_file():
        raise ConfigError(f"credentials file {str(path)!r} does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{path}: not valid YAML (line {getattr(exc, 'problem_mark', '?')})"
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of reference -> credentials")
    out: dict[str, Credentials] = {}
    for name, entry in raw.items():
        entry = _resolve_secrets(entry, f"{path}: credentials {name!r}")
        try:
            out[str(name)] = Credentials.model_validate(entry)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"{path}: credentials {name!r}: {where}: {first['msg']}") from None
    return out
