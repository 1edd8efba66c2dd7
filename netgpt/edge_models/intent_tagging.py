"""Mention tagging for the edge intent model: what in an operator's text is a name or a quantity.

The edge model never spells a name or a number. Before it reads a request, :func:`tag_request`
finds the *mentions* a deterministic reader can be sure of and replaces each with a typed
placeholder token:

* endpoints (``<e1>`` ...): the network's names and aliases (:class:`NameTable`), prefixes, and
  one-letter-off spellings of names of five letters or more;
* rates ``<r1>`` (normalized to Mbit/s), percentages ``<p1>`` (as a fraction), durations ``<m1>``
  (ms), times of day ``<t1>`` (``HH:MM``), ports ``<o1>`` (``"23"``, ``"5000-5010"``), plain
  numbers ``<n1>`` (digits, number words, ``p95``), services ``<s1>`` and workloads ``<w1>``.

Every group and site the network has that the text does not mention is listed too, after the
mentioned ones, so a site's own words for a place ("the dorms") can still be read as that place: a
per-site adapter learns which entry they mean. The operator's own site, when known, is marked
``here`` in that list ("block telnet from here").

The model then only decides structure (which kind, which placeholder plays which role, polarity);
:mod:`netgpt.edge_models.intent_grammar` turns its tokens and these mentions back into a draft.
Units are a closed set, so a rule reads them exactly; wording is open, so the model reads it.
Pure functions, no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from netgpt.intents.names import NameTable, name_words
from netgpt.intents.vocabulary import NUMBER_WORDS, WELL_KNOWN_SERVICES

__all__ = [
    "MAX_ENTRIES",
    "MAX_PER_KIND",
    "PLACEHOLDER_KINDS",
    "WELL_KNOWN",
    "Mention",
    "TaggedRequest",
    "placeholder_tokens",
    "tag_request",
]

MAX_ENTRIES = 64  # endpoint entries (mentioned first, then the rest of the network's names)
MAX_PER_KIND = 8  # quantities of one kind in one request
# placeholder letter -> what it stands for
PLACEHOLDER_KINDS: dict[str, str] = {
    "e": "endpoint", "r": "rate", "p": "percent", "m": "ms", "t": "time", "o": "ports",
    "n": "number", "s": "service", "w": "workload",
}
_DEVICE_WORDS = frozenset({"router", "device", "node", "switch", "box", "rtr"})
_SITE_WORDS = frozenset({"site", "region", "pop", "location"})
_GROUP_WORDS = frozenset({"group", "department", "dept", "team", "users", "hosts"})


@dataclass(frozen=True)
class Mention:
    """One placeholder: its token, what it stands for and its normalized value.

    ``value`` is a draft value: an endpoint label (``group:guests``), a float (Mbit/s, fraction,
    ms), an ``HH:MM`` string, a port string, an int, a service or workload name. ``words`` are
    the words shown for it in the context list; ``mentioned`` says whether the text names it.
    """

    token: str
    kind: str
    value: str | float | int
    words: str = ""
    mentioned: bool = True


@dataclass(frozen=True)
class TaggedRequest:
    """A request as the model reads it: ``text`` with placeholders, and the context list."""

    text: str
    mentions: tuple[Mention, ...]
    here: str | None = None  # the operator's site's entry token, when known
    by_token: dict[str, Mention] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_token", {m.token: m for m in self.mentions})

    def prompt(self) -> str:
        """The model's input: context entries, then the text (all lower case, space separated)."""
        ctx = []
        for m in self.mentions:
            if m.kind == "endpoint":
                mark = " here" if m.token == self.here else ""
                ctx.append(f"{m.token} {m.words}{mark}")
        return f"{' ; '.join(ctx)} | {self.text}"

    def of_kind(self, kind: str) -> list[Mention]:
        """The mentions standing for ``kind`` (``endpoint``, ``rate`` ...), in token order."""
        return [m for m in self.mentions if m.kind == kind]


def placeholder_tokens() -> list[str]:
    """Every placeholder token the model's vocabulary needs."""
    out = [f"<e{i}>" for i in range(1, MAX_ENTRIES + 1)]
    for letter in PLACEHOLDER_KINDS:
        if letter != "e":
            out += [f"<{letter}{i}>" for i in range(1, MAX_PER_KIND + 1)]
    return out


# ------------------------------------------------------------------------------------------
# quantities: (pattern, kind, value function); earlier patterns win over overlapping later ones

