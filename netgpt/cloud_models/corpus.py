"""The intent corpus the project's cloud model learns from: (text, intent draft) pairs.

Labels come from the project's own controlled-language parser, never from hand-written JSON:
each sample draws *slots* (endpoints, services, numbers, windows) from a topology's names,
renders a **canonical** sentence in the controlled language, parses it with
:func:`~netgpt.intents.parser.parse_intent`, and takes the parsed intent's draft
(:func:`~netgpt.cloud_models.intent_draft.draft_from_intent`) as the label. The text the model
sees is either that sentence or a **paraphrase** rendered from the same slots with other
wording (phrasings the parser may not accept: that is what the model is for). A paraphrase that
the parser *does* read, but differently from the canonical sentence, is dropped (a bad template
or an ambiguous slot; no label is guessed). NetConfEval sentences, when the shared data is
present, are parsed the same way.

Jargon (per-site adapters): the same slots rendered with a site's local names for its places
("the dorms" for ``students``, "NYC" for New York); the label still comes from the canonical
sentence with the real names. The base model never sees jargon.

Held-out texts (``benchmarks/data/paraphrases.jsonl``) are never emitted: any generated text equal
to one of them (case and punctuation aside) is dropped, and :func:`build_corpus` counts them.
Pure and seeded: the same seed gives the same corpus.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from netgpt.cloud_models.intent_draft import draft_from_intent, draft_json
from netgpt.errors import IntentParseError
from netgpt.intents.names import NameTable
from netgpt.intents.parser import parse_intent
from netgpt.sim_networks.topology import build_topology

__all__ = [
    "JARGON",
    "Corpus",
    "TrainingPair",
    "build_corpus",
    "corpus_name_tables",
    "held_out_texts",
    "normalized",
]

Source = Literal["canonical", "paraphrase", "netconfeval", "jargon"]
_ROOT = Path(__file__).resolve().parents[2]
HELD_OUT_FILE = _ROOT / "benchmarks" / "data" / "paraphrases.jsonl"
NETCONFEVAL_FILE = (_ROOT.parent / "shared" / "data" / "intents" / "netconfeval"
                    / "step_1_spec_translation.jsonl")

# a site's own words for its places: jargon -> canonical name (per-site adapters learn these)
JARGON: dict[str, dict[str, tuple[str, ...]]] = {
    "campus": {
        "students": ("the dorms", "the dorm network", "residence halls", "student housing"),
        "guests": ("visitors", "the visitor wifi", "guest wifi", "the lobby network"),
        "finance": ("accounting", "the bean counters", "payroll"),
        "hr": ("people ops", "personnel"),
        "engineering": ("the engineers", "r&d", "the dev team"),
        "servers": ("the server farm", "the server room", "the backend"),
        "voice": ("the phones", "the voip phones", "telephony"),
        "lab": ("the research lab", "the testbed"),
        "datacenter": ("the dc", "the machine room"),
    },
    "abilene": {
        "New York": ("nyc", "the big apple", "manhattan"),
        "Los Angeles": ("la", "socal"),
        "Washington": ("dc", "the capital"),
        "Chicago": ("chi-town", "the windy city"),
        "Indianapolis": ("indy",),
        "Kansas City": ("kc",),
        "Houston": ("h-town", "space city"),
        "Denver": ("the mile high city",),
        "Atlanta": ("the atl",),
        "Sunnyvale": ("silicon valley", "the valley"),
        "Seattle": ("the emerald city",),
    },
}


@dataclass(frozen=True)
class TrainingPair:
    """One sample: the text a model reads, the draft JSON it should write, where it came from."""

    text: str
    target: str
    topology: str
    source: Source


@dataclass
class Corpus:
    """Generated pairs and what was dropped on the way (counts by reason)."""

    pairs: list[TrainingPair]
    dropped: dict[str, int] = field(default_factory=dict)

    def count(self, reason: str) -> None:
        """Count one dropped candidate."""
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


def normalized(text: str) -> str:
    """Lower case, punctuation and extra spaces removed: for held-out comparisons."""
    return " ".join(re.sub(r"[^\w/.%:-]+", " ", text.lower()).replace(" .", " ").split()).strip(
        ". "
    )


def held_out_texts(path: Path = HELD_OUT_FILE) -> frozenset[str]:
    """The benchmark's held-out paraphrases (normalized); empty when the file is absent."""
    if not path.is_file():
        return frozenset()
    out = set()
    for line in path.read_text().splitlines():
        if line.strip():
            out.add(normalized(json.loads(line)["text"]))
    return frozenset(out)


