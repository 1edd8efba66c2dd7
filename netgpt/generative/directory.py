"""The site directory: which local services a user at each site can be pointed to.

The directory ships as ``netgpt/generative/data/sites.yaml`` (written by hand, checked on load
by :func:`load_directory`): per topology (``campus``, ``abilene``) and site, 4-8
:class:`~netgpt.generative.base.LocalService` entries in the site's order of preference, and
the site's own words for some of them (:class:`SiteWord`: at campus north "the annex" is the
building of ``print-north-b2``). :func:`site_context` turns a topology, a site and a moment into
the :class:`~netgpt.generative.base.SiteContext` the edge model completes requests with.

Pure apart from :func:`load_directory` reading its file; errors are
:class:`~netgpt.errors.ConfigError` naming the bad value and the known ones.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from netgpt.errors import ConfigError
from netgpt.generative.base import LocalService, SiteContext
from netgpt.sim_networks.topology import Topology

__all__ = [
    "SHIPPED_DIRECTORY",
    "SiteDirectory",
    "SiteEntry",
    "SiteWord",
    "directory_from_mapping",
    "load_directory",
    "site_context",
]

SHIPPED_DIRECTORY = Path(__file__).resolve().parent / "data" / "sites.yaml"
MIN_SERVICES, MAX_SERVICES = 4, 8
# attachment roles, most user-facing first (the site's device is the first of the best role)
_ROLE_ORDER = ("access", "edge", "distribution", "core", "router")


@dataclass(frozen=True)
class SiteWord:
    """A phrase people at one site use for one of its services ("the annex" -> a printer)."""

    phrase: str
    service: str


@dataclass(frozen=True)
class SiteEntry:
    """One site's directory entry.

    ``services`` in the site's order of preference; ``words`` the site's own phrases;
    ``utc_offset_h`` and ``device`` override what :func:`site_context` would derive from the
    topology (``None``: derive).
    """

    topology: str
    site: str
    services: tuple[LocalService, ...]
    words: tuple[SiteWord, ...] = ()
    utc_offset_h: float | None = None
    device: str | None = None

    def service(self, name: str) -> LocalService:
        """The service called ``name``; ConfigError naming the site's services otherwise."""
        for s in self.services:
            if s.name == name:
                return s
        raise ConfigError(f"site {self.site!r} of {self.topology!r} has no service {name!r}; "
                          f"known: {', '.join(s.name for s in self.services)}")


@dataclass(frozen=True)
class SiteDirectory:
    """Every site's entry, per topology, and the shared list of service kinds."""

    kinds: tuple[str, ...]
    entries: tuple[SiteEntry, ...]

    def topologies(self) -> list[str]:
        """Topology names with at least one site, sorted."""
        return sorted({e.topology for e in self.entries})

    def sites(self, topology: str) -> list[str]:
        """The sites of ``topology`` in file order; ConfigError for an unknown topology."""
        found = [e.site for e in self.entries if e.topology == topology]
        if not found:
            raise ConfigError(f"the site directory has no topology {topology!r}; known: "
                              f"{', '.join(self.topologies())}")
        return found

    def entry(self, topology: str, site: str) -> SiteEntry:
        """The entry of ``site`` in ``topology``; ConfigError naming the known sites otherwise."""
        known = self.sites(topology)
        for e in self.entries:
            if e.topology == topology and e.site == site:
                return e
        raise ConfigError(f"the site directory has no site {site!r} in {topology!r}; known: "
                          f"{', '.join(known)}")


def _service(raw: Any, where: str, kinds: tuple[str, ...]) -> LocalService:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: a service must be a mapping, got {raw!r}")
    extra = set(raw) - {"name", "kind", "where", "hops", "status"}
    if extra:
        raise ConfigError(f"{where}: unknown service field(s) {sorted(extra)}; allowed: name, "
                          "kind, where, hops, status")
    try:
        service = LocalService(name=str(raw["name"]), kind=str(raw["kind"]),
                               where=str(raw["where"]), hops=int(raw.get("hops", 0)),
                               status=str(raw.get("status", "up")))
    except KeyError as exc:
        raise ConfigError(f"{where}: service {dict(raw)!r} lacks {exc.args[0]!r}") from None
    if service.kind not in kinds:
        raise ConfigError(f"{where}: service {service.name!r} has kind {service.kind!r}; "
                          f"known kinds: {', '.join(kinds)}")
    return service


