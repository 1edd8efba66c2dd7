"""``NameTable``: the names an intent may use (devices, sites, groups, services, workloads).

Built from a :class:`~netgpt.sim_networks.topology.Topology` or from plain lists (for example
NetConfEval's locations). Look-ups are case-insensitive and match multi-word names ("Kansas
City"); :meth:`NameTable.suggest` gives the closest names for a word it does not know.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from netgpt.errors import ConfigError
from netgpt.intents.vocabulary import WORKLOADS

if TYPE_CHECKING:
    from netgpt.sim_networks.topology import Topology

__all__ = ["NameKind", "NameTable", "name_words"]

NameKind = Literal["device", "site", "group", "service", "workload"]
# when one phrase names several things, the first kind here wins unless a keyword says otherwise
_KIND_ORDER: tuple[NameKind, ...] = ("device", "group", "site", "service", "workload")
_WORD = re.compile(r"[A-Za-z0-9_µ]+(?:[-'][A-Za-z0-9_]+)*|[^\sA-Za-z0-9_]")


def name_words(text: str) -> tuple[str, ...]:
    """The lower-case words of a name, as the parser's tokenizer splits them."""
    return tuple(m.group(0).lower() for m in _WORD.finditer(text))


@dataclass(frozen=True)
class NameTable:
    """Names an intent may refer to. ``aliases`` map another spelling to a canonical name.

    ``groups`` map a group to its prefixes; ``services`` map a service to (protocol, ports);
    ``workloads`` map a managed workload (the target of an SLO) to the phrases that name it.
    """

    devices: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    services: Mapping[str, tuple[str, tuple[int, ...]]] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    workloads: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(WORKLOADS))
    _index: dict[tuple[str, ...], list[tuple[NameKind, str]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _longest: list[int] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[tuple[str, ...], list[tuple[NameKind, str]]] = {}

        def add(phrase: str, kind: NameKind, canonical: str) -> None:
            key = name_words(phrase)
            if not key:
                raise ConfigError(f"empty {kind} name {phrase!r} in the name table")
            entries = index.setdefault(key, [])
            if (kind, canonical) not in entries:
                entries.append((kind, canonical))

        for d in self.devices:
            add(d, "device", d)
        for s in self.sites:
            add(s, "site", s)
        for g in self.groups:
            add(g, "group", g)
        for s in self.services:
            add(s, "service", s)
        for w, phrases in self.workloads.items():
            for p in (w, *phrases):
                add(p, "workload", w)
        for alias, target in self.aliases.items():
            targets = index.get(name_words(target))
            if not targets:
                raise ConfigError(f"alias {alias!r} points at unknown name {target!r}")
            for kind, canonical in targets:
                add(alias, kind, canonical)
        for entries in index.values():
            entries.sort(key=lambda e: _KIND_ORDER.index(e[0]))
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_longest", [max((len(k) for k in index), default=1)])

    @classmethod
    def from_topology(
        cls, topology: Topology, *, aliases: Mapping[str, str] | None = None
    ) -> NameTable:
        """Devices, sites, groups and services of ``topology``."""
        sites = sorted({str(topology.graph.nodes[n].get("site", n)) for n in topology.devices})
        return cls(
            devices=tuple(topology.devices),
            sites=tuple(sites),
            groups={g.name: tuple(g.prefixes) for g in topology.groups.values()},
            services={s.name: (s.protocol, tuple(s.ports)) for s in topology.services.values()},
            aliases=dict(aliases or {}),
        )

    @classmethod
    def from_names(
        cls,
        *,
        devices: Iterable[str] = (),
        sites: Iterable[str] = (),
        groups: Iterable[str] = (),
        services: Iterable[str] = (),
    ) -> NameTable:
        """A table from plain lists (groups without prefixes, services without ports)."""
        return cls(
            devices=tuple(devices),
            sites=tuple(sites),
            groups={g: () for g in groups},
            services={s: ("any", ()) for s in services},
        )

    @property
    def longest(self) -> int:
        """The most words any name has."""
        return self._longest[0]

    def lookup(self, words: tuple[str, ...]) -> list[tuple[NameKind, str]]:
        """What ``words`` (lower case) name, best reading first; empty if nothing."""
        return list(self._index.get(words, ()))

    def phrases(self) -> list[str]:
        """Every known name phrase (lower case, words joined by spaces)."""
        return [" ".join(k) for k in self._index]

    def canonical(self, phrase: str) -> str:
        """The canonical spelling of a known phrase (its first reading)."""
        return self._index[name_words(phrase)][0][1]

    def suggest(self, word: str, *, n: int = 3, cutoff: float = 0.6) -> list[str]:
        """Names closest to ``word`` (canonical spelling), best first."""
        found = difflib.get_close_matches(word.lower(), self.phrases(), n=n, cutoff=cutoff)
        return [self.canonical(p) for p in found]