def corpus_name_tables(*, netconfeval: Path | None = NETCONFEVAL_FILE) -> dict[str, NameTable]:
    """The name tables the corpus covers: campus, abilene and (with its data) netconfeval."""
    tables = {t: NameTable.from_topology(build_topology(t)) for t in ("campus", "abilene")}
    if netconfeval is not None and netconfeval.is_file():
        from netgpt.intents import netconfeval as nce

        tables["netconfeval"] = nce.name_table(r.expected for r in nce.load_step1(netconfeval))
    return tables


# ------------------------------------------------------------------------------------------
# slots and their surface forms


@dataclass(frozen=True)
class _Place:
    """An endpoint slot: its canonical wording and alternative surface wordings."""

    canonical: str
    surfaces: tuple[str, ...]


class _World:
    """The names of one topology, with how people write them."""

    def __init__(self, name: str, table: NameTable, rng: random.Random,
                 jargon: Mapping[str, tuple[str, ...]] | None) -> None:
        self.name = name
        self.table = table
        self.rng = rng
        self.jargon = dict(jargon or {})
        if name == "campus":
            self.prefixes = [p for ps in table.groups.values() for p in ps] + [
                f"10.{rng.randint(60, 99)}.0.0/16" for _ in range(6)]
        elif name == "netconfeval":
            self.prefixes = [f"100.0.{i}.0/24" for i in range(1, 30)]
        else:
            self.prefixes = [f"10.{i}.0.0/16" for i in range(1, 13)]

    def _say(self, canonical: str, kind: str) -> tuple[str, ...]:
        n = canonical
        if kind == "group":
            forms = [n, f"the {n}", f"group {n}", f"the {n} group", f"the {n} network",
                     f"{n} users", f"the {n} hosts", f"the {n} department", f"{n} subnet"]
        elif kind == "device":
            forms = [n, f"router {n}", f"device {n}", f"node {n}", f"switch {n}", f"{n} router"]
        elif kind == "site":
            forms = [n, f"site {n}", f"the {n} site", f"{n} site", f"the {n} region"]
        elif kind == "prefix":
            forms = [n, f"prefix {n}", f"subnet {n}", f"the {n} subnet", f"hosts in {n}",
                     f"network {n}"]
        else:
            forms = ["anywhere", "any host", "everyone", "anyone", "all hosts"]
        if self.jargon and n in self.jargon:
            return tuple(self.jargon[n])
        return tuple(forms)

    def endpoint(self, kinds: Sequence[str] = ("group", "device", "site", "prefix")) -> _Place:
        choices = [k for k in kinds if self._pool(k)]
        kind = self.rng.choice(choices)
        name = self.rng.choice(self._pool(kind))
        if kind == "prefix":
            return _Place(name, self._say(name, "prefix"))
        keyword = {"group": "group", "device": "device", "site": "site"}[kind]
        # the keyword makes the canonical reading unambiguous (a device and a site may share a
        # name); jargon slots always carry jargon in the surfaces
        canonical = f"{keyword} {name}"
        return _Place(canonical, self._say(name, kind))

    def jargon_endpoint(self) -> _Place:
        name = self.rng.choice(sorted(self.jargon))
        kind = next(k for k, _ in self.table.lookup(tuple(name.lower().split())))
        return _Place(f"{kind} {name}", tuple(self.jargon[name]))

    def _pool(self, kind: str) -> list[str]:
        if kind == "group":
            return list(self.table.groups)
        if kind == "device":
            return list(self.table.devices)
        if kind == "site":
            return list(self.table.sites)
        if kind == "prefix":
            return self.prefixes
        return []

    def service(self) -> str:
        services = list(self.table.services) or ["ssh", "telnet", "http", "https", "dns", "rdp",
                                                  "smtp", "ntp", "bgp"]
        return self.rng.choice(services)

    def place_names(self, n: int) -> list[str]:
        pool = [*self.table.devices, *self.table.sites] if self.name != "netconfeval" \
            else list(self.table.devices)
        return self.rng.sample(pool, n)

    def region_names(self, n: int) -> list[str]:
        pool = list(self.table.sites) or list(self.table.devices)
        return self.rng.sample(pool, min(n, len(pool)))


