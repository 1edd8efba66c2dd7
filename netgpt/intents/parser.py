"""The controlled-language intent parser: English text -> :class:`~netgpt.intents.model.Intent`.

Deterministic and rule-based (no model). The language is documented in
``docs/intent-language.md``. :func:`parse_intent` either returns a formal intent whose names all
resolve against a :class:`~netgpt.intents.names.NameTable`, or raises
:class:`~netgpt.errors.IntentParseError` naming the words it could not place, with the closest
valid reading. It never guesses silently: an unknown word, a number it cannot attach, two
requirements that contradict each other, a value out of range, or an instruction aimed at the
system (ignore the policies, shut every interface) is an error.

How it reads a text: split into sentences (``.``, ``!``, ``?``, new line) and clauses (``;``, and
``and``/``,`` before a new verb); in each clause, group tokens into atoms (names, prefixes, rates,
durations, percentages, counts, ports, days, times, priority); pick the expectation kind from cue
words; give each endpoint a role from the word before it (``from``, ``to``, ``between``,
``through``, ``in``...) or its position; build the expectations; check the whole set.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import time
from typing import Any, Literal

from pydantic import ValidationError

from netgpt.device_config import IPProtocol, PortRange
from netgpt.errors import IntentParseError
from netgpt.intents import vocabulary as V
from netgpt.intents.model import (
    MAX_INTENT_TEXT,
    AccessAction,
    AccessExpectation,
    AnyEndpoint,
    BandwidthExpectation,
    BandwidthMode,
    DeviceEndpoint,
    Endpoint,
    Expectation,
    GroupEndpoint,
    Intent,
    LatencyExpectation,
    LoadBalancingExpectation,
    PrefixEndpoint,
    ReachabilityExpectation,
    ServiceLevelExpectation,
    SiteEndpoint,
    TimeWindow,
    TrafficSelector,
    UtilizationCeilingExpectation,
    WaypointExpectation,
)
from netgpt.intents.names import NameTable

__all__ = ["NameTable", "parse_intent"]

_TOKEN = re.compile(
    r"(?P<prefix>\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?)"
    r"|(?P<time>\d{1,2}:\d{2}(?:\s?[ap]\.?m\.?\b)?|\d{1,2}\s?[ap]\.?m\.?(?![A-Za-z]))"
    r"|(?P<num>\d+(?:\.\d+)?)"
    r"|(?P<word>[A-Za-z_µ][A-Za-z0-9_]*(?:[-'][A-Za-z0-9_]+)*)"
    r"|(?P<nl>\n)"
    r"|(?P<punct>\S)",
    re.IGNORECASE,
)

# role markers: the word before an endpoint says what the endpoint is
_SRC = frozenset({"from", "by", "originating"})
_DST = frozenset(
    {"to", "toward", "towards", "into", "reach", "reaches", "reaching", "with", "onto"}
)
_VIA = frozenset(
    {
        "through", "via", "traverse", "traverses", "traversing", "transit", "transits",
        "involves", "involve", "includes", "include", "cross", "crosses", "thru",
    }
)
_PLACE = frozenset({"in", "at", "for", "on", "within", "inside", "across"})
_TRANSPARENT = frozenset(
    {
        "the", "a", "an", "site", "group", "device", "router", "switch", "node", "subnet",
        "prefix", "network", "host", "hosts", "users", "department", "location", "region",
        "zone", "area",
    }
)
_KEYWORD_KIND = {"site": "site", "group": "group", "device": "device", "router": "device",
                 "switch": "device", "node": "device", "department": "group"}
_PASSIVE = frozenset({"reachable", "accessible", "reached"})
_WHOLE_DAY = (time(0, 0), V.WHOLE_DAY_END)
_ALL_DAYS: tuple[Any, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

AtomKind = Literal[
    "word", "endpoint", "service", "workload", "protocol", "ports", "rate", "duration",
    "percent", "number", "percentile", "days", "times", "priority", "punct",
]


@dataclass
class _Atom:
    kind: AtomKind
    text: str
    start: int
    end: int
    value: Any = None
    used: bool = False


@dataclass
class _Token:
    kind: str
    text: str
    low: str
    start: int
    end: int


@dataclass
class _Clause:
    atoms: list[_Atom]
    inherit_from: _Clause | None = None
    src: list[Endpoint] = field(default_factory=list)
    dst: list[Endpoint] = field(default_factory=list)


def _fail(message: str, atoms: list[_Atom] | None = None, *, reason: str,
          suggestions: tuple[str, ...] = ()) -> IntentParseError:
    atoms = atoms or []
    return IntentParseError(
        message,
        words=tuple(a.text for a in atoms),
        spans=tuple((a.start, a.end) for a in atoms),
        suggestions=suggestions,
        reason=reason,
    )


# ------------------------------------------------------------------------------------------
# tokens and atoms


def _tokenize(text: str) -> list[_Token]:
    out = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "punct"
        out.append(_Token(kind, m.group(0), m.group(0).lower(), m.start(), m.end()))
    return out


def _split_sentences(tokens: list[_Token]) -> list[list[_Token]]:
    sentences: list[list[_Token]] = [[]]
    for t in tokens:
        if t.kind == "nl" or (t.kind == "punct" and t.text in ".!?"):
            if sentences[-1]:
                sentences.append([])
            continue
        sentences[-1].append(t)
    return [s for s in sentences if s]


def _parse_time(tok: _Token) -> time:
    m = re.fullmatch(r"(\d{1,2})(?::(\d{2}))?\s?([ap])?\.?m?\.?", tok.low)
    if m is None:  # pragma: no cover - the tokenizer only yields matching text
        raise _fail(f"cannot read the time {tok.text!r}", reason="unplaced")
    hour, minute = int(m.group(1)), int(m.group(2) or 0)
    if m.group(3):
        if not 1 <= hour <= 12:
            raise _fail(f"{tok.text!r} is not a time; use 1-12 am/pm or 0:00-23:59",
                        reason="out-of-range")
        hour = hour % 12 + (12 if m.group(3) == "p" else 0)
    if hour > 23 or minute > 59:
        raise _fail(f"{tok.text!r} is not a time of day; use 00:00-23:59", reason="out-of-range")
    return time(hour, minute)


def _match_seq(tokens: list[_Token], i: int, seqs: Any) -> tuple[int, Any]:
    """Longest key of ``seqs`` (tuples of lower-case tokens) starting at ``i``: (length, value)."""
    best: tuple[int, Any] = (0, None)
    for key, value in seqs.items():
        n = len(key)
        if n > best[0] and tuple(t.low for t in tokens[i:i + n]) == key:
            best = (n, value)
    return best


def _atoms(tokens: list[_Token], names: NameTable) -> list[_Atom]:
    atoms: list[_Atom] = []
    i = 0
    n = len(tokens)

    def span(a: int, b: int) -> tuple[str, int, int]:
        return (" ".join(t.text for t in tokens[a:b]), tokens[a].start, tokens[b - 1].end)

    while i < n:
        t = tokens[i]
        # prefixes
        if t.kind == "prefix":
            try:
                ep: Endpoint = PrefixEndpoint(prefix=t.text)
            except ValidationError as exc:
                raise _fail(f"{t.text!r} is not an IPv4 prefix such as 10.1.0.0/16",
                            [_Atom("word", t.text, t.start, t.end)],
                            reason="out-of-range") from exc
            atoms.append(_Atom("endpoint", t.text, t.start, t.end, ep))
            i += 1
            continue
        # time ranges: [from|between] T (to|-|until|and) T
        if t.kind == "time":
            start = _parse_time(t)
            j = i + 1
            end = None
            if j + 1 < n and tokens[j].low in ("to", "-", "until", "and", "till") \
                    and tokens[j + 1].kind == "time":
                end = _parse_time(tokens[j + 1])
                j += 2
            if atoms and atoms[-1].kind == "word" and atoms[-1].text.lower() in (
                "from", "between"
            ):
                atoms.pop()
            text, s, e = span(i, j)
            if end is None:
                raise _fail(f"the time {t.text!r} needs an end: write '{t.text} to 17:00'",
                            [_Atom("word", text, s, e)], reason="incomplete")
            atoms.append(_Atom("times", text, s, e, (start, end)))
            i = j
            continue
        # numbers, with a sign, a unit, a percent sign, an ordinal or a range
        number_word = V.NUMBER_WORDS.get(t.low) if t.kind == "word" else None
        if t.kind == "num" or number_word is not None:
            value = float(t.text) if t.kind == "num" else float(number_word or 0)
            s0 = i
            if atoms and atoms[-1].kind == "punct" and atoms[-1].text == "-" and (
                len(atoms) < 2 or atoms[-2].kind not in ("number", "ports")
            ) and atoms[-1].end == t.start:
                value = -value
                s_start = atoms.pop().start
            else:
                s_start = t.start
            j = i + 1
            length, factor = _match_seq(tokens, j, V.RATE_UNITS)
            if length:
                text, _, e = span(s0, j + length)
                atoms.append(_Atom("rate", text, s_start, e, value * factor))
                i = j + length
                continue
            length, factor = _match_seq(tokens, j, V.TIME_UNITS)
            if length:
                text, _, e = span(s0, j + length)
                atoms.append(_Atom("duration", text, s_start, e, value * factor))
                i = j + length
                continue
            pct = _match_seq(tokens, j, {("%",): 1, ("percent",): 1, ("per", "cent"): 1})[0]
            if pct:
                text, _, e = span(s0, j + pct)
                atoms.append(_Atom("percent", text, s_start, e, value))
                i = j + pct
                continue
            if j < n and tokens[j].low in ("th", "st", "nd", "rd") and j + 1 < n \
                    and tokens[j + 1].low == "percentile":
                text, _, e = span(s0, j + 2)
                atoms.append(_Atom("percentile", text, s_start, e, value))
                i = j + 2
                continue
            atoms.append(_Atom("number", t.text, s_start, t.end, value))
            i = j
            continue
        if t.kind == "word":
            # percentiles: p95, 95th percentile handled above, median
            m = re.fullmatch(r"p(\d{1,2}(?:\.\d+)?)", t.low)
            if m:
                atoms.append(_Atom("percentile", t.text, t.start, t.end, float(m.group(1))))
                i += 1
                continue
            m = re.fullmatch(r"(\d{1,2})(?:th|st|nd|rd)", t.low)
            if m and i + 1 < n and tokens[i + 1].low == "percentile":
                text, s, e = span(i, i + 2)
                atoms.append(_Atom("percentile", text, s, e, float(m.group(1))))
                i += 2
                continue
            if t.low == "median":
                atoms.append(_Atom("percentile", t.text, t.start, t.end, 50.0))
                i += 1
                continue
            # day sets
            days = _days_at(tokens, i)
            if days is not None:
                count, value_days = days
                text, s, e = span(i, i + count)
                atoms.append(_Atom("days", text, s, e, value_days))
                i += count
                continue
            hours = _match_seq(tokens, i, {
                ("business", "hours"): 1, ("office", "hours"): 1, ("working", "hours"): 1,
            })[0]
            if hours:
                text, s, e = span(i, i + hours)
                atoms.append(_Atom("times", text, s, e, (time(9, 0), time(17, 0))))
                if not any(a.kind == "days" for a in atoms):
                    atoms.append(_Atom("days", text, s, e, _ALL_DAYS[:5]))
                    atoms[-1].used = True
                i += hours
                continue
            # priority
            prio = _priority_at(tokens, i)
            if prio is not None:
                count, level = prio
                text, s, e = span(i, i + count)
                atoms.append(_Atom("priority", text, s, e, level))
                i += count
                continue
            # protocols and ports
            if t.low in ("tcp", "udp", "icmp", "ping"):
                proto = IPProtocol.ICMP if t.low == "ping" else IPProtocol(t.low)
                atoms.append(_Atom("protocol", t.text, t.start, t.end, proto))
                i += 1
                if i < n and tokens[i].kind == "num" and proto is not IPProtocol.ICMP:
                    j = i + 1
                    lower = upper = tokens[i].text
                    if j + 1 < n and tokens[j].low in ("-", "to", "through", "thru") \
                            and tokens[j + 1].kind == "num":
                        upper = tokens[j + 1].text
                        j += 2
                    text, s, e = span(i, j)
                    atoms.append(_Atom("ports", text, s, e, _ports(lower, upper, text, s, e)))
                    i = j
                continue
            if t.low in ("port", "ports") and i + 1 < n and tokens[i + 1].kind == "num":
                j = i + 1
                lower = upper = tokens[j].text
                j += 1
                if j + 1 < n and tokens[j].low in ("-", "to", "through", "thru", "until") \
                        and tokens[j + 1].kind == "num":
                    upper = tokens[j + 1].text
                    j += 2
                text, s, e = span(i, j)
                atoms.append(_Atom("ports", text, s, e, _ports(lower, upper, text, s, e)))
                i = j
                continue
            # any-endpoint phrases
            length, _ = _match_seq(tokens, i, {k: True for k in V.ANY_WORDS})
            if length:
                text, s, e = span(i, i + length)
                atoms.append(_Atom("endpoint", text, s, e, AnyEndpoint()))
                i += length
                continue
            # names, longest first
            found = None
            for size in range(min(names.longest, n - i), 0, -1):
                words = tuple(x.low for x in tokens[i:i + size])
                readings = names.lookup(words)
                if readings:
                    found = (size, readings)
                    break
            if found is not None:
                size, readings = found
                prefer = None
                if atoms and atoms[-1].kind == "word":
                    prefer = _KEYWORD_KIND.get(atoms[-1].text.lower())
                if i + size < n and tokens[i + size].low in _KEYWORD_KIND:
                    prefer = prefer or _KEYWORD_KIND[tokens[i + size].low]
                kind, canonical = next(
                    (r for r in readings if r[0] == prefer), readings[0]
                )
                text, s, e = span(i, i + size)
                if kind == "service":
                    atoms.append(_Atom("service", text, s, e, canonical))
                elif kind == "workload":
                    atoms.append(_Atom("workload", text, s, e, canonical))
                else:
                    atoms.append(_Atom("endpoint", text, s, e, _endpoint(kind, canonical)))
                i += size
                continue
            if t.low in V.WELL_KNOWN_SERVICES:
                proto_name, port = V.WELL_KNOWN_SERVICES[t.low]
                atoms.append(_Atom("ports", t.text, t.start, t.end,
                                   (IPProtocol(proto_name), PortRange(lower=port, upper=port))))
                i += 1
                continue
            atoms.append(_Atom("word", t.text, t.start, t.end))
            i += 1
            continue
        atoms.append(_Atom("punct", t.text, t.start, t.end))
        i += 1
    return atoms


def _ports(lower: str, upper: str, text: str, s: int, e: int) -> tuple[None, PortRange]:
    try:
        return (None, PortRange(lower=int(lower), upper=int(upper)))
    except ValidationError as exc:
        raise _fail(f"{text!r} is not a port range: ports are 0-65535, lower-upper",
                    [_Atom("word", text, s, e)], reason="out-of-range") from exc


def _endpoint(kind: str, name: str) -> Endpoint:
    if kind == "device":
        return DeviceEndpoint(name=name)
    if kind == "group":
        return GroupEndpoint(name=name)
    return SiteEndpoint(name=name)


def _days_at(tokens: list[_Token], i: int) -> tuple[int, tuple[Any, ...]] | None:
    low = tokens[i].low
    if low in ("every", "each") and i + 1 < len(tokens) and tokens[i + 1].low == "day":
        return 2, _ALL_DAYS
    if low in V.DAY_GROUPS:
        return 1, V.DAY_GROUPS[low]
    if low == "business" and i + 1 < len(tokens) and tokens[i + 1].low == "days":
        return 2, _ALL_DAYS[:5]
    if low not in V.WEEKDAYS:
        return None
    first = V.WEEKDAYS[low]
    j = i + 1
    if j + 1 < len(tokens) and tokens[j].low in ("-", "to", "through", "thru", "until") \
            and tokens[j + 1].low in V.WEEKDAYS:
        last = V.WEEKDAYS[tokens[j + 1].low]
        a, b = _ALL_DAYS.index(first), _ALL_DAYS.index(last)
        days = _ALL_DAYS[a:b + 1] if a <= b else _ALL_DAYS[a:] + _ALL_DAYS[:b + 1]
        return j + 2 - i, days
    days_list = [first]
    while j + 1 < len(tokens) and tokens[j].low in (",", "and", "or") \
            and tokens[j + 1].low in V.WEEKDAYS:
        days_list.append(V.WEEKDAYS[tokens[j + 1].low])
        j += 2
    return j - i, tuple(d for d in _ALL_DAYS if d in days_list)


def _priority_at(tokens: list[_Token], i: int) -> tuple[int, int] | None:
    low = tokens[i].low
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    if low == "priority" and nxt is not None:
        j = i + 1
        if nxt.text in (":", "=", "of", "is") and j + 1 < len(tokens):
            j += 1
        target = tokens[j]
        if target.kind == "num":
            level = float(target.text)
            if not level.is_integer() or not 1 <= level <= 10:
                raise _fail(f"priority {target.text} is out of range; use 1-10 or "
                            "low/medium/high/critical",
                            [_Atom("word", target.text, target.start, target.end)],
                            reason="out-of-range")
            return j + 1 - i, int(level)
        if target.low in V.PRIORITY_WORDS:
            return j + 1 - i, V.PRIORITY_WORDS[target.low]
        return None
    if low in V.PRIORITY_WORDS and nxt is not None and nxt.low == "priority":
        return 2, V.PRIORITY_WORDS[low]
    return None


# ------------------------------------------------------------------------------------------
# clauses


def _words(atoms: list[_Atom]) -> set[str]:
    return {a.text.lower() for a in atoms if a.kind == "word"}


def _split_clauses(atoms: list[_Atom]) -> list[list[_Atom]]:
    clauses: list[list[_Atom]] = [[]]
    k = 0
    while k < len(atoms):
        a = atoms[k]
        if a.kind == "punct" and a.text == ";":
            clauses.append([])
            k += 1
            continue
        if a.kind in ("punct", "word") and a.text.lower() in (",", "and"):
            j = k
            while j < len(atoms) and atoms[j].text.lower() in (",", "and"):
                j += 1
            if j < len(atoms) and atoms[j].kind == "word" \
                    and atoms[j].text.lower() in V.CLAUSE_STARTERS \
                    and _has_cue(clauses[-1]) and _has_cue(atoms[j:]) \
                    and clauses[-1][0].text.lower() != "to":
                clauses.append([])
                k = j
                continue
        clauses[-1].append(a)
        k += 1
    return [c for c in clauses if c]


def _has_cue(atoms: list[_Atom]) -> bool:
    words = _words(atoms)
    cues = (V.REACH | V.ACCESS_ALLOW | V.ACCESS_BLOCK | V.WAYPOINT | V.LB | V.UTILIZATION
            | V.LATENCY | V.BANDWIDTH_CAP | V.BANDWIDTH_GUARANTEE | V.ISOLATE)
    return bool(words & cues) or any(
        a.kind in ("rate", "duration", "percent", "workload") for a in atoms
    )


_Kind = Literal[
    "slo", "latency", "utilization", "bandwidth", "lb", "waypoint", "access", "reach", "none"
]


def _kind(atoms: list[_Atom]) -> _Kind:
    words = _words(atoms)
    kinds = {a.kind for a in atoms}
    if "workload" in kinds:
        return "slo"
    if words & V.LATENCY or "duration" in kinds:
        return "latency"
    if words & {"utilization", "utilisation", "utilized", "utilised", "usage"} or (
        words & {"load", "loaded", "link", "links"}
        and ("percent" in kinds or _fraction(atoms) is not None)
    ):
        return "utilization"
    if "rate" in kinds:
        return "bandwidth"
    counted_paths = any(
        a.kind == "number" and _next_word(atoms, a) in V.PATH_WORDS for a in atoms
    ) or ("number" in kinds and words & {"paths", "routes"})
    if words & V.LB or counted_paths:
        return "lb"
    if words & (V.WAYPOINT | {"by", "way"}) and (words & V.WAYPOINT or {"by", "way"} <= words):
        return "waypoint"
    if words & (V.ACCESS_ALLOW | V.ACCESS_BLOCK) or kinds & {"service", "protocol", "ports"} \
            or kinds & {"days", "times"}:
        return "access"
    if words & V.REACH or words & V.ISOLATE:
        return "reach"
    return "none"


def _next_word(atoms: list[_Atom], atom: _Atom) -> str:
    idx = atoms.index(atom)
    for b in atoms[idx + 1:]:
        if b.kind == "word":
            low = b.text.lower()
            if low in ("equal-cost", "different", "distinct", "disjoint", "parallel",
                       "separate", "independent", "equal", "cost"):
                continue
            return low
        return ""
    return ""


def _fraction(atoms: list[_Atom]) -> _Atom | None:
    for a in atoms:
        if a.kind == "number" and 0 < a.value <= 1 and "." in a.text:
            return a
    return None


@dataclass
class _Roles:
    src: list[tuple[_Atom, Endpoint]] = field(default_factory=list)
    dst: list[tuple[_Atom, Endpoint]] = field(default_factory=list)
    via: list[tuple[_Atom, Endpoint]] = field(default_factory=list)
    place: list[tuple[_Atom, Endpoint]] = field(default_factory=list)
    unmarked: list[list[tuple[_Atom, Endpoint]]] = field(default_factory=list)


def _roles(atoms: list[_Atom], kind: _Kind) -> _Roles:
    roles = _Roles()
    words = _words(atoms)
    isolate = bool(words & V.ISOLATE)
    marker: str | None = None
    joined = False
    last_role: str | None = None
    between_count = 0
    k = 0
    while k < len(atoms):
        a = atoms[k]
        low = a.text.lower()
        if a.kind == "word" and low == "by" and k + 2 < len(atoms) \
                and atoms[k + 1].text.lower() == "way" and atoms[k + 2].text.lower() == "of":
            marker, joined = "via", False
            for b in atoms[k:k + 3]:
                b.used = True
            k += 3
            continue
        if a.kind == "endpoint":
            role: str
            if joined and last_role is not None:
                role = last_role
                if last_role == "between":
                    role = "dst" if between_count == 1 else "src"
            else:
                role = _marker_role(marker, kind, isolate)
            if role == "between":
                between_count = 0
            if role == "between" or (joined and last_role == "between"):
                between_count += 1
                bucket = roles.src if between_count == 1 else roles.dst
                last_role = "between"
            elif role == "none":
                if not (joined and last_role == "none" and roles.unmarked):
                    roles.unmarked.append([])
                bucket = roles.unmarked[-1]
                last_role = role
            else:
                bucket = {
                    "src": roles.src, "dst": roles.dst, "via": roles.via, "place": roles.place,
                }[role]
                last_role = role
            bucket.append((a, a.value))
            a.used = True
            marker, joined = None, False
            k += 1
            continue
        if a.kind in ("word", "punct") and low in V.LIST_JOINERS and last_role is not None:
            joined = True
        elif a.kind == "word" and low in _TRANSPARENT:
            pass
        elif a.kind == "word" and (low in _SRC or low in _DST or low in _VIA or low in _PLACE
                                   or low == "between" or low in ("at",)):
            if not (low == "through" and marker == "via"):
                marker = low
            joined = False
            last_role = None
        elif a.kind == "word" and low in ("passes", "pass", "passing", "goes", "go"):
            pass
        else:
            joined = False
            if a.kind != "word":
                last_role = None
        k += 1
    return roles


def _marker_role(marker: str | None, kind: _Kind, isolate: bool) -> str:
    if marker is None:
        return "none"
    if marker == "between":
        return "between"
    if marker in _SRC:
        if marker == "from" and isolate:
            return "dst"
        return "src"
    if marker in _DST:
        return "dst"
    if marker in _VIA or marker == "via":
        return "via"
    if marker in _PLACE:
        if kind in ("utilization", "slo"):
            return "place"
        if kind == "waypoint" and marker == "at":
            return "via"
        return "none"
    return "none"


# ------------------------------------------------------------------------------------------
# building expectations


def _build(cls: Any, atoms: list[_Atom], **fields: Any) -> Any:
    try:
        return cls(**fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
            for err in exc.errors()
        )
        raise _fail(f"out of range: {problems}", atoms, reason="out-of-range") from exc


def _one(atoms: list[_Atom], kinds: tuple[str, ...], what: str, example: str,
         clause: list[_Atom]) -> _Atom:
    found = [a for a in atoms if a.kind in kinds]
    if not found:
        text = " ".join(a.text for a in clause)
        raise _fail(f"{what} is missing in {text!r}; for example: {example}", clause[:1],
                    reason="incomplete")
    if len(found) > 1:
        raise _fail(f"more than one {what} given: " + ", ".join(repr(a.text) for a in found),
                    found, reason="contradiction")
    found[0].used = True
    return found[0]


def _names_of(pairs: list[tuple[_Atom, Endpoint]], what: str) -> tuple[str, ...]:
    out = []
    for atom, ep in pairs:
        if isinstance(ep, DeviceEndpoint | SiteEndpoint):
            out.append(ep.name)
        else:
            raise _fail(f"{atom.text!r} cannot be {what}: name a device or a site", [atom],
                        reason="unplaced")
    return tuple(out)


def _selector(atoms: list[_Atom], src: Endpoint, dst: Endpoint) -> TrafficSelector:
    service = [a for a in atoms if a.kind == "service"]
    protos = [a for a in atoms if a.kind == "protocol"]
    ports = [a for a in atoms if a.kind == "ports"]
    for group in (service, protos, ports):
        if len(group) > 1:
            raise _fail("give one service, protocol or port range per requirement: "
                        + ", ".join(repr(a.text) for a in group), group, reason="contradiction")
    fields: dict[str, Any] = {"source": src, "destination": dst}
    if service:
        service[0].used = True
        fields["service"] = service[0].value
    protocol: IPProtocol | None = None
    if protos:
        protos[0].used = True
        protocol = protos[0].value
    if ports:
        ports[0].used = True
        implied, prange = ports[0].value
        if implied is not None:
            if protocol is not None and protocol != implied:
                raise _fail(f"{ports[0].text!r} runs over {implied.value}, not {protocol.value}",
                            [protos[0], ports[0]], reason="contradiction")
            protocol = implied
        if protocol is None:
            raise _fail(f"{ports[0].text!r} needs a protocol: write 'tcp {ports[0].text}' or "
                        f"'udp {ports[0].text}'", [ports[0]], reason="incomplete")
        fields["ports"] = prange
    if protocol is not None:
        fields["protocol"] = protocol
    return _build(TrafficSelector, atoms, **fields)


def _window(atoms: list[_Atom]) -> TimeWindow | None:
    days = [a for a in atoms if a.kind == "days"]
    times = [a for a in atoms if a.kind == "times"]
    if not days and not times:
        return None
    if len([d for d in days if not d.used]) > 1 or len(times) > 1:
        raise _fail("give one time window per requirement", days + times,
                    reason="contradiction")
    for a in days + times:
        a.used = True
    day_set = days[0].value if days else _ALL_DAYS
    start, end = times[0].value if times else _WHOLE_DAY
    return _build(TimeWindow, days + times, days=day_set, start=start, end=end)


def _threshold_is_floor(words: set[str], negated: bool) -> bool:
    upward = bool(words & {"above", "over", "exceed", "exceeds", "beyond", "more", "least"})
    downward = bool(words & {"under", "below", "beneath", "less", "within", "most", "max",
                             "maximum", "lower"})
    return upward and not downward and not negated


def _clause_expectations(
    atoms: list[_Atom], previous: tuple[list[Endpoint], list[Endpoint]] | None
) -> tuple[list[Expectation], tuple[list[Endpoint], list[Endpoint]] | None]:
    kind = _kind(atoms)
    words = _words(atoms)
    negated = bool(words & V.NEGATION)
    for a in atoms:
        if a.kind == "priority":
            a.used = True
    if kind == "none":
        content = [a for a in atoms if a.kind not in ("punct", "priority")
                   and not (a.kind == "word" and a.text.lower() in V.FILLER)]
        if content:
            raise _fail("no requirement found: say what must hold, e.g. 'A must reach B', "
                        "'block telnet from A to B', 'keep links under 70% utilization'",
                        content, reason="incomplete")
        return [], previous
    roles = _roles(atoms, kind)
    src = [e for _, e in roles.src]
    dst = [e for _, e in roles.dst]
    passive = bool(words & _PASSIVE)
    for run in list(roles.unmarked):
        eps = [ep for _, ep in run]
        if kind in ("utilization", "slo"):
            roles.place.extend(run)
        elif passive and not dst:
            dst.extend(eps)
        elif not src and (not passive or dst):
            src.extend(eps)
        elif not dst:
            dst.extend(eps)
        elif kind == "waypoint":
            roles.via.extend(run)
        else:
            raise _fail(f"could not tell what {run[0][0].text!r} is in this requirement "
                        "(source, destination or waypoint); add 'from', 'to' or 'through'",
                        [run[0][0]], reason="unplaced")
    roles.unmarked.clear()
    pairwise = kind in ("reach", "waypoint", "lb", "latency")
    if pairwise and not src and not dst and previous is not None:
        src, dst = list(previous[0]), list(previous[1])
    if kind in ("access", "bandwidth"):
        src = src or [AnyEndpoint()]
        dst = dst or [AnyEndpoint()]
    if roles.via and kind != "waypoint":
        raise _fail("'through'/'via' only makes sense for a waypoint requirement",
                    [roles.via[0][0]], reason="unplaced")
    if roles.place and kind not in ("utilization", "slo"):
        raise _fail(f"could not place {roles.place[0][0].text!r}", [roles.place[0][0]],
                    reason="unplaced")
    if pairwise and (not src or not dst):
        text = " ".join(a.text for a in atoms)
        side = "source ('from X')" if not src else "destination ('to Y')"
        raise _fail(f"{text!r} needs a {side}", atoms[:1], reason="incomplete")

    out: list[Expectation] = []
    pairs = [(s, d) for s in src for d in dst]
    if kind == "reach":
        reachable = not (negated or words & V.ISOLATE or words & V.ACCESS_BLOCK)
        for s, d in pairs:
            out.append(_build(ReachabilityExpectation, atoms, source=s, destination=d,
                              reachable=reachable))
    elif kind == "waypoint":
        via = _names_of(roles.via, "a waypoint")
        if not via:
            raise _fail("a waypoint requirement needs 'through W'", atoms[:1],
                        reason="incomplete")
        if negated:
            raise _fail("'must not pass through' cannot be expressed yet; name the waypoints "
                        "traffic must take", atoms, reason="unplaced")
        for s, d in pairs:
            out.append(_build(WaypointExpectation, atoms, source=s, destination=d, via=via))
    elif kind == "lb":
        count = _one(atoms, ("number",), "the number of paths", "'over 3 paths'", atoms)
        if not float(count.value).is_integer():
            raise _fail(f"{count.text!r} paths is not a whole number", [count],
                        reason="out-of-range")
        for s, d in pairs:
            out.append(_build(LoadBalancingExpectation, [count], source=s, destination=d,
                              paths=int(count.value)))
    elif kind == "bandwidth":
        rate = _one(atoms, ("rate",), "a rate", "'20 Mbit/s'", atoms)
        cap = bool(words & V.BANDWIDTH_CAP) or (negated and "more" in words) or (
            "up" in words and "to" in words)
        guarantee = bool(words & V.BANDWIDTH_GUARANTEE)
        if cap == guarantee:
            raise _fail("say whether the rate is a guarantee ('guarantee/reserve/at least') or "
                        "a cap ('cap/limit/at most')", [rate], reason="incomplete")
        mode = BandwidthMode.CAP if cap else BandwidthMode.GUARANTEE
        for s, d in pairs:
            out.append(_build(BandwidthExpectation, [rate], mode=mode,
                              traffic=_selector(atoms, s, d), rate_mbps=rate.value))
    elif kind == "access":
        allow = bool(words & V.ACCESS_ALLOW)
        block = bool(words & V.ACCESS_BLOCK)
        if allow == block:
            if allow:
                raise _fail("both allow and block in one requirement; split it in two",
                            atoms, reason="contradiction")
            block = negated
            allow = not negated and bool(words & V.REACH)
            if not (allow or block):
                raise _fail("say whether to allow or block this traffic", atoms[:1],
                            reason="incomplete")
        action = AccessAction.BLOCK if (block or (allow and negated)) else AccessAction.ALLOW
        window = _window(atoms)
        for s, d in pairs:
            out.append(_build(AccessExpectation, atoms, action=action,
                              traffic=_selector(atoms, s, d), window=window))
            if "only" in words and action is AccessAction.ALLOW:
                out.append(_build(AccessExpectation, atoms, action=AccessAction.BLOCK,
                                  traffic=TrafficSelector(source=s, destination=d),
                                  window=window))
    elif kind == "utilization":
        value_atom = [a for a in atoms if a.kind == "percent"] or (
            [f] if (f := _fraction(atoms)) else [])
        if not value_atom:
            raise _fail("a utilization ceiling needs a value such as '70%' or '0.7'", atoms[:1],
                        reason="incomplete")
        va = _one(value_atom, ("percent", "number"), "utilization value", "'70%'", atoms)
        fraction = va.value / 100 if va.kind == "percent" else va.value
        if not 0 < fraction <= 1:
            raise _fail(f"utilization {va.text!r} is out of range; give 1-100% or 0.01-1",
                        [va], reason="out-of-range")
        if _threshold_is_floor(words, negated):
            raise _fail("a utilization objective is a ceiling: write 'under/below'", [va],
                        reason="unplaced")
        service = next((a for a in atoms if a.kind == "service"), None)
        if service:
            service.used = True
        fields: dict[str, Any] = {"max_utilization": round(fraction, 6),
                                  "service": service.value if service else None}
        if src or dst:
            if not (src and dst) or len(src) > 1 or len(dst) > 1:
                raise _fail("a path needs one source and one destination ('between A and B')",
                            atoms[:1], reason="incomplete")
            fields.update(source=src[0], destination=dst[0])
        else:
            fields["region"] = _names_of(roles.place, "a region")
        out.append(_build(UtilizationCeilingExpectation, [va], **fields))
    elif kind == "latency":
        dur = _one(atoms, ("duration",), "a latency bound", "'below 30 ms'", atoms)
        if _threshold_is_floor(words, negated):
            raise _fail("a latency objective is an upper bound: write 'under/below'", [dur],
                        reason="unplaced")
        pct = [a for a in atoms if a.kind == "percentile"]
        service = next((a for a in atoms if a.kind == "service"), None)
        extra: dict[str, Any] = {}
        if pct:
            extra["percentile"] = _one(pct, ("percentile",), "percentile", "'p95'", atoms).value
        if service:
            service.used = True
            extra["service"] = service.value
        for s, d in pairs:
            out.append(_build(LatencyExpectation, [dur], source=s, destination=d,
                              max_ms=dur.value, **extra))
    elif kind == "slo":
        workload = _one(atoms, ("workload",), "a workload", "'the generative service'", atoms)
        scope: Endpoint = AnyEndpoint()
        places = roles.place + roles.src
        if len(places) > 1:
            raise _fail("an SLO takes one scope ('for users at site X')",
                        [p[0] for p in places], reason="contradiction")
        if places:
            scope = places[0][1]
        metric: str
        if words & V.SLO_AVAILABILITY:
            va = _one(atoms, ("percent", "number"), "availability target", "'99.9%'", atoms)
            metric, target = "availability", va.value / 100 if va.kind == "percent" else va.value
            target = round(target, 9)
        elif words & V.SLO_THROUGHPUT or any(a.kind == "rate" for a in atoms):
            va = _one(atoms, ("rate",), "throughput target", "'100 Mbps'", atoms)
            metric, target = "throughput_mbps", va.value
        else:
            va = _one(atoms, ("duration",), "latency target", "'under 300 ms'", atoms)
            pct = [a for a in atoms if a.kind == "percentile"]
            level = _one(pct, ("percentile",), "percentile", "'p95'", atoms).value if pct else 95
            if level not in (50, 95):
                raise _fail(f"SLOs track p50 or p95 latency, not p{level:g}", pct,
                            reason="out-of-range")
            metric, target = f"latency_p{int(level)}_ms", va.value
        if target <= 0 or (metric == "availability" and target > 1):
            raise _fail(f"{va.text!r} is out of range for {metric}", [va],
                        reason="out-of-range")
        out.append(_build(ServiceLevelExpectation, [va], workload=workload.value,
                          metric=metric, target=target, scope=scope))
    return out, ((src, dst) if src and dst else previous)


# ------------------------------------------------------------------------------------------
# checks over the whole text


def _key(ep: Any) -> str:
    return ep.model_dump_json() if ep is not None else "-"


def _contradictions(exps: list[Expectation]) -> None:
    reach: dict[tuple[str, str], bool] = {}
    access: dict[str, AccessAction] = {}
    paths: dict[tuple[str, str], int] = {}
    rates: dict[tuple[str, str], float] = {}
    ceilings: dict[str, float] = {}

    def clash(message: str) -> IntentParseError:
        return _fail(f"contradictory requirements: {message}", reason="contradiction")

    for e in exps:
        if isinstance(e, ReachabilityExpectation):
            k = (_key(e.source), _key(e.destination))
            if reach.setdefault(k, e.reachable) != e.reachable:
                raise clash(f"{_label(e.source)} must and must not reach {_label(e.destination)}")
        elif isinstance(e, AccessExpectation):
            ak = e.traffic.model_dump_json() + (e.window.model_dump_json() if e.window else "")
            if access.setdefault(ak, e.action) != e.action:
                raise clash(f"the same traffic from {_label(e.traffic.source)} to "
                            f"{_label(e.traffic.destination)} is both allowed and blocked")
        elif isinstance(e, LoadBalancingExpectation):
            k = (_key(e.source), _key(e.destination))
            if paths.setdefault(k, e.paths) != e.paths:
                raise clash(f"traffic from {_label(e.source)} to {_label(e.destination)} "
                            f"split over {paths[k]} and over {e.paths} paths")
        elif isinstance(e, BandwidthExpectation):
            tk = (e.traffic.model_dump_json(), e.mode.value)
            other = (tk[0], "cap" if e.mode is BandwidthMode.GUARANTEE else "guarantee")
            if tk in rates and rates[tk] != e.rate_mbps:
                raise clash(f"two different {e.mode.value}s for the same traffic")
            rates[tk] = e.rate_mbps
            if other in rates:
                g, c = (e.rate_mbps, rates[other]) if e.mode is BandwidthMode.GUARANTEE \
                    else (rates[other], e.rate_mbps)
                if g > c:
                    raise clash(f"a guarantee of {g:g} Mbit/s above a cap of {c:g} Mbit/s")
        elif isinstance(e, UtilizationCeilingExpectation | LatencyExpectation):
            dump = e.model_dump()
            value = dump.pop("max_utilization", None) or dump.pop("max_ms", None)
            ck = repr(sorted(dump.items()))
            if ck in ceilings and ceilings[ck] != value:
                raise clash(f"two different ceilings ({ceilings[ck]:g} and {value:g}) for the "
                            f"same {e.kind.replace('_', ' ')}")
            ceilings[ck] = float(value or 0)
    for e in exps:
        if isinstance(e, WaypointExpectation | LoadBalancingExpectation):
            k = (_key(e.source), _key(e.destination))
            if reach.get(k) is False:
                raise clash(f"{_label(e.source)} must not reach {_label(e.destination)}, "
                            f"yet its traffic there has a {e.kind.replace('_', ' ')} requirement")


def _label(ep: Any) -> str:
    if isinstance(ep, PrefixEndpoint):
        return ep.prefix
    if isinstance(ep, AnyEndpoint):
        return "anywhere"
    return f"{ep.kind} {ep.name}"


def _unplaced(atoms: list[_Atom], names: NameTable, text: str, *, words_only: bool) -> None:
    known = (V.FILLER | V.NEGATION | V.ISOLATE | V.REACH | V.ACCESS_ALLOW | V.ACCESS_BLOCK
             | V.WAYPOINT | V.LB | V.PATH_WORDS | V.UTILIZATION | V.LATENCY
             | V.SLO_AVAILABILITY | V.SLO_THROUGHPUT | V.BANDWIDTH_CAP
             | V.BANDWIDTH_GUARANTEE | V.THRESHOLD | _SRC | _DST | _VIA | _PLACE
             | _TRANSPARENT | V.LIST_JOINERS | set(_KEYWORD_KIND) | {"way", "between", "port",
                                                                     "ports", "priority"})
    bad = [a for a in atoms
           if (a.kind == "word" and a.text.lower() not in known)
           or (not words_only and not a.used
               and a.kind in ("number", "rate", "duration", "percent", "percentile", "times",
                              "days", "service", "protocol", "ports", "workload", "endpoint"))]
    if not bad:
        return
    vocabulary = sorted(known - {"a", "an", "as"})
    details = []
    reading = text
    for a in reversed(bad):
        if a.kind != "word":
            details.append(f"{a.text!r} (at {a.start}-{a.end}) does not fit this requirement")
            continue
        names_close = names.suggest(a.text)
        words_close = difflib.get_close_matches(a.text.lower(), vocabulary, n=2, cutoff=0.8)
        close = names_close or words_close
        if close:
            details.append(f"unknown {'name' if names_close else 'word'} {a.text!r} "
                           f"(at {a.start}-{a.end}); closest: {', '.join(close)}")
            reading = reading[:a.start] + close[0] + reading[a.end:]
        else:
            details.append(f"could not place {a.text!r} (at {a.start}-{a.end})")
    details.reverse()
    reason = "unknown-name" if any("unknown name" in d for d in details) else "unplaced"
    raise _fail("; ".join(details), bad, reason=reason,
                suggestions=(reading,) if reading != text else ())


def _refusal(text: str) -> None:
    low = text.lower()
    for pattern in V.REFUSAL_PATTERNS:
        m = re.search(pattern, low)
        if m:
            raise IntentParseError(
                f"refused: {text[m.start():m.end()]!r} is an instruction to the system, not a "
                "network requirement; policies cannot be bypassed and bulk shutdowns or "
                "config deletion are not intents. State the outcome you want instead "
                "(e.g. 'block telnet from guests to servers')",
                words=(text[m.start():m.end()],),
                spans=((m.start(), m.end()),),
                reason="refused",
            )


def _no_hidden_characters(text: str) -> None:
    """Refuse control and format characters (NUL, bidi overrides, zero-width spaces).

    They are invisible where the operator reads the text, so what is shown and what is parsed
    could differ (a right-to-left override can make a sentence read backwards). Tabs and line
    breaks are fine.
    """
    for i, ch in enumerate(text):
        if ch not in "\t\n\r" and unicodedata.category(ch) in ("Cc", "Cf"):
            raise IntentParseError(
                f"the intent text holds an invisible character U+{ord(ch):04X} "
                f"({unicodedata.name(ch, 'a control character')}) at position {i}: what is "
                "shown could differ from what is read; retype the intent without it",
                words=(ch,), spans=((i, i + 1),), reason="hidden-character")


def parse_intent(text: str, names: NameTable, *, owner: str = "operator") -> Intent:
    """Parse ``text`` in the controlled intent language into a formal :class:`Intent`.

    Names resolve against ``names`` (case-insensitive). Several sentences give one intent with
    several expectations. Raises :class:`IntentParseError` (``reason`` says which class of
    problem; ``words``/``spans`` point at the text; ``suggestions`` hold the closest valid
    reading) for empty text, unknown words or names, incomplete or contradictory requirements,
    out-of-range numbers, and instructions aimed at the system.
    """
    if not text or not text.strip():
        raise IntentParseError("the intent text is empty; say what must hold, e.g. "
                               "'engineering must reach servers'", reason="empty")
    if len(text) > MAX_INTENT_TEXT:
        raise IntentParseError(f"the intent text has {len(text)} characters; at most "
                               f"{MAX_INTENT_TEXT}: state one intent in fewer words",
                               reason="out-of-range")
    _no_hidden_characters(text)
    _refusal(text)
    tokens = _tokenize(text)
    expectations: list[Expectation] = []
    priorities: list[_Atom] = []
    all_atoms: list[_Atom] = []
    for sentence in _split_sentences(tokens):
        atoms = _atoms(sentence, names)
        _unplaced(atoms, names, text, words_only=True)
        all_atoms.extend(atoms)
        priorities.extend(a for a in atoms if a.kind == "priority")
        previous: tuple[list[Endpoint], list[Endpoint]] | None = None
        for clause in _split_clauses(atoms):
            found, previous = _clause_expectations(clause, previous)
            expectations.extend(found)
    _unplaced(all_atoms, names, text, words_only=False)
    if len({p.value for p in priorities}) > 1:
        raise _fail("two different priorities: " + ", ".join(repr(p.text) for p in priorities),
                    priorities, reason="contradiction")
    unique: list[Expectation] = []
    for e in expectations:
        if e not in unique:
            unique.append(e)
    if not unique:
        raise IntentParseError("no requirement found in the text; say what must hold, e.g. "
                               "'engineering must reach servers'", reason="incomplete")
    _contradictions(unique)
    if len(unique) > 100:
        raise IntentParseError(f"{len(unique)} requirements in one intent; at most 100",
                               reason="out-of-range")
    return Intent(
        text=text[:4000],
        expectations=tuple(unique),
        priority=priorities[0].value if priorities else 5,
        owner=owner,
    )
