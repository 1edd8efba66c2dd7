"""The edge prompt model: a user's few words + the site's services -> a completed prompt.

A small GPT-2 decoder (trained from scratch by :mod:`netgpt.edge_models.prompt_training`)
reads the request's words, then the site's local services as slots::

    <bos> printer <req> <printing#1> library level 1 <printing#2> building b2 <wifi#1> ... <sep>

A slot is named by its service's kind and rank among the services of that kind in the list
(``<printing#2>``: the second printer listed), so choosing one is a matter of knowing what the
request needs (and, for a site's own words, which one), not of finding a numbered position.
The model answers one or two slot tokens then ``<end>``, or ``<none>``. Decoding is greedy and
masked: only slots this prompt has (each once), ``<none>`` only first, at most
:data:`MAX_SERVICES_PER_REQUEST` slots; so the answer always names services of the context.
The completed prompt is then *rendered* from the choice (:func:`render_prompt`): site,
attachment device, local time, the request, the chosen services with where they are, hops and
status, and the network's facts. The learned part is only the choice (kind words, synonyms,
misspellings; a site's own words through its adapter).

Words are read by :class:`SpellingVocabulary` (the intent model's word vocabulary with stem
fallback, plus a one-edit spelling correction for unknown words). ``confidence`` is the product
over the decoding steps that had a choice of the chosen token's probability among the allowed
ones (not calibrated). A per-site LoRA adapter (``WEIGHTS/adapters/<site key>/``) is used
automatically for ``context.site`` when one exists and ``use_adapter`` is true.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import string
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netgpt.cloud_models.transformers_local import quiet_peft_warnings
from netgpt.edge_models.intent_model import (
    BOS,
    PAD,
    SEP,
    TOKENIZER_FILE,
    UNK,
    EdgeIntentModel,
    WordVocabulary,
    attach_adapter,
)
from netgpt.edge_models.prompt_corpus import MAX_SERVICES_PER_REQUEST, request_words
from netgpt.errors import ConfigError
from netgpt.generative.base import CompletedPrompt, LocalService, SiteContext

__all__ = [
    "MAX_PER_KIND",
    "MAX_REQUEST_CHARS",
    "MAX_REQUEST_WORDS",
    "MAX_SLOTS",
    "SHIPPED_PROMPT_WEIGHTS",
    "EdgePromptModel",
    "ServiceChoice",
    "SpellingVocabulary",
    "adapter_key",
    "encode_prompt",
    "is_slot",
    "one_edit",
    "prompt_tokens",
    "render_prompt",
    "slot_token",
    "slots",
]

SHIPPED_PROMPT_WEIGHTS = Path(__file__).resolve().parent / "prompt_weights"
CARD_FILE = "prompt_model.json"
MAX_SLOTS = 8
MAX_REQUEST_WORDS = 40
MAX_REQUEST_CHARS = 400
MAX_PER_KIND = 3
REQ, NONE, END = "<req>", "<none>", "<end>"
MODEL_NAME = "edge-prompt-gpt2"
_SLOT = re.compile(r"<([a-z0-9_-]+)#([1-9])>")


def slot_token(kind: str, rank: int) -> str:
    """The token of the ``rank``-th service of ``kind`` in a list: ``<printing#2>``."""
    return f"<{kind}#{rank}>"


def is_slot(token: str) -> bool:
    """Whether ``token`` is a slot token."""
    return _SLOT.fullmatch(token) is not None


def prompt_tokens(kinds: Sequence[str]) -> list[str]:
    """The special tokens of a vocabulary for service ``kinds``, in id order."""
    return [PAD, BOS, SEP, UNK, REQ, NONE, END,
            *(slot_token(k, r) for k in kinds for r in range(1, MAX_PER_KIND + 1))]


def slots(services: Sequence[LocalService]) -> dict[str, LocalService]:
    """Slot token -> service, in list order, for the first :data:`MAX_SLOTS` services.

    A slot is named by its service's kind and rank among the services of that kind
    (``<printing#1>`` is the first printer listed); services past :data:`MAX_PER_KIND` of one
    kind get no slot.
    """
    out: dict[str, LocalService] = {}
    seen: dict[str, int] = {}
    for service in services[:MAX_SLOTS]:
        seen[service.kind] = seen.get(service.kind, 0) + 1
        if seen[service.kind] <= MAX_PER_KIND:
            out[slot_token(service.kind, seen[service.kind])] = service
    return out


def adapter_key(site: str) -> str:
    """The adapter directory (and peft adapter) name of ``site``: ``New York`` -> ``new-york``."""
    key = re.sub(r"[^a-z0-9]+", "-", site.lower()).strip("-")
    if not key:
        raise ConfigError(f"site name {site!r} has no letters or digits for an adapter name")
    return key