def _pick(rng: random.Random, options: Sequence[str]) -> str:
    return rng.choice(list(options))


def _surface(rng: random.Random, place: _Place) -> str:
    return rng.choice(place.surfaces)


def _number_word(n: int) -> str:
    words = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 8: "eight"}
    return words.get(n, str(n))


def _rate(rng: random.Random) -> tuple[str, str]:
    """(canonical, paraphrase) wordings of one rate."""
    mbps = rng.choice([1, 2, 5, 10, 20, 25, 40, 50, 100, 150, 200, 250, 300, 400, 500, 750, 1000,
                       2000, 2500, 5000, 10000])
    canonical = f"{mbps} Mbps"
    forms = [f"{mbps} Mbps", f"{mbps} Mbit/s", f"{mbps} megabits per second", f"{mbps}Mbps",
             f"{mbps} Mb/s"]
    if mbps >= 1000:
        g = mbps / 1000
        g_text = f"{g:g}"
        forms += [f"{g_text} Gbps", f"{g_text} Gbit/s", f"{g_text} gigabits per second"]
    if mbps <= 20:
        forms += [f"{mbps * 1000} kbps"]
    return canonical, rng.choice(forms)


# ------------------------------------------------------------------------------------------
# templates: each returns (canonical sentence, paraphrase candidates)

_Rendered = tuple[str, list[str]]


def _reachability(w: _World, rng: random.Random, src: _Place, dst: _Place) -> _Rendered:
    negative = rng.random() < 0.45
    s, d = _surface(rng, src), _surface(rng, dst)
    if negative:
        canonical = f"{src.canonical} must not reach {dst.canonical}"
        options = [
            f"{s} must never reach {d}", f"{s} should not be able to reach {d}",
            f"isolate {s} from {d}", f"{s} cannot reach {d}",
            f"{s} must not be able to connect to {d}",
            f"prevent {s} from reaching {d}", f"{d} must not be reachable from {s}",
            f"no connectivity from {s} to {d}", f"{s} is not allowed to talk to {d}",
            f"make sure {s} can't reach {d}", f"ensure {s} has no access to {d}",
            f"{d} should be unreachable for {s}", f"{s} shouldn't talk to {d}",
            f"cut {s} off from {d}", f"{s} may never communicate with {d}",
            f"segregate {s} from {d}", f"{s} should be isolated from {d}",
            f"do not let {s} reach {d}", f"{s} must have no path to {d}",
            f"traffic from {s} must never get to {d}",
        ]
    else:
        canonical = f"{src.canonical} must reach {dst.canonical}"
        options = [
            f"{s} should reach {d}", f"{s} must be able to reach {d}", f"{s} can reach {d}",
            f"{d} must be reachable from {s}", f"{d} is reachable from {s}",
            f"ensure {s} can reach {d}", f"make sure {s} reaches {d}",
            f"{s} needs connectivity to {d}", f"connectivity from {s} to {d}",
            f"{s} needs to talk to {d}", f"{s} must be able to communicate with {d}",
            f"{d} should be accessible from {s}", f"{s} requires access to {d}",
            f"let {s} reach {d}", f"{s} has to reach {d}", f"give {s} connectivity to {d}",
            f"{s} must be able to connect to {d}", f"there must be a route from {s} to {d}",
            f"{s} needs a path to {d}", f"traffic from {s} must get to {d}",
            f"{s} should have access to {d}", f"keep {s} connected to {d}",
        ]
    return canonical, options