_NUM = r"(\d+(?:\.\d+)?)"
_RATE_UNITS = {
    "g": 1000.0, "gbps": 1000.0, "gbit/s": 1000.0, "gb/s": 1000.0, "gig": 1000.0,
    "gigs": 1000.0, "gigabit/s": 1000.0, "gigabits per second": 1000.0,
    "gigabit per second": 1000.0, "gigabits": 1000.0,
    "mbps": 1.0, "mbit/s": 1.0, "mb/s": 1.0, "meg": 1.0, "megs": 1.0, "megabit/s": 1.0,
    "megabits per second": 1.0, "megabit per second": 1.0, "megabits": 1.0, "mbit": 1.0,
    "kbps": 0.001, "kbit/s": 0.001, "kb/s": 0.001, "kilobits per second": 0.001,
    "kilobit/s": 0.001,
}
_RATE_RE = "|".join(re.escape(u) for u in sorted(_RATE_UNITS, key=len, reverse=True))
_MS_UNITS = {"ms": 1.0, "msec": 1.0, "msecs": 1.0, "millisecond": 1.0, "milliseconds": 1.0,
             "millis": 1.0, "s": 1000.0, "sec": 1000.0, "secs": 1000.0, "second": 1000.0,
             "seconds": 1000.0}
_MS_RE = "|".join(re.escape(u) for u in sorted(_MS_UNITS, key=len, reverse=True))
_WORD_NUMBERS = {w: n for w, n in NUMBER_WORDS.items() if " " not in w and n >= 2}


def _clock(hour: int, minute: int) -> str:
    return f"{hour:02d}:{minute:02d}"


def _ampm(m: re.Match[str]) -> str:
    hour = int(m.group(1)) % 12
    minute = int(m.group(2) or 0)
    return _clock(hour + (12 if m.group(3) == "pm" else 0), minute)


def _ports(lo: str, hi: str | None) -> str | None:
    a = int(lo)
    b = int(hi) if hi else a
    if not (0 < a <= 65535 and a <= b <= 65535):
        return None
    return str(a) if a == b else f"{a}-{b}"


def _prefix(text: str) -> str | None:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    return text


_QUANTITIES: list[tuple[re.Pattern[str], str, object]] = [
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}/\d{1,2}\b"), "prefix", None),
    (re.compile(r"\b(tcp|udp)\s*/\s*(\d{1,5})(?:\s*-\s*(\d{1,5}))?\b"), "ports_proto", None),
    (re.compile(r"\b(ports?)\s+(\d{1,5})(?:\s*(?:-|to|through|thru)\s*(\d{1,5}))?\b"),
     "ports_word", None),
    (re.compile(r"\b(tcp|udp)\s+(\d{1,5})(?:\s*-\s*(\d{1,5}))?\b(?!\s*(?:%|ms|mbps|gbps))"),
     "ports_proto", None),
    (re.compile(rf"(?<![\w.]){_NUM}\s?({_RATE_RE})(?![\w/])"), "rate", None),
    (re.compile(rf"(?<![\w.]){_NUM}\s?(%|percent|per cent|pct)(?!\w)"), "percent", None),
    (re.compile(rf"(?<![\w.]){_NUM}\s?({_MS_RE})(?!\w)"), "ms", None),
    (re.compile(r"\b([01]?\d|2[0-4]):([0-5]\d)\b"), "clock", None),
    (re.compile(r"\b(1[0-2]|0?[1-9])(?::([0-5]\d))?\s?(am|pm)\b"), "ampm", None),
    (re.compile(r"\b(noon|midday|midnight)\b"), "named_time", None),
    (re.compile(r"\bp(\d{1,2}(?:\.\d+)?)\b"), "percentile", None),
    (re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)\b(?=\s+percentile)"), "percentile", None),
    (re.compile(r"(?<![\w.])(0\.\d+)(?!\w|[.:/]\d)"), "fraction", None),
    (re.compile(r"(?<![\w.:/-])(\d+(?:\.\d+)?)(?!\w|[.:/]\d|-\d)"), "number", None),
    (re.compile(r"\b(" + "|".join(sorted(_WORD_NUMBERS, key=len, reverse=True)) + r")\b"),
     "number_word", None),
]