class SpellingVocabulary(WordVocabulary):
    """A word vocabulary that also reads a misspelt word as a known word one edit away.

    A word of four or more letters the vocabulary lacks (and whose stem it lacks) is read as
    the first known word found one swap, deletion, insertion or replacement away; else
    ``<unk>``.
    """

    def __init__(self, vocab: dict[str, int]) -> None:
        super().__init__(vocab)
        self._known = frozenset(w for w in vocab if not w.startswith("<"))

    def word_id(self, word: str) -> int:
        """The id of ``word``, of its stem, of a known word one edit away, or of ``<unk>``."""
        found = super().word_id(word)
        if found != self.unk_id or len(word) < 4 or not word.isalpha():
            return found
        for candidate in one_edit(word):
            if candidate in self._known:
                return super().word_id(candidate)
        return self.unk_id


def one_edit(word: str) -> Iterator[str]:
    """Words one edit from ``word``: swaps, deletions, insertions, replacements (in order)."""
    for i in range(len(word) - 1):
        yield word[:i] + word[i + 1] + word[i] + word[i + 2:]
    for i in range(len(word)):
        yield word[:i] + word[i + 1:]
    for i in range(len(word) + 1):
        for c in string.ascii_lowercase:
            yield word[:i] + c + word[i:]
    for i in range(len(word)):
        for c in string.ascii_lowercase:
            if c != word[i]:
                yield word[:i] + c + word[i + 1:]


def slot_words(service: LocalService) -> list[str]:
    """How a service is shown after its slot token: where it is, and its status unless up."""
    status = "" if service.status == "up" else service.status
    return request_words(f"{service.where} {status}")


def prompt_words(words: Sequence[str], services: Sequence[LocalService]) -> list[str]:
    """The prompt's tokens: ``<bos>`` request ``<req>`` (slot token, its words)... ``<sep>``.

    The request comes first, at the same positions whatever the site lists, which a small
    model with absolute positions learns to read much faster than a request at the end.
    """
    out = [BOS, *words, REQ]
    for token, service in slots(services).items():
        out += [token, *slot_words(service)]
    return [*out, SEP]


def encode_prompt(vocabulary: WordVocabulary, words: Sequence[str],
                  services: Sequence[LocalService]) -> list[int]:
    """Token ids of the prompt (see :func:`prompt_words`); slots of unknown kinds are left out."""
    specials = vocabulary.get_vocab()
    known = [s for s in services if slot_token(s.kind, 1) in specials]
    return [specials[w] if w.startswith("<") else vocabulary.word_id(w)
            for w in prompt_words(words, known)]


def target_tokens(services: Sequence[str], offered: Sequence[LocalService]) -> list[str]:
    """The answer tokens for choosing ``services`` (names) among ``offered``."""
    index = {s.name: token for token, s in slots(offered).items()}
    missing = [n for n in services if n not in index]
    if missing:
        raise ConfigError(f"services {missing} have no slot among the offered {list(index)}")
    return [index[n] for n in services] + [END] if services else [NONE, END]


def render_prompt(request: str, context: SiteContext, services: Sequence[LocalService]) -> str:
    """The completed prompt text: where and when the user is, the request, what is relevant."""
    said = " ".join(request.split())
    if said[-1:] not in (".", "?", "!"):
        said += "."
    parts = [f"I am at site {context.site} (attached at {context.device}), local time "
             f"{context.local_time} (UTC{context.utc_offset_h:+g}).", said[:1].upper() + said[1:]]
    if services:
        parts.append("Relevant here: " + "; ".join(
            f"{s.name} ({s.kind}) at {s.where}, {s.hops} hop{'s' if s.hops != 1 else ''}, "
            f"{s.status}" for s in services) + ".")
    if context.network:
        parts.append("Network: " + "; ".join(context.network) + ".")
    return " ".join(parts)


@dataclass(frozen=True)
class ServiceChoice:
    """What the model chose: service names (most relevant first), its tokens, how sure."""

    services: tuple[str, ...]
    tokens: tuple[str, ...]
    confidence: float