def _window(rng: random.Random) -> tuple[str, str]:
    """(canonical, paraphrase) wordings of a time window."""
    start, end = rng.choice([(8, 18), (9, 17), (7, 19), (22, 6), (0, 6), (18, 23), (12, 14)])
    days = rng.choice(["weekdays", "weekends", "every day", "mon-fri", "saturday and sunday",
                       "monday to friday"])
    canonical = f"on {days} from {start:02d}:00 to {end:02d}:00"
    h = {0: "midnight", 12: "noon"}

    def clock(x: int) -> str:
        if x in h and rng.random() < 0.3:
            return h[x]
        return rng.choice([f"{x:02d}:00", f"{x}:00", f"{x % 12 or 12}{'am' if x < 12 else 'pm'}"])

    day_forms = {
        "weekdays": ["on weekdays", "monday through friday", "on workdays", "mon-fri",
                     "during the week"],
        "weekends": ["on weekends", "saturday and sunday", "at the weekend", "on sat and sun"],
        "every day": ["every day", "daily", "all week"],
        "mon-fri": ["monday to friday", "from monday through friday", "weekdays"],
        "saturday and sunday": ["on saturdays and sundays", "on weekends"],
        "monday to friday": ["mon-fri", "on business days", "weekdays"],
    }[days]
    a, b = clock(start), clock(end)
    if "midnight" in (a, b) or "noon" in (a, b):
        a, b = f"{start:02d}:00", f"{end:02d}:00"
    day_text = rng.choice(day_forms)
    form = rng.choice([f"{day_text} from {a} to {b}", f"{day_text} between {a} and {b}",
                       f"{day_text} {a}-{b}", f"from {a} until {b} {day_text}"])
    return canonical, form


def _access(w: _World, rng: random.Random, src: _Place, dst: _Place) -> _Rendered:
    allow = rng.random() < 0.35
    verb = "allow" if allow else "block"
    use_ports = rng.random() < 0.25
    if use_ports:
        proto = rng.choice(["tcp", "udp"])
        lo = rng.choice([22, 23, 25, 53, 80, 123, 161, 443, 3389, 5000, 5060, 8080, 8443])
        hi = lo + rng.choice([0, 0, 0, 10, 100]) if lo >= 5000 else lo
        what_c = f"{proto} port {lo}" if lo == hi else f"{proto} ports {lo} to {hi}"
        what_p = rng.choice([what_c, f"{proto} {lo}" if lo == hi else f"{proto} {lo}-{hi}",
                             f"{proto} traffic on port {lo}" if lo == hi
                             else f"{proto} ports {lo}-{hi}"])
    else:
        svc = w.service()
        what_c = f"{svc}"
        what_p = rng.choice([svc, f"{svc} traffic", f"the {svc} service", f"{svc} sessions"])
    with_dst = rng.random() < 0.8
    s, d = _surface(rng, src), _surface(rng, dst)
    windowed = rng.random() < 0.2
    win_c, win_p = _window(rng) if windowed else ("", "")
    dst_c = f" to {dst.canonical}" if with_dst else ""
    canonical = f"{verb} {what_c} from {src.canonical}{dst_c}" + (f" {win_c}" if windowed else "")
    tail = f" {win_p}" if windowed else ""
    if allow:
        options = [
            f"permit {what_p} from {s} to {d}", f"allow {what_p} from {s} to {d}",
            f"{s} may use {what_p} to reach {d}", f"let {s} use {what_p} towards {d}",
            f"{what_p} from {s} to {d} is allowed", f"{what_p} from {s} to {d} should be permitted",
            f"accept {what_p} from {s} into {d}", f"open {what_p} from {s} to {d}",
            f"{s} is allowed {what_p} to {d}",
        ] if with_dst else [
            f"permit {what_p} from {s}", f"allow {what_p} coming from {s}",
            f"{what_p} from {s} is allowed", f"let {s} use {what_p}",
        ]
    else:
        options = [
            f"deny {what_p} from {s} to {d}", f"drop {what_p} from {s} to {d}",
            f"no {what_p} from {s} to {d}", f"{s} must not use {what_p} to reach {d}",
            f"{what_p} from {s} to {d} must be blocked", f"forbid {what_p} from {s} to {d}",
            f"filter {what_p} going from {s} to {d}", f"reject {what_p} from {s} towards {d}",
            f"stop {what_p} between {s} and {d}", f"{s} may not use {what_p} towards {d}",
            f"disallow {what_p} from {s} to {d}", f"prohibit {what_p} from {s} into {d}",
            f"{s} should not be able to use {what_p} on {d}",
        ] if with_dst else [
            f"deny {what_p} from {s}", f"drop all {what_p} coming from {s}",
            f"block any {what_p} originating from {s}", f"{s} must not use {what_p}",
            f"filter {what_p} from {s}", f"no {what_p} from {s}",
        ]
    options = [o + tail for o in options]
    if windowed:
        options += [f"{win_p}, {o}" for o in options[:3]]
    return canonical, options