def _quantity(kind: str, m: re.Match[str]) -> tuple[str, str | float | int, str] | None:
    """(mention kind, value, words to keep in the text before the placeholder)."""
    if kind == "prefix":
        p = _prefix(m.group(0))
        return ("endpoint", f"prefix:{p}", "") if p else None
    if kind == "ports_proto":
        ports = _ports(m.group(2), m.group(3))
        return ("ports", ports, m.group(1)) if ports else None
    if kind == "ports_word":
        ports = _ports(m.group(2), m.group(3))
        return ("ports", ports, m.group(1)) if ports else None
    if kind == "rate":
        value = float(m.group(1)) * _RATE_UNITS[m.group(2)]
        return ("rate", round(value, 6), "") if value > 0 else None
    if kind == "percent":
        value = float(m.group(1)) / 100
        return ("percent", round(value, 6), "") if 0 < value <= 1 else None
    if kind == "ms":
        value = float(m.group(1)) * _MS_UNITS[m.group(2)]
        return ("ms", round(value, 6), "") if value > 0 else None
    if kind == "clock":
        hour, minute = int(m.group(1)), int(m.group(2))
        if hour == 24 and minute:
            return None
        return ("time", _clock(hour, minute), "")
    if kind == "ampm":
        return ("time", _ampm(m), "")
    if kind == "named_time":
        return ("time", "12:00" if m.group(1) != "midnight" else "00:00", "")
    if kind == "percentile":
        return ("number", float(m.group(1)), "")
    if kind == "fraction":
        return ("percent", float(m.group(1)), "")
    if kind == "number":
        text = m.group(1)
        return ("number", float(text) if "." in text else int(text), "")
    if kind == "number_word":
        return ("number", _WORD_NUMBERS[m.group(1)], "")
    raise AssertionError(kind)


# ------------------------------------------------------------------------------------------
# names

# words as the name table splits them ("gen-ai" is one), with a possessive "'s" split off
_TOKEN = re.compile(r"<[a-z]\d+>|[a-z0-9_µ]+(?:-[a-z0-9_]+)*(?:'(?!s\b)[a-z]+)?|'s\b"
                    r"|[^\sa-z0-9_]")