class EdgePromptModel:
    """A loaded edge prompt model; implements :class:`~netgpt.generative.base.PromptCompleter`.

    Thread-safe: one request decodes at a time.
    """

    def __init__(self, net: Any, vocabulary: SpellingVocabulary, card: dict[str, Any],
                 root: Path) -> None:
        self.net = net
        self.vocabulary = vocabulary
        self.card = card
        self.root = root
        self.temperature = float(card.get("temperature", 1.0))
        self._ids = vocabulary.get_vocab()
        self._lock = threading.Lock()
        self._loaded: set[str] = set()
        self._current: str | None = ""  # the adapter switched on; "" until first chosen
        self._on_disk = {p.name: p for p in (root / "adapters").glob("*")
                         if (p / "adapter_config.json").is_file()}

    # -- loading -------------------------------------------------------------------------

    @classmethod
    def load(cls, root: Path | str = SHIPPED_PROMPT_WEIGHTS) -> EdgePromptModel:
        """Load weights written by ``prompt_training.train_prompt_model``; ConfigError if absent."""
        import torch
        from safetensors.torch import load_file
        from transformers import GPT2Config, GPT2LMHeadModel

        path = Path(root)
        if not (path / CARD_FILE).is_file():
            raise ConfigError(f"no edge prompt model at {path} (missing {CARD_FILE}); train one "
                              "with 'python -m netgpt.edge_models.prompt_training --out DIR'")
        with torch.device("cpu"):
            net = GPT2LMHeadModel(GPT2Config.from_pretrained(str(path)))
        weights = load_file(str(path / "model.safetensors"))
        found = net.load_state_dict({k: t.float() for k, t in weights.items()}, strict=False)
        missing = set(found.missing_keys) - {"lm_head.weight"}  # tied to the embeddings
        if missing or found.unexpected_keys:
            raise ConfigError(f"the prompt model at {path} does not fit its config: missing "
                              f"{sorted(missing)}, unexpected {sorted(found.unexpected_keys)}")
        net.tie_weights()
        net.eval()
        vocabulary = SpellingVocabulary(json.loads((path / TOKENIZER_FILE).read_text()))
        return cls(net, vocabulary,
                   json.loads((path / CARD_FILE).read_text()), path)

    @classmethod
    def load_shipped(cls) -> EdgePromptModel | None:
        """The shipped model, or ``None`` when this checkout has no weights."""
        if not (SHIPPED_PROMPT_WEIGHTS / CARD_FILE).is_file():
            return None
        return cls.load(SHIPPED_PROMPT_WEIGHTS)

    # -- adapters ------------------------------------------------------------------------

    def adapter_names(self) -> list[str]:
        """Adapter keys (:func:`adapter_key` of a site) this model can load."""
        return sorted(set(self._on_disk) | self._loaded)

    @property
    def loaded_adapters(self) -> list[str]:
        """Adapter keys now attached."""
        return sorted(self._loaded)

    def load_adapter(self, site: str, path: Path | None = None) -> None:
        """Attach ``site``'s LoRA adapter (from ``adapters/<key>`` unless ``path``)."""
        key = adapter_key(site)
        where = path or self._on_disk.get(key) or self.root / "adapters" / key
        if not (where / "adapter_config.json").is_file():
            raise ConfigError(f"no prompt adapter for site {site!r} at {where}; known: "
                              f"{self.adapter_names()}")
        with self._lock, quiet_peft_warnings():
            if key in self._loaded:
                return
            self.net = attach_adapter(self.net, where, key)
            self._loaded.add(key)
            self._on_disk.setdefault(key, where)
            self._current = ""  # peft switched the new one on

    def unload_adapter(self, site: str) -> None:
        """Detach ``site``'s adapter; with none left, the plain global model remains."""
        from peft import PeftModel

        key = adapter_key(site)
        with self._lock, quiet_peft_warnings():
            if key not in self._loaded:
                return
            assert isinstance(self.net, PeftModel)
            if self._loaded == {key}:
                self.net = self.net.unload()
            else:
                with warnings.catch_warnings():  # peft says which adapter it switched to
                    warnings.filterwarnings("ignore", message=".*which is now deleted",
                                            category=UserWarning)
                    self.net.delete_adapter(key)
            self._loaded.discard(key)
            self._current = ""

    def _switch(self, key: str | None) -> None:
        """Run the network with adapter ``key`` from now on (``None``: the global model).

        Adapter layers are switched only when the choice changes (switching them walks every
        layer). Callers hold the lock.
        """
        from peft import PeftModel

        if not isinstance(self.net, PeftModel):
            self._current = None
            return
        if self._current == key:
            return
        lora: Any = self.net.base_model  # peft's LoraModel (typed as a torch Module)
        if key is None:
            lora.disable_adapter_layers()
        else:
            lora.enable_adapter_layers()
            self.net.set_adapter(key)
        self._current = key

    # -- choosing ------------------------------------------------------------------------

    def known(self, services: Sequence[LocalService]) -> list[LocalService]:
        """``services`` of kinds the model was trained on (others can never be chosen)."""
        return [s for s in services if slot_token(s.kind, 1) in self._ids]

    def encode(self, words: Sequence[str], services: Sequence[LocalService]) -> list[int]:
        """Token ids of the prompt (see :func:`prompt_words`)."""
        return encode_prompt(self.vocabulary, words, services)

    def decode_steps(self, words: Sequence[str], services: Sequence[LocalService],
                     ) -> tuple[list[str], list[tuple[Any, int]]]:
        """Masked greedy decoding: the tokens, and per step with a choice (allowed logits, chosen).

        Only the prompt's own slots can be chosen, each once, at most
        :data:`MAX_SERVICES_PER_REQUEST`; ``<none>`` only first. ``services`` must be of kinds
        the vocabulary knows (:meth:`known`). Runs the network as it is now (callers choose the
        adapter).
        """
        import torch

        offered = list(slots(services))
        tokens: list[str] = []
        steps: list[tuple[Any, int]] = []
        with torch.inference_mode():
            result = self.net(input_ids=torch.tensor([self.encode(words, services)]),
                              use_cache=True)
            while True:
                if len(tokens) >= MAX_SERVICES_PER_REQUEST:
                    allowed = [END]
                else:
                    allowed = [t for t in offered if t not in tokens] + [END if tokens else NONE]
                if len(allowed) == 1:
                    pick = allowed[0]
                else:
                    scores = result.logits[0, -1, [self._ids[t] for t in allowed]]
                    best = int(torch.argmax(scores))
                    steps.append((scores, best))
                    pick = allowed[best]
                tokens.append(pick)
                if pick in (NONE, END):
                    break
                result = self.net(input_ids=torch.tensor([[self._ids[pick]]]),
                                  past_key_values=result.past_key_values, use_cache=True)
        if tokens[-1] == NONE:
            tokens.append(END)
        return tokens, steps

    def choose(self, request: str, services: Sequence[LocalService], *,
               adapter: str | None = None) -> ServiceChoice:
        """The services ``request`` needs among ``services``.

        Only the first :data:`MAX_SLOTS` services of kinds the model knows can be chosen.
        ``adapter`` is a site whose adapter to use (loaded on demand); ``None``: global model.
        """
        words = _checked_words(request)
        services = self.known(services)
        key = None if adapter is None else adapter_key(adapter)
        with _one_thread():
            if key is not None and key not in self._loaded:
                self.load_adapter(adapter or key)
            with self._lock, quiet_peft_warnings():
                self._switch(key)
                tokens, steps = self.decode_steps(words, services)
        logp = EdgeIntentModel.steps_logprob(steps, self.temperature)
        by_slot = slots(services)
        names = tuple(by_slot[t].name for t in tokens if t in by_slot)
        return ServiceChoice(names, tuple(tokens), math.exp(logp))

    def has_adapter(self, site: str) -> bool:
        """Whether ``site`` has an adapter on disk or attached."""
        return adapter_key(site) in self._on_disk or adapter_key(site) in self._loaded

    def complete(self, request: str, context: SiteContext, *,
                 use_adapter: bool = True) -> CompletedPrompt:
        """Complete ``request`` at ``context.site`` (its adapter when it has one and asked)."""
        start = time.perf_counter()
        adapter = context.site if use_adapter and self.has_adapter(context.site) else None
        choice = self.choose(request, context.services, adapter=adapter)
        chosen = [context.service(name) for name in choice.services]
        return CompletedPrompt(
            request=request, text=render_prompt(request, context, chosen), site=context.site,
            services=choice.services, model=str(self.card.get("name", MODEL_NAME)),
            adapter=adapter, confidence=choice.confidence,
            elapsed_s=time.perf_counter() - start)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Decode on one intra-op thread, then restore the process's setting.

    The model is tiny: a second thread buys nothing, and its OpenMP spin-waiting starves the
    Python threads it shares the process with (the embedded network's agents): measured beside
    the network, edge time went from 12 ms median / 941 ms max to 8 ms / 35 ms.
    """
    import torch

    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before != 1:
            torch.set_num_threads(before)


def _checked_words(request: str) -> list[str]:
    """The request's words; ConfigError when it is empty or over-long."""
    if len(request) > MAX_REQUEST_CHARS:
        raise ConfigError(f"the request has {len(request)} characters; the edge model reads at "
                          f"most {MAX_REQUEST_CHARS}: say it in fewer words")
    words = request_words(request)
    if not words:
        raise ConfigError(f"the request {request!r} has no words; ask something, e.g. "
                          "'printer?'")
    if len(words) > MAX_REQUEST_WORDS:
        raise ConfigError(f"the request has {len(words)} words; the edge model reads at most "
                          f"{MAX_REQUEST_WORDS}: say it in fewer words")
    return words