def _waypoint(w: _World, rng: random.Random, src: _Place, dst: _Place) -> _Rendered:
    via = w.place_names(rng.choice([1, 1, 1, 2]))
    via_c = " and ".join(via)
    via_p = rng.choice([" and ".join(via), " then ".join(via), ", ".join(via)])
    s, d = _surface(rng, src), _surface(rng, dst)
    canonical = f"traffic from {src.canonical} to {dst.canonical} must go through {via_c}"
    options = [
        f"route {s} to {d} via {via_p}", f"traffic from {s} to {d} should pass through {via_p}",
        f"send traffic from {s} to {d} through {via_p}", f"{s} to {d} traffic goes via {via_p}",
        f"packets from {s} to {d} must traverse {via_p}",
        f"the path from {s} to {d} must include {via_p}",
        f"force traffic from {s} to {d} through {via_p}",
        f"make traffic from {s} to {d} transit {via_p}",
        f"flows from {s} to {d} have to cross {via_p}",
        f"ensure that traffic from {s} to {d} passes {via_p}",
        f"traffic between {s} and {d} must go via {via_p}",
        f"use {via_p} as a waypoint from {s} to {d}",
    ]
    return canonical, options


def _load_balancing(w: _World, rng: random.Random, src: _Place, dst: _Place) -> _Rendered:
    n = rng.choice([2, 2, 2, 3, 3, 4, 5, 6, 8])
    nw = rng.choice([str(n), _number_word(n)])
    paths = rng.choice(["paths", "routes", "paths"])
    s, d = _surface(rng, src), _surface(rng, dst)
    canonical = f"balance {src.canonical} to {dst.canonical} over {n} paths"
    options = [
        f"split traffic from {s} to {d} across {nw} {paths}",
        f"spread {s} to {d} traffic over {nw} {paths}",
        f"distribute traffic from {s} to {d} over {nw} {paths}",
        f"load balance traffic from {s} to {d} over {nw} {paths}",
        f"{s} to {d} should use {nw} {paths}", f"use {nw} {paths} from {s} to {d}",
        f"ecmp over {nw} {paths} from {s} to {d}", f"balance {s} to {d} across {nw} {paths}",
        f"traffic from {s} to {d} must be split over {nw} {paths}",
        f"multipath {s} to {d} over {nw} {paths}",
        f"send {s} to {d} traffic over {nw} parallel {paths}",
    ]
    return canonical, options


def _bandwidth(w: _World, rng: random.Random, src: _Place, dst: _Place) -> _Rendered:
    guarantee = rng.random() < 0.45
    rate_c, rate_p = _rate(rng)
    s, d = _surface(rng, src), _surface(rng, dst)
    svc = w.service() if (w.table.services and rng.random() < 0.4) else None
    with_dst = rng.random() < 0.6 or svc is not None
    svc_c = f"{svc} " if svc else ""
    what_c = f"{svc_c}traffic from {src.canonical}" + (f" to {dst.canonical}" if with_dst else "")
    what_p = (f"{svc + ' ' if svc else ''}traffic from {s}" + (f" to {d}" if with_dst else ""))
    if guarantee:
        canonical = f"guarantee {rate_c} for {what_c}"
        options = [
            f"reserve {rate_p} for {what_p}", f"{what_p} needs at least {rate_p}",
            f"make sure {what_p} gets at least {rate_p}", f"assure {rate_p} to {what_p}",
            f"{what_p} should have a minimum of {rate_p}", f"guarantee {what_p} {rate_p}",
            f"give {what_p} a guaranteed {rate_p}",
        ]
    else:
        canonical = f"cap {what_c} at {rate_c}"
        options = [
            f"limit {what_p} to {rate_p}", f"throttle {what_p} at {rate_p}",
            f"{what_p} must not exceed {rate_p}", f"rate-limit {what_p} to {rate_p}",
            f"{what_p} may use at most {rate_p}", f"no more than {rate_p} for {what_p}",
            f"police {what_p} at {rate_p}", f"keep {what_p} below {rate_p}",
        ]
        if not with_dst and not svc:
            options += [f"limit {s} to {rate_p}", f"cap {s} at {rate_p}",
                        f"{s} gets at most {rate_p}", f"throttle {s} to {rate_p}"]
    return canonical, options