def _one_edit(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by one inserted, dropped, changed or swapped letter."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def _entry_label(kind: str, name: str) -> str:
    return f"{kind}:{name}"


def _reading(readings: list[tuple[str, str]], before: str | None, after: str | None,
             ) -> tuple[str, str]:
    """The reading a keyword next to the name asks for, else the table's first."""
    want = None
    for w in (before, after):
        if w in _DEVICE_WORDS:
            want = "device"
        elif w in _SITE_WORDS:
            want = "site"
        elif w in _GROUP_WORDS:
            want = "group"
    for r in readings:
        if r[0] == want:
            return r
    return readings[0]


class _Builder:
    def __init__(self, names: NameTable) -> None:
        self.names = names
        self.mentions: list[Mention] = []
        self.counts: dict[str, int] = {}
        self.endpoint_tokens: dict[str, str] = {}

    def add(self, kind: str, value: str | float | int, words: str = "") -> str | None:
        if kind == "endpoint":
            label = str(value)
            if label in self.endpoint_tokens:
                return self.endpoint_tokens[label]
            if len(self.endpoint_tokens) >= MAX_ENTRIES:
                return None
            token = f"<e{len(self.endpoint_tokens) + 1}>"
            self.endpoint_tokens[label] = token
            self.mentions.append(Mention(token, "endpoint", label, words or _words_of(label)))
            return token
        letter = next(k for k, v in PLACEHOLDER_KINDS.items() if v == kind)
        n = self.counts.get(letter, 0) + 1
        if n > MAX_PER_KIND:
            return None
        self.counts[letter] = n
        token = f"<{letter}{n}>"
        self.mentions.append(Mention(token, kind, value, words))
        return token


def _words_of(label: str) -> str:
    kind, _, name = label.partition(":")
    return kind if kind == "prefix" else f"{kind} {' '.join(name_words(name))}"


WELL_KNOWN = "well-known:"  # a service the table lacks, read as its protocol and port


def _service_names(names: NameTable) -> set[str]:
    return set(names.services) | set(WELL_KNOWN_SERVICES)


def tag_request(text: str, names: NameTable, *, site: str | None = None,
                extra_aliases: dict[str, str] | None = None) -> TaggedRequest:
    """Tag ``text`` against ``names``; ``site`` is the operator's site (marked ``here``).

    ``extra_aliases`` maps more phrases (a site's known aliases, lower case) to endpoint labels
    such as ``group:lab`` or ``prefix:10.3.0.0/16``.
    """
    b = _Builder(names)
    low = " ".join(text.lower().split())
    # 1. quantities and prefixes, replaced left to right (earlier patterns win overlaps)
    spans: list[tuple[int, int, str]] = []
    taken = [False] * len(low)
    found: list[tuple[int, int, str, str | float | int, str]] = []
    for pattern, kind, _ in _QUANTITIES:
        for m in pattern.finditer(low):
            if any(taken[m.start():m.end()]):
                continue
            q = _quantity(kind, m)
            if q is None:
                continue
            for i in range(m.start(), m.end()):
                taken[i] = True
            found.append((m.start(), m.end(), q[0], q[1], q[2]))
    found.sort()
    for start, end, kind, value, keep in found:
        token = b.add(kind, value)
        if token is None:
            continue
        spans.append((start, end, f"{keep} {token}".strip()))
    pieces, last = [], 0
    for start, end, repl in spans:
        pieces.append(low[last:start])
        pieces.append(f" {repl} ")
        last = end
    pieces.append(low[last:])
    words = _TOKEN.findall("".join(pieces))
    # 2. names: longest known phrase first, then one-edit spellings of long single words
    aliases = {tuple(name_words(k)): v for k, v in (extra_aliases or {}).items()}
    services = _service_names(names)
    longest = max(names.longest, max((len(k) for k in aliases), default=1))
    single = {p: p for p in names.phrases() if " " not in p and len(p) >= 5}
    out: list[str] = []
    i = 0
    while i < len(words):
        matched = False
        for n in range(min(longest, len(words) - i), 0, -1):
            key = tuple(words[i:i + n])
            if any(w.startswith("<") for w in key):
                continue
            before = words[i - 1] if i else None
            after = words[i + n] if i + n < len(words) else None
            label = aliases.get(key)
            if label is None:
                readings = [(str(k), c) for k, c in names.lookup(key)]
                if not readings and n == 1 and key[0] in services:
                    readings = [("service", f"{WELL_KNOWN}{key[0]}")]
                if not readings:
                    continue
                kind, canonical = _reading(readings, before, after)
                if kind == "service":
                    token = b.add("service", canonical)
                elif kind == "workload":
                    token = b.add("workload", canonical)
                else:
                    label = _entry_label(kind, canonical)
            if label is not None:
                token = b.add("endpoint", label)
            if token is None:
                continue
            out.append(token)
            i += n
            matched = True
            break
        if matched:
            continue
        w = words[i]
        if len(w) >= 4 and not w.startswith("<") and w not in single:
            near = [p for p in single if _one_edit(w, p)]
            if len(near) == 1:
                readings = [(str(k), c) for k, c in names.lookup((near[0],))]
                kind, canonical = _reading(readings, words[i - 1] if i else None,
                                           words[i + 1] if i + 1 < len(words) else None)
                token = (b.add(kind, canonical) if kind in ("service", "workload")
                         else b.add("endpoint", _entry_label(kind, canonical)))
                if token is not None:
                    out.append(token)
                    i += 1
                    continue
        out.append(w)
        i += 1
    # 3. endpoints numbered in the order the text names them
    order = [w for w in dict.fromkeys(out) if w.startswith("<e")]
    renumber = {old: f"<e{i}>" for i, old in enumerate(order, 1)}
    out = [renumber.get(w, w) for w in out]
    mentions = [m for m in b.mentions if m.kind != "endpoint"]
    endpoints = sorted((m for m in b.mentions if m.kind == "endpoint"),
                       key=lambda m: int(renumber[m.token][2:-1]))
    b.mentions = mentions + [Mention(renumber[m.token], m.kind, m.value, m.words)
                             for m in endpoints]
    b.endpoint_tokens = {str(m.value): renumber[m.token] for m in endpoints}
    # 4. the rest of the network's names, so unmentioned ones can still be chosen
    for label in _all_endpoint_labels(names):
        if label not in b.endpoint_tokens:
            token = b.add("endpoint", label)
            if token is not None:
                b.mentions[-1] = Mention(token, "endpoint", label, _words_of(label), False)
    here = None
    if site is not None:
        label = _entry_label("site", site)
        here = b.endpoint_tokens.get(label)
    return TaggedRequest(text=" ".join(out), mentions=tuple(b.mentions), here=here)


def _all_endpoint_labels(names: NameTable) -> Sequence[str]:
    # places people give their own names to; devices keep their host names
    return ([_entry_label("group", g) for g in names.groups]
            + [_entry_label("site", s) for s in names.sites])