def _entry(topology: str, site: str, raw: Any, kinds: tuple[str, ...]) -> SiteEntry:
    where = f"site {site!r} of {topology!r}"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {raw!r}")
    services = tuple(_service(s, where, kinds) for s in raw.get("services") or ())
    if not MIN_SERVICES <= len(services) <= MAX_SERVICES:
        raise ConfigError(f"{where} lists {len(services)} services; a site needs "
                          f"{MIN_SERVICES} to {MAX_SERVICES}")
    names = [s.name for s in services]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: service names repeat: {names}")
    words = []
    for w in raw.get("words") or ():
        word = SiteWord(str(w["phrase"]).strip().lower(), str(w["service"]))
        if word.service not in names:
            raise ConfigError(f"{where}: site word {word.phrase!r} points to unknown service "
                              f"{word.service!r}; known: {', '.join(names)}")
        words.append(word)
    offset = raw.get("utc_offset_h")
    if offset is not None and not -12 <= float(offset) <= 14:
        raise ConfigError(f"{where}: utc_offset_h {offset!r} must be within -12..14")
    device = raw.get("device")
    return SiteEntry(topology, site, services, tuple(words),
                     None if offset is None else float(offset),
                     None if device is None else str(device))


def directory_from_mapping(data: Mapping[str, Any]) -> SiteDirectory:
    """Check and build a directory from the YAML file's structure (see the shipped file)."""
    kinds = tuple(str(k) for k in data.get("kinds") or ())
    if not kinds:
        raise ConfigError("the site directory lists no service kinds ('kinds: [...]')")
    topologies = data.get("topologies")
    if not isinstance(topologies, Mapping) or not topologies:
        raise ConfigError("the site directory has no 'topologies' mapping")
    entries = tuple(_entry(str(topo), str(site), raw, kinds)
                    for topo, sites in topologies.items() for site, raw in sites.items())
    return SiteDirectory(kinds, entries)


@functools.lru_cache(maxsize=8)
def _load(path: Path, mtime: float) -> SiteDirectory:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the site directory {path}: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ConfigError(f"the site directory {path} must be a YAML mapping")
    return directory_from_mapping(data)


def load_directory(path: Path | str = SHIPPED_DIRECTORY) -> SiteDirectory:
    """Read and check a directory file (cached per file and modification time)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"no site directory at {p}")
    return _load(p.resolve(), p.stat().st_mtime)


def _site_devices(topology: Topology, site: str) -> list[str]:
    devices = [d for d in topology.devices if topology.graph.nodes[d].get("site") == site]
    if not devices:
        known = sorted({str(a.get("site")) for _, a in topology.graph.nodes(data=True)
                        if a.get("site")})
        raise ConfigError(f"topology {topology.name!r} has no site {site!r}; known sites: "
                          f"{', '.join(known)}")
    return devices


def _attachment(topology: Topology, devices: list[str]) -> str:
    def rank(device: str) -> int:
        role = str(topology.graph.nodes[device].get("role", ""))
        return _ROLE_ORDER.index(role) if role in _ROLE_ORDER else len(_ROLE_ORDER)

    return min(devices, key=lambda d: (rank(d), d))


def site_context(topology: Topology, site: str, *, at: datetime, network: Iterable[str] = (),
                 directory: SiteDirectory | None = None,
                 device: str | None = None) -> SiteContext:
    """The context of a user at ``site`` of ``topology`` at the moment ``at``.

    ``at`` is read as UTC when it carries no time zone. The site's UTC offset is the
    directory's ``utc_offset_h``, else ``round(longitude / 15)`` of its first device (no
    daylight saving). ``device`` (the user's attachment device, at the site) defaults to the
    directory's, else the site's first device of the most user-facing role (access before
    edge, distribution, core). ``network`` facts are passed through. ConfigError names the
    known sites (or devices) for a bad one.
    """
    devices = _site_devices(topology, site)
    entry = (directory or load_directory()).entry(topology.name, site)
    attach = device or entry.device or _attachment(topology, devices)
    if attach not in devices:
        raise ConfigError(f"device {attach!r} is not at site {site!r} of {topology.name!r}; "
                          f"its devices: {', '.join(devices)}")
    offset = entry.utc_offset_h
    if offset is None:
        location = topology.graph.nodes[devices[0]].get("location") or (0.0, 0.0)
        offset = float(round(float(location[1]) / 15))
    when = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    local = when + timedelta(hours=offset)
    return SiteContext(site=site, device=attach, local_time=local.strftime("%H:%M"),
                       utc_offset_h=offset, services=entry.services,
                       network=tuple(str(f) for f in network))