def _utilization(w: _World, rng: random.Random, src: _Place, dst: _Place) -> _Rendered:
    pct = rng.choice([50, 55, 60, 65, 70, 75, 80, 85, 90, 95])
    pct_p = rng.choice([f"{pct}%", f"{pct} percent", f"{pct / 100:g}", f"{pct} per cent"])
    mode = rng.choice(["path", "region", "everywhere"])
    if mode == "path":
        a, b = src, dst
        canonical = f"keep links between {a.canonical} and {b.canonical} under {pct}% utilization"
        sa, sb = _surface(rng, a), _surface(rng, b)
        options = [
            f"utilization between {sa} and {sb} must stay below {pct_p}",
            f"links between {sa} and {sb} should stay under {pct_p} utilization",
            f"the path from {sa} to {sb} must remain under {pct_p} utilization",
            f"no link between {sa} and {sb} above {pct_p} utilization",
            f"keep link usage from {sa} to {sb} below {pct_p}",
        ]
    elif mode == "region":
        region = w.region_names(rng.choice([1, 1, 2]))
        reg = " and ".join(region)
        canonical = f"keep links in {reg} under {pct}% utilization"
        options = [
            f"no link in {reg} should go above {pct_p} utilization",
            f"links in {reg} must stay under {pct_p} utilization",
            f"utilization in {reg} must remain below {pct_p}",
            f"keep the links at {reg} below {pct_p} utilisation",
            f"links in {reg} should never exceed {pct_p} usage",
        ]
    else:
        canonical = f"keep every link under {pct}% utilization"
        options = [
            f"no link should exceed {pct_p} utilization", f"keep all links below {pct_p} usage",
            f"link utilization must stay under {pct_p} everywhere",
            f"every link must remain below {pct_p} utilisation",
        ]
    return canonical, options


def _latency(w: _World, rng: random.Random, src: _Place, dst: _Place) -> _Rendered:
    ms = rng.choice([1, 2, 5, 8, 10, 15, 20, 25, 30, 40, 50, 75, 100, 150, 200])
    ms_p = rng.choice([f"{ms} ms", f"{ms}ms", f"{ms} milliseconds", f"{ms} msec"])
    svc = w.service() if (w.table.services and rng.random() < 0.35) else None
    pct = rng.choice([None, None, None, 99, 50, 90])
    pct_c = f"p{pct} " if pct else ""
    pct_p = "" if not pct else rng.choice([f"p{pct} ", f"{pct}th percentile "])
    of_c = f" of {svc}" if svc else ""
    s, d = _surface(rng, src), _surface(rng, dst)
    canonical = f"keep {pct_c}latency{of_c} from {src.canonical} to {dst.canonical} below {ms} ms"
    svc_p = f"{svc} " if svc else ""
    options = [
        f"{pct_p}{svc_p}latency from {s} to {d} must stay under {ms_p}",
        f"{svc_p}traffic from {s} to {d} needs {pct_p}latency below {ms_p}",
        f"the {pct_p}delay from {s} to {d} must not exceed {ms_p}",
        f"keep {pct_p}{svc_p}delay between {s} and {d} below {ms_p}",
        f"make sure {pct_p}{svc_p}latency from {s} to {d} is less than {ms_p}",
        f"{s} to {d} {svc_p}latency should be under {ms_p}" + (f" at {pct_p.strip()}"
                                                              if pct_p else ""),
    ]
    return canonical, options


def _slo(w: _World, rng: random.Random, src: _Place, dst: _Place) -> _Rendered:
    wl = rng.choice(["generative service", "llm service", "genai service", "generative ai"])
    sites = list(w.table.sites)
    site = rng.choice(sites) if sites and rng.random() < 0.6 else None
    at_c = f" for users at site {site}" if site else ""
    at_p = rng.choice([f" for users at {site}", f" for {site} users", f" at site {site}",
                       f" in {site}"]) if site else ""
    metric = rng.choice(["p95", "p50", "availability", "throughput"])
    if metric in ("p95", "p50"):
        ms = rng.choice([100, 150, 200, 250, 300, 400, 500, 800, 1000])
        word = "p95" if metric == "p95" else rng.choice(["p50", "median"])
        canonical = f"keep {metric} latency of the generative service under {ms} ms{at_c}"
        options = [
            f"the {wl} must answer within {ms} ms at {word}{at_p}",
            f"{word} latency of the {wl} below {ms} ms{at_p}",
            f"keep {word} latency of the {wl} under {ms} ms{at_p}",
            f"{wl} {word} latency must stay under {ms} ms{at_p}",
        ]
    elif metric == "availability":
        av = rng.choice([99, 99.5, 99.9, 99.95, 99.99])
        canonical = f"availability of the generative service at least {av:g}%{at_c}"
        options = [
            f"the {wl} must be available {av:g}% of the time{at_p}",
            f"{wl} availability of at least {av:g}%{at_p}",
            f"uptime of the {wl} at least {av:g}%{at_p}",
        ]
    else:
        rate_c, rate_p = _rate(rng)
        canonical = f"generative throughput at least {rate_c}{at_c}"
        options = [
            f"the {wl} needs a throughput of at least {rate_p}{at_p}",
            f"{wl} throughput of {rate_p} minimum{at_p}",
            f"throughput of the {wl}: at least {rate_p}{at_p}",
        ]
    return canonical, options


