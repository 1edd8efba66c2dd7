"""Requests a user at a site makes, and the local services each one needs.

A sample is composed, not copied: a *need* is drawn first (none, one service kind, one service
by where it is, two kinds, or a site's own word for a service), then a **frame** for it whose
placeholders are filled from per-kind **vocabulary** (nouns such as "printer" or "wifi", whole
complaints such as "video is choppy"). Noise follows: a one-letter typo in one word now and
then (:func:`~netgpt.edge_models.intent_corpus.typo`), casing and end punctuation.

Labels follow from the need and the services the example is posed against (``offered``, in the
site's order): a kind resolves to the first offered service of that kind that is not down (the
first of the kind when all are), to nothing when the site has none; a site word to the service
the directory says it means. At most two services, in the order the request says them.

Held-out partition: every frame list and vocabulary list is split by a stable hash of each
entry (:func:`~netgpt.edge_models.intent_corpus.stable_hash`) into about 75% ``train`` and 25%
``heldout`` (a list of four or more has both); a sample uses one split's entries only, so
held-out requests are phrasings the model never saw. The sites, their services and their words
are shared (they are facts of the directory, not phrasing). Samples whose normalized text is
one of the hand-written :data:`BENCHMARK` requests are dropped. Pure and seeded.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from netgpt.edge_models.intent_corpus import stable_hash, typo
from netgpt.errors import ConfigError
from netgpt.generative.base import LocalService
from netgpt.generative.directory import SiteDirectory, SiteEntry, load_directory

__all__ = [
    "BENCHMARK",
    "MAX_SERVICES_PER_REQUEST",
    "PromptExample",
    "corpus_report",
    "generate_prompt_requests",
    "personalization_set",
    "request_words",
    "resolve_kind",
]

Split = Literal["train", "heldout"]
Source = Literal["generated", "site-words", "benchmark"]
_SPLITS: tuple[Split, ...] = ("train", "heldout")
_HELDOUT_SHARE = 4
MAX_SERVICES_PER_REQUEST = 2


@dataclass(frozen=True)
class PromptExample:
    """One request at a site and the services a good completion points to.

    ``offered`` is the service list the request is posed against (the site's own, in its
    order, except for varied training examples); ``services`` are names from it, most
    relevant first (empty: no local service applies).
    """

    topology: str
    site: str
    request: str
    services: tuple[str, ...]
    offered: tuple[LocalService, ...]
    split: Split | Literal["benchmark"]
    source: Source


def request_words(text: str) -> list[str]:
    """The words of a request as the model reads them: lower case, letters and digits only."""
    return re.findall(r"[a-z0-9]+", text.lower().replace("'", ""))


# ------------------------------------------------------------------------------------------
# the grammar: per kind, nouns ("noun.<kind>") and whole complaints ("ask.<kind>"); frames

_GRAMMAR: dict[str, tuple[str, ...]] = {
    "noun.printing": ("printer", "printers", "printing", "print", "copier", "photocopier",
                      "scanner", "plotter", "print room", "print queue", "laser printer",
                      "colour printer", "poster printer", "toner"),
    "ask.printing": ("can't print", "my print job is stuck", "need to print my slides",
                     "where do I print", "printing is broken", "need to scan a document",
                     "print a poster", "where can I make copies", "the printer ate my paper",
                     "pick up my printout", "out of toner"),
    "noun.video": ("video", "streaming", "stream", "video call", "webcam", "livestream",
                   "lecture videos", "video conference", "video cache", "youtube", "netflix",
                   "recordings"),
    "ask.video": ("video is choppy", "my stream keeps buffering", "video calls freeze",
                  "lecture recording won't play", "zoom keeps lagging", "the livestream stutters",
                  "where do I watch the all hands", "video quality is bad",
                  "videos load slowly", "screen sharing is laggy"),
    "noun.storage": ("storage", "file share", "shared drive", "backup", "disk space", "nas",
                     "network drive", "archive", "file server", "big files", "cloud drive",
                     "dataset storage"),
    "ask.storage": ("where can I store big files", "I'm out of disk space",
                    "need to back up my laptop", "upload large files",
                    "share files with my team", "where do I keep my datasets",
                    "restore a deleted file", "my quota is full", "archive old projects",
                    "move files off my laptop"),
    "noun.web": ("website", "web", "intranet", "portal", "homepage", "web server", "web page",
                 "status page", "web app", "dashboard"),
    "ask.web": ("sites load slowly", "the portal is down", "can't open the intranet",
                "web pages time out", "where's the company homepage", "the website won't load",
                "browser says server not found", "dashboard is slow"),
    "noun.helpdesk": ("help desk", "helpdesk", "it support", "tech support", "service desk",
                      "support", "it person", "support ticket", "it help", "technician"),
    "ask.helpdesk": ("I'm locked out", "need a password reset", "who can fix my laptop",
                     "open a ticket", "my account is blocked", "talk to someone in it",
                     "laptop won't boot", "need a new badge", "forgot my password",
                     "who do I call for help"),
    "noun.wifi": ("wifi", "wi-fi", "wireless", "hotspot", "eduroam", "guest wifi",
                  "wifi password", "ssid", "access point", "wlan"),
    "ask.wifi": ("can't connect to wifi", "wifi keeps dropping", "no signal here",
                 "wireless is slow", "how do I get online", "my laptop won't join the network",
                 "internet on my phone", "the wifi is weak", "connection keeps dropping"),
    "noun.compute": ("compute", "gpu", "gpus", "cluster", "vm", "virtual machine", "server",
                     "hpc", "batch queue", "compute node", "cpu time", "jupyter"),
    "ask.compute": ("need to run a big job", "where can I train my model",
                    "my jobs are queued forever", "need more cpu", "run a simulation",
                    "spin up a vm", "my training run is slow", "submit a batch job",
                    "need a machine with a gpu"),
    "noun.voice": ("phone", "desk phone", "voip", "voicemail", "conference line", "phone line",
                   "softphone", "headset", "extension", "dial tone"),
    "ask.voice": ("phone calls drop", "no dial tone", "calls sound robotic",
                  "can't hear the other side", "set up my voicemail", "my phone won't ring",
                  "echo on calls", "need a conference bridge", "make an international call"),
    "noun.library": ("library", "books", "journals", "ebooks", "reading room", "study room",
                     "quiet room", "papers", "catalogue", "study space"),
    "ask.library": ("borrow a book", "need a quiet place to study",
                    "where can I read journals", "return my books", "find a paper",
                    "renew my loans", "book a study room", "somewhere quiet to work"),
    "noun.cafeteria": ("cafeteria", "canteen", "food", "lunch", "coffee", "cafe", "snacks",
                       "breakfast", "vending machine", "kitchen", "dinner", "tea"),
    "ask.cafeteria": ("I'm hungry", "where can I eat", "grab a coffee", "is lunch still served",
                      "something to eat", "where's the coffee machine", "need caffeine",
                      "get a sandwich"),
    # one kind, said as a noun
    "frame.noun": ("{N}", "{N}?", "where is the {N}", "where's the {N}",
                   "where can I find a {N}", "need {N}", "need a {N}", "{N} not working",
                   "{N} broken", "{N} broken again", "any {N} nearby", "is there a {N} here",
                   "{N} near me", "closest {N}", "nearest {N}?", "{N} pls", "{N} please",
                   "help with {N}", "help {N}", "looking for {N}", "looking for a {N}",
                   "who handles {N}", "{N} down?", "is the {N} down", "trouble with {N}",
                   "problem with the {N}", "{N} is slow", "{N} issues",
                   "how do I use the {N}", "I need {N} asap", "{N} anyone?", "what about {N}",
                   "got {N}?", "{N} here?", "where do I go for {N}", "{N} info",
                   "{N} status", "anything for {N}", "{N} question", "quick q: {N}",
                   "hey, {N}?", "um {N}", "{N} help pls", "status of {N}", "can i get {N}",
                   "{N}??"),
    # one kind, said as a complaint or a wish
    "frame.ask": ("{A}", "{A}?", "{A}, help", "help, {A}", "hi, {A}", "{A} - what do I do",
                  "{A} again", "ugh {A}", "{A}. any idea?", "so {A}", "{A}!!",
                  "pls help {A}", "{A}, what now", "hey {A}"),
    # one service, named by where it is ({W}) and its kind ({N})
    "frame.where": ("{N} in {W}", "{N} at {W}", "the {N} in {W}?", "{W} {N}",
                    "{N} near {W}", "is the {N} in {W} working", "{N} ({W})",
                    "need the {W} {N}", "{N} over in {W}", "{N} by {W}"),
    # two kinds, each a noun or a complaint
    "frame.two": ("{A} and {B}", "{A}, also {B}", "{A} + {B}", "{A} & {B}", "{A} then {B}",
                  "{A}; {B}", "need {A} and {B}", "{A} plus {B}?", "{A}, {B}",
                  "first {A}, then {B}", "{A} and also {B}", "{A} / {B}"),
    # a site's own word ({X}) for one of its services (kind noun {N})
    "frame.word": ("{X}?", "{X}", "is {X} open", "{X} not working", "going to {X}",
                   "how do I get to {X}", "{X} pls", "anything at {X}", "{X} is slow",
                   "{X} down?", "where's {X}", "need {X}", "{N} at {X}", "{X} {N}",
                   "{X} {N}?", "the {N} in {X}", "use {X}", "{X} busy?", "is {X} up",
                   "{X} help", "can I use {X}", "{X} status", "take me to {X}",
                   "{X} again"),
    # no local service
    "frame.none": ("what time is it", "what's the time", "hi", "hello", "hey there", "thanks",
                   "thank you", "good morning", "where am I", "what site is this",
                   "who are you", "tell me a joke", "how are you", "what day is it", "ok",
                   "never mind", "test", "what's my ip", "how's the network",
                   "is the network ok", "any outages", "what can you do", "bye", "good night",
                   "what's the weather", "how late is it", "what timezone is this", "yo",
                   "sup", "are you there"),
}
_FIELD = re.compile(r"\{([A-Z])\}")
_NEEDS = (("none", 10), ("noun", 42), ("ask", 24), ("where", 10), ("two", 14))


@functools.cache
def _partition() -> dict[str, dict[Split, tuple[str, ...]]]:
    """Each list split into train and heldout entries by a stable hash of the entry."""
    out: dict[str, dict[Split, tuple[str, ...]]] = {}
    for name, entries in _GRAMMAR.items():
        unique = tuple(dict.fromkeys(entries))
        rank = sorted(unique, key=lambda e: stable_hash(name, e))
        held = [e for e in unique if stable_hash(name, e) % _HELDOUT_SHARE == 0]
        if len(unique) >= 4 and not held:
            held = rank[:1]
        if len(unique) >= 4 and len(held) == len(unique):
            held = held[:-1]
        out[name] = {"train": tuple(e for e in unique if e not in held), "heldout": tuple(held)}
    return out


def corpus_report() -> dict[str, dict[str, int]]:
    """Per grammar list: how many entries are train and how many heldout."""
    return {name: {s: len(parts[s]) for s in _SPLITS} for name, parts in _partition().items()}


# ------------------------------------------------------------------------------------------
# the hand-written benchmark (phrasings written apart from the grammar above)

_BENCH: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("campus", "north", "printer?", ("print-north-lib",)),
    ("campus", "north", "the annex printer is jammed", ("print-north-b2",)),
    ("campus", "north", "wifi keeps cutting out in my office", ("wifi-north",)),
    ("campus", "north", "video is choppy", ("north-video-cache",)),
    ("campus", "north", "fishbowl open?", ("helpdesk-north",)),
    ("campus", "north", "what time is it", ()),
    ("campus", "north", "coffee and wifi", ("cafe-north", "wifi-north")),
    ("campus", "north", "where can I store big files", ()),
    ("campus", "north", "somewhere to read in peace", ("library-north",)),
    ("campus", "north", "meet me in the stacks", ("library-north",)),
    ("campus", "south", "where can I dump 2 TB of data", ("south-storage",)),
    ("campus", "south", "is the cave free tonight", ("compute-south-lab",)),
    ("campus", "south", "my desk phone has no dial tone", ("voice-south",)),
    ("campus", "south", "meet at the pit for lunch?", ("cafe-south",)),
    ("campus", "south", "wireless so slow today", ("wifi-south",)),
    ("campus", "south", "prnter", ("print-south-s210",)),
    ("campus", "datacenter", "need gpus for a training job", ("dc-compute",)),
    ("campus", "datacenter", "put the backups in the vault", ("dc-storage-b",)),
    ("campus", "datacenter", "intranet is down", ("dc-web-front",)),
    ("campus", "datacenter", "is anyone at the noc desk", ("dc-noc-desk",)),
    ("campus", "datacenter", "hi", ()),
    ("abilene", "New York", "the pod is slow", ("nyc-compute",)),
    ("abilene", "New York", "stream keeps buffering", ("nyc-video-cache",)),
    ("abilene", "New York", "bodega still open?", ("nyc-cafe",)),
    ("abilene", "New York", "need to print and scan a contract", ("nyc-print-7",)),
    ("abilene", "New York", "calls sound robotic, also wifi is bad", ("nyc-voice", "nyc-wifi")),
    ("abilene", "Los Angeles", "anything free on the lot?", ("la-video-edit",)),
    ("abilene", "Los Angeles", "youtube stutters", ("la-video-cache",)),
    ("abilene", "Los Angeles", "I forgot my password again", ("la-helpdesk",)),
    ("abilene", "Chicago", "the loop looks broken", ("chi-web-mirror",)),
    ("abilene", "Chicago", "need a vm for tests", ("chi-compute",)),
    ("abilene", "Chicago", "what's the local time", ()),
    ("abilene", "Houston", "printer", ("hou-print-3",)),
    ("abilene", "Houston", "print from up top", ("hou-print-3",)),
    ("abilene", "Sunnyvale", "need compute for a batch run", ("snv-compute",)),
    ("abilene", "Sunnyvale", "is the oven overheating", ("snv-compute-gpu",)),
    ("abilene", "Seattle", "the needle is lagging", ("sea-video-cache",)),
    ("abilene", "Seattle", "any books on networking", ("sea-library",)),
    ("abilene", "Washington", "conference call drops", ("wash-voice",)),
    ("abilene", "Washington", "beltway site down?", ("wash-web-portal",)),
    ("abilene", "Denver", "the summit queue is long", ("den-compute",)),
    ("abilene", "Kansas City", "barbecue run, who's in", ("kc-cafe",)),
    ("abilene", "Atlanta", "peachtree for lunch?", ("atl-cafe",)),
    ("abilene", "Indianapolis", "the board shows red", ("ind-web-status",)),
    ("abilene", "Denver", "thanks!", ()),
    ("abilene", "Kansas City", "video?", ()),
)


def _uses_site_word(entry: SiteEntry, text: str) -> bool:
    padded = f" {' '.join(request_words(text))} "
    return any(f" {' '.join(request_words(w.phrase)).removeprefix('the ')} " in padded
               for w in entry.words)


def _benchmark(directory: SiteDirectory) -> tuple[PromptExample, ...]:
    out = []
    for topology, site, text, services in _BENCH:
        entry = directory.entry(topology, site)
        for name in services:
            entry.service(name)  # a benchmark naming a service the directory lacks is a bug
        out.append(PromptExample(topology, site, text, services, entry.services, "benchmark",
                                 "site-words" if _uses_site_word(entry, text) else "benchmark"))
    return tuple(out)


BENCHMARK: tuple[PromptExample, ...] = _benchmark(load_directory())
"""The hand-written personalization benchmark (``source`` ``site-words`` when a request says a
site's own word, else ``benchmark``)."""


@functools.cache
def _benchmark_texts() -> frozenset[str]:
    return frozenset(" ".join(request_words(b.request)) for b in BENCHMARK)


# ------------------------------------------------------------------------------------------
# samples


def resolve_kind(kind: str, offered: Sequence[LocalService]) -> str | None:
    """The service a request for ``kind`` points to: the first not down, else the first."""
    of_kind = [s for s in offered if s.kind == kind]
    usable = [s for s in of_kind if s.status != "down"] or of_kind
    return usable[0].name if usable else None


class _Sampler:
    """Draws one split's entries and renders templates."""

    def __init__(self, rng: random.Random, split: Split) -> None:
        self.rng = rng
        self.split = split

    def pick(self, name: str) -> str:
        return self.rng.choice(_partition()[name][self.split])

    def fill(self, frame: str, values: dict[str, str]) -> str:
        return _FIELD.sub(lambda m: values[m.group(1)], frame)

    def need_text(self, kind: str) -> str:
        """A noun or a complaint for ``kind`` (as the filler of a two-need frame)."""
        return self.pick(f"noun.{kind}" if self.rng.random() < 0.6 else f"ask.{kind}")


def _noisy(rng: random.Random, text: str, keep: Sequence[str]) -> str:
    """A typo in one word (not in ``keep``) now and then; casing and end punctuation."""
    if rng.random() < 0.15:
        kept = {w for phrase in keep for w in phrase.lower().split()}
        spots = [m for m in re.finditer(r"[A-Za-z]{4,}", text) if m.group(0).lower() not in kept]
        if spots:
            m = rng.choice(spots)
            text = text[:m.start()] + typo(rng, m.group(0)) + text[m.end():]
    r = rng.random()
    if r < 0.3:
        text = text[:1].upper() + text[1:]
    elif r < 0.35:
        text = text.upper()
    if text[-1:].isalnum() and rng.random() < 0.25:
        text += rng.choice(("?", "!", "...", " pls", "?!"))
    return text


def _varied(rng: random.Random, entry: SiteEntry,
            others: Sequence[LocalService]) -> tuple[LocalService, ...]:
    """A training variation of the site's service list.

    Other sites' services mixed in, some dropped, shuffled, statuses redrawn: so the model
    learns to read the list rather than remember each site's.
    """
    pool = list(entry.services)
    if rng.random() < 0.25:
        names = {s.name for s in pool}
        pool += rng.sample([s for s in others if s.name not in names], rng.randint(1, 4))
    rng.shuffle(pool)
    pool = pool[:rng.randint(3, 8)]
    return tuple(LocalService(s.name, s.kind, s.where, s.hops,
                              rng.choices(("up", "degraded", "down"), (84, 8, 8))[0])
                 for s in pool)


def _general(s: _Sampler, kinds: Sequence[str],
             offered: Sequence[LocalService]) -> tuple[str, tuple[str, ...], list[str]] | None:
    """(text, services, words the noise must keep) of a request in general words."""
    rng = s.rng
    need = rng.choices([n for n, _ in _NEEDS], [w for _, w in _NEEDS])[0]
    present = sorted({x.kind for x in offered})

    def kind() -> str:
        return rng.choice(present) if present and rng.random() < 0.75 else rng.choice(kinds)

    if need == "none":
        return s.pick("frame.none"), (), []
    if need in ("noun", "ask"):
        k = kind()
        part = s.pick(f"{need}.{k}")
        text = s.fill(s.pick(f"frame.{need}"), {"N": part, "A": part})
        found = resolve_kind(k, offered)
        return text, (found,) if found else (), []
    if need == "where":
        target = rng.choice(list(offered))
        where = target.where.lower()
        if any(x.kind == target.kind and x is not target
               and (where in x.where.lower() or x.where.lower() in where) for x in offered):
            return None  # the place does not single the service out
        text = s.fill(s.pick("frame.where"), {"N": s.pick(f"noun.{target.kind}"), "W": where})
        return text, (target.name,), [where]
    k1, k2 = rng.sample(list(kinds), 2) if rng.random() < 0.3 else (kind(), kind())
    if k1 == k2:
        return None
    text = s.fill(s.pick("frame.two"), {"A": s.need_text(k1), "B": s.need_text(k2)})
    pair = tuple(x for x in (resolve_kind(k1, offered), resolve_kind(k2, offered)) if x)
    return text, pair, []


def _site_word(s: _Sampler, entry: SiteEntry) -> tuple[str, tuple[str, ...], list[str]]:
    word = s.rng.choice(entry.words)
    service = entry.service(word.service)
    phrase = word.phrase if s.rng.random() < 0.7 else word.phrase.removeprefix("the ")
    frame = s.pick("frame.word")
    text = s.fill(frame, {"X": phrase, "N": s.pick(f"noun.{service.kind}")})
    return text, (service.name,), [phrase]


def generate_prompt_requests(topology: str, n: int, *, split: Split = "train", seed: int = 0,
                             site: str | None = None, site_words: bool = False,
                             vary: bool = False,
                             directory: SiteDirectory | None = None) -> list[PromptExample]:
    """``n`` requests at the sites of ``topology`` (or only ``site``) from ``split``'s entries.

    ``site_words``: every request says one of the site's own words (``source="site-words"``;
    sites without words are skipped); otherwise requests use general words only. ``vary``
    (for training the global model) poses requests against varied service lists (see
    ``_varied``). The same arguments give the same list.
    """
    if split not in _SPLITS:
        raise ConfigError(f"split {split!r} must be 'train' or 'heldout'")
    if n < 0:
        raise ConfigError(f"n {n} must be >= 0")
    d = directory or load_directory()
    names = d.sites(topology) if site is None else [d.entry(topology, site).site]
    entries = [d.entry(topology, x) for x in names]
    if site_words:
        entries = [e for e in entries if e.words]
        if not entries:
            raise ConfigError(f"no site of {topology!r} in {names} has site words")
    others = [x for e in d.entries for x in e.services]
    rng = random.Random(stable_hash("prompt-corpus",
                                    f"{topology}|{site}|{split}|{seed}|{site_words}|{vary}"))
    out: list[PromptExample] = []
    attempts = 0
    while len(out) < n and attempts < 20 * n + 100:
        attempts += 1
        s = _Sampler(random.Random(rng.getrandbits(64)), split)
        entry = s.rng.choice(entries)
        offered = _varied(s.rng, entry, others) if vary and not site_words else entry.services
        got = _site_word(s, entry) if site_words else _general(s, d.kinds, offered)
        if got is None:
            continue
        text, services, keep = got
        text = _noisy(s.rng, text, keep)
        if " ".join(request_words(text)) in _benchmark_texts() or not request_words(text):
            continue
        out.append(PromptExample(topology, entry.site, text, services, offered, split,
                                 "site-words" if site_words else "generated"))
    return out


def personalization_set(topology_name: str, *, split: Split | Literal["benchmark"] = "heldout",
                        n: int = 200, seed: int = 0) -> list[PromptExample]:
    """The personalization-quality set of ``topology_name``.

    ``split`` ``train`` or ``heldout``: ``n`` generated requests over the topology's sites,
    three in four in general words and one in four in the sites' own words (``source`` says
    which), posed against each site's own service list. ``split="benchmark"``: the first ``n``
    hand-written :data:`BENCHMARK` requests of the topology (``seed`` unused).
    """
    if split == "benchmark":
        known = {b.topology for b in BENCHMARK}
        if topology_name not in known:
            raise ConfigError(f"no benchmark requests for {topology_name!r}; known: "
                              f"{sorted(known)}")
        return [b for b in BENCHMARK if b.topology == topology_name][:n]
    if split not in _SPLITS:
        raise ConfigError(f"split {split!r} must be 'train', 'heldout' or 'benchmark'")
    words = n // 4
    general = generate_prompt_requests(topology_name, n - words, split=split, seed=seed)
    return general + generate_prompt_requests(topology_name, words, split=split, seed=seed,
                                              site_words=True)