_KINDS: dict[str, tuple[Callable[[_World, random.Random, _Place, _Place], _Rendered], float]] = {
    "reachability": (_reachability, 3.0),
    "access": (_access, 3.0),
    "waypoint": (_waypoint, 1.5),
    "load_balancing": (_load_balancing, 1.5),
    "bandwidth": (_bandwidth, 2.0),
    "utilization": (_utilization, 1.5),
    "latency": (_latency, 1.5),
    "slo": (_slo, 1.0),
}
_KIND_BY_TOPOLOGY = {
    "netconfeval": {"reachability": 3.0, "waypoint": 2.0, "load_balancing": 2.0},
}
_PRIORITY = [("priority high", 8, ["this is high priority", "high priority", "priority: high",
                                   "treat this as high priority"]),
             ("priority low", 3, ["low priority", "this is low priority", "priority: low"]),
             ("priority critical", 10, ["this is critical", "critical priority", "top priority"]),
             ("priority 7", 7, ["with priority 7", "prio 7"])]


def _finish(rng: random.Random, text: str) -> str:
    text = text.strip()
    if rng.random() < 0.5:
        text = text[0].upper() + text[1:]
    if rng.random() < 0.6:
        text += "."
    return text


def _endpoints(w: _World, rng: random.Random, kind: str) -> tuple[_Place, _Place]:
    if w.name == "netconfeval":
        src = w.endpoint(("device",))
        dst = w.endpoint(("prefix",))
        return src, dst
    kinds = ("group", "group", "device", "site", "prefix") if w.table.groups \
        else ("device", "device", "site", "site", "prefix")
    src = w.endpoint(kinds)
    dst = w.endpoint(kinds)
    while dst.canonical == src.canonical:
        dst = w.endpoint(kinds)
    return src, dst


def _one(w: _World, rng: random.Random, jargon: bool) -> tuple[str, list[str]] | None:
    weights = _KIND_BY_TOPOLOGY.get(w.name) or {k: v[1] for k, v in _KINDS.items()}
    kind = rng.choices(list(weights), weights=list(weights.values()))[0]
    src, dst = _endpoints(w, rng, kind)
    if jargon:
        # at least one endpoint in the site's own words
        if rng.random() < 0.5:
            src = w.jargon_endpoint()
        else:
            dst = w.jargon_endpoint()
        if src.canonical == dst.canonical:
            return None
    canonical, options = _KINDS[kind][0](w, rng, src, dst)
    return canonical, options


def _parse(text: str, table: NameTable) -> str | None:
    try:
        return draft_json(draft_from_intent(parse_intent(text, table)))
    except IntentParseError:
        return None


def _plain(rng: random.Random, canonical: str, label: str, table: NameTable) -> str:
    """The canonical sentence with some name keywords dropped, if it still reads the same."""
    plain = re.sub(r"\b(group|site|device) (?=\S)",
                   lambda m: m.group(0) if rng.random() < 0.4 else "", canonical)
    return plain if plain == canonical or _parse(plain, table) == label else canonical


def _generate(
    w: _World, n: int, corpus: Corpus, held_out: frozenset[str], *, jargon: bool,
    paraphrase_share: float,
) -> None:
    rng = w.rng
    made = 0
    attempts = 0
    while made < n and attempts < n * 20:
        attempts += 1
        first = _one(w, rng, jargon)
        if first is None:
            continue
        canonical, options = first
        if rng.random() < 0.15:  # two requirements in one text
            second = _one(w, rng, jargon)
            if second is not None:
                canonical = f"{canonical}. {second[0]}"
                joiner = rng.choice([". ", "; ", ". Also, ", ", and ", ". In addition, "])
                options = [f"{a}{joiner}{b}" for a, b in zip(
                    rng.sample(options, min(3, len(options))),
                    rng.sample(second[1], min(3, len(second[1]))), strict=False)]
        prio = rng.random() < 0.12
        if prio:
            pc, _, pp = rng.choice(_PRIORITY)
            canonical = f"{canonical}. {pc}"
            options = [rng.choice([f"{o}. {rng.choice(pp)}", f"{rng.choice(pp)}: {o}",
                                   f"{o} ({rng.choice(pp)})"]) for o in options]
        label = _parse(canonical, w.table)
        if label is None:
            corpus.count("canonical-unparsed")
            continue
        use_paraphrase = jargon or rng.random() < paraphrase_share
        text = rng.choice(options) if use_paraphrase else _plain(rng, canonical, label, w.table)
        if use_paraphrase and not jargon:
            other = _parse(text, w.table)
            if other is not None and other != label:
                corpus.count("paraphrase-read-differently")
                continue
        text = _finish(rng, text)
        if normalized(text) in held_out:
            corpus.count("held-out")
            continue
        source: Source = "jargon" if jargon else ("paraphrase" if use_paraphrase else "canonical")
        corpus.pairs.append(TrainingPair(text=text, target=label, topology=w.name, source=source))
        made += 1


def _netconfeval_sentences(
    path: Path, table: NameTable, n: int, rng: random.Random, corpus: Corpus,
    held_out: frozenset[str],
) -> None:
    from netgpt.intents import netconfeval as nce

    sentences = sorted({s.strip() for r in nce.load_step1(path)
                        for s in re.split(r"(?<=\.)\s+", r.human_language) if s.strip()})
    rng.shuffle(sentences)
    made = 0
    for s in sentences:
        if made >= n:
            break
        label = _parse(s, table)
        if label is None:
            corpus.count("netconfeval-unparsed")
            continue
        if normalized(s) in held_out:
            corpus.count("held-out")
            continue
        corpus.pairs.append(TrainingPair(text=s, target=label, topology="netconfeval",
                                         source="netconfeval"))
        made += 1


def build_corpus(
    sizes: Mapping[str, int],
    *,
    seed: int = 0,
    jargon_for: Iterable[str] = (),
    jargon_size: int = 0,
    netconfeval_sentences: int = 0,
    paraphrase_share: float = 0.6,
    netconfeval: Path | None = NETCONFEVAL_FILE,
    held_out: frozenset[str] | None = None,
) -> Corpus:
    """Generate pairs: ``sizes`` maps a topology (campus, abilene, netconfeval) to a count.

    ``jargon_for`` lists topologies whose jargon pairs (``jargon_size`` each) are added;
    ``netconfeval_sentences`` original NetConfEval sentences are added when the data exists.
    ``paraphrase_share`` is the share of samples shown in paraphrased wording.
    """
    if not 0 <= paraphrase_share <= 1:
        raise ValueError(f"paraphrase_share {paraphrase_share} must be within 0-1")
    tables = corpus_name_tables(netconfeval=netconfeval)
    held = held_out_texts() if held_out is None else held_out
    corpus = Corpus(pairs=[])
    rng = random.Random(seed)
    for topo, n in sizes.items():
        if topo not in tables:
            corpus.count(f"no-name-table-{topo}")
            continue
        w = _World(topo, tables[topo], random.Random(rng.random()), None)
        _generate(w, n, corpus, held, jargon=False, paraphrase_share=paraphrase_share)
    for topo in jargon_for:
        if topo not in JARGON:
            raise ValueError(f"no jargon for {topo!r}; known: {sorted(JARGON)}")
        w = _World(topo, tables[topo], random.Random(rng.random()), JARGON[topo])
        _generate(w, jargon_size, corpus, held, jargon=True, paraphrase_share=1.0)
    if netconfeval_sentences and "netconfeval" in tables and netconfeval is not None:
        _netconfeval_sentences(netconfeval, tables["netconfeval"], netconfeval_sentences,
                               random.Random(rng.random()), corpus, held)
    random.Random(seed + 1).shuffle(corpus.pairs)
    return corpus
