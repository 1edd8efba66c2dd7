"""The edge intent model: operator text + local context -> a formal intent, with a confidence.

A small GPT-2 decoder (trained from scratch by :mod:`netgpt.edge_models.intent_training`) reads
a :class:`~netgpt.edge_models.intent_tagging.TaggedRequest` prompt (the network's names, the
operator's site marked ``here``, the text with its names and quantities as placeholders) and
writes the :mod:`~netgpt.edge_models.intent_grammar` token language. Decoding is greedy and
masked by :class:`~netgpt.edge_models.intent_grammar.OutputGrammar` at every step, so the
result is always a draft :func:`~netgpt.cloud_models.intent_draft.intent_from_draft` accepts.

``confidence`` is the probability the model gives its whole answer (the product over steps of
the chosen token's probability among the allowed ones), with the logits divided by a
temperature fitted at training time on held-apart requests so that it tracks how often answers
of that confidence are right. Callers ask a clarifying question below a threshold
(:data:`DEFAULT_MIN_CONFIDENCE`) instead of acting on a guess.

Per-site LoRA adapters (``WEIGHTS/adapters/<site>/``) are loaded with :meth:`load_adapter`,
switched per request, and removed with :meth:`unload_adapter`.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netgpt.cloud_models.intent_draft import DraftError, intent_from_draft
from netgpt.cloud_models.transformers_local import quiet_peft_warnings
from netgpt.edge_models.intent_grammar import END, GrammarError, OutputGrammar, build_draft
from netgpt.edge_models.intent_tagging import TaggedRequest, tag_request
from netgpt.errors import ConfigError
from netgpt.intents.model import Intent
from netgpt.intents.names import NameTable

__all__ = [
    "DEFAULT_MIN_CONFIDENCE",
    "SHIPPED_INTENT_WEIGHTS",
    "EdgeIntentModel",
    "EdgeReading",
    "WordVocabulary",
    "attach_adapter",
    "output_token",
]

SHIPPED_INTENT_WEIGHTS = Path(__file__).resolve().parent / "intent_weights"
CARD_FILE = "intent_model.json"
TOKENIZER_FILE = "vocab.json"
UNK = "<unk>"
# inflections only: a derived word can mean another thing ("lower" is not "low", the priority)
_SUFFIXES = ("ing", "ed", "es", "s")
BOS, SEP, PAD = "<bos>", "<sep>", "<pad>"
# the model is overconfident on phrasings unlike its training data (benchmarks/intent_model.py
# measures it), so the default acts only on readings it is very sure of
DEFAULT_MIN_CONFIDENCE = 0.95
_MAX_STEPS = 48


def output_token(token: str) -> str:
    """The vocabulary entry for an output-language token.

    Placeholders are shared with the prompt (the model copies them); grammar words get a mark
    so the prompt's own "block" or "no" is never read as one.
    """
    return token if token.startswith("<") else f"\u00a7{token}"


class WordVocabulary:
    """Word-level vocabulary: a word the training text had, else its stem, else ``<unk>``.

    A word the model never saw carries no meaning it could have learnt, so it is read as
    ``<unk>`` (training drops known words to ``<unk>`` now and then, so the model learns to
    read around one) rather than as sub-word pieces that happen to match other words.
    """

    def __init__(self, vocab: dict[str, int]) -> None:
        self._vocab = dict(vocab)
        self.unk_id = self._vocab[UNK]

    @classmethod
    def build(cls, texts: list[str], specials: list[str], min_count: int = 2,
              never: frozenset[str] = frozenset()) -> WordVocabulary:
        """Words seen ``min_count`` times in ``texts``, except ``never``, after ``specials``."""
        counts: dict[str, int] = {}
        for t in texts:
            for w in t.split():
                counts[w] = counts.get(w, 0) + 1
        vocab = {tok: i for i, tok in enumerate(dict.fromkeys(specials))}
        for w, c in sorted(counts.items()):
            if c >= min_count and w not in vocab and w not in never:
                vocab[w] = len(vocab)
        return cls(vocab)

    def get_vocab(self) -> dict[str, int]:
        """Token -> id."""
        return dict(self._vocab)

    def word_id(self, word: str) -> int:
        """The id of ``word``, of its stem, or of ``<unk>``."""
        found = self._vocab.get(word)
        if found is not None:
            return found
        for suffix in _SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                found = self._vocab.get(word[: -len(suffix)])
                if found is not None:
                    return found
        return self.unk_id

    def encode(self, text: str) -> list[int]:
        """Ids of the space-separated words of ``text``."""
        return [self.word_id(w) for w in text.split()]

    def save(self, path: Path) -> None:
        """Write the vocabulary as JSON."""
        path.write_text(json.dumps(self._vocab))

    @classmethod
    def load(cls, path: Path) -> WordVocabulary:
        """Read a vocabulary written by :meth:`save`."""
        return cls(json.loads(path.read_text()))


def attach_adapter(net: Any, where: Path, name: str) -> Any:
    """``net`` with the LoRA adapter saved in ``where`` attached as ``name``, in eval mode.

    The first adapter wraps the model in peft's ``PeftModel``; later ones join that wrapper.
    """
    from peft import PeftModel

    if isinstance(net, PeftModel):
        net.load_adapter(str(where), adapter_name=name)
    else:
        net = PeftModel.from_pretrained(net, str(where), adapter_name=name)
    net.eval()
    return net


@dataclass(frozen=True)
class EdgeReading:
    """One reading: the intent (``None`` when the draft failed validation), how sure, how fast.

    ``tokens`` is what the model wrote; ``tagged`` the text as it read it; ``error`` says why
    ``intent`` is ``None``; ``unsaid_names`` are the names it chose that the text does not say
    (a site's own words, read through its adapter; the operator's own site said as "here" does
    not count); ``unknown_words`` are words of the text the model never learnt (read as
    ``<unk>``: it cannot know what they mean, "not" included).
    """

    intent: Intent | None
    draft: dict[str, Any]
    tokens: tuple[str, ...]
    confidence: float
    latency_ms: float
    adapter: str | None
    tagged: str
    error: str | None = None
    unsaid_names: tuple[str, ...] = ()
    unknown_words: tuple[str, ...] = ()


class EdgeIntentModel:
    """A loaded edge intent model (thread-safe: one request decodes at a time)."""

    def __init__(self, net: Any, tokenizer: WordVocabulary, card: dict[str, Any],
                 root: Path) -> None:
        self.net = net
        self.tokenizer = tokenizer
        self.card = card
        self.root = root
        self.temperature = float(card.get("temperature", 1.0))
        self._lock = threading.Lock()
        self._adapters: set[str] = set()
        self._active: str | None = None
        self._adapters_on = False
        vocab = tokenizer.get_vocab()
        self._ids = vocab
        self._tokens = {i: t for t, i in vocab.items()}

    # -- loading -------------------------------------------------------------------------

    @classmethod
    def load(cls, root: Path | str = SHIPPED_INTENT_WEIGHTS) -> EdgeIntentModel:
        """Load weights written by ``netgpt intent-model train``; a clear error when absent."""
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel

        path = Path(root)
        card_path = path / CARD_FILE
        if not card_path.is_file():
            raise ConfigError(f"no edge intent model at {path} (missing {CARD_FILE}); train one "
                              "with 'netgpt intent-model train --out DIR'")
        card = json.loads(card_path.read_text())
        tokenizer = WordVocabulary.load(path / TOKENIZER_FILE)
        config = GPT2Config.from_pretrained(str(path))
        with torch.device("cpu"):
            net = GPT2LMHeadModel(config)
        from safetensors.torch import load_file

        state = load_file(str(path / "model.safetensors"))
        net.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
        net.tie_weights()
        net.eval()
        return cls(net, tokenizer, card, path)

    @classmethod
    def load_shipped(cls) -> EdgeIntentModel | None:
        """The shipped model, or ``None`` when this checkout has no weights."""
        if not (SHIPPED_INTENT_WEIGHTS / CARD_FILE).is_file():
            return None
        return cls.load(SHIPPED_INTENT_WEIGHTS)

    # -- adapters ------------------------------------------------------------------------

    def adapter_names(self) -> list[str]:
        """Sites with an adapter on disk under this model's ``adapters/``."""
        base = self.root / "adapters"
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if (p / "adapter_config.json").is_file())

    def load_adapter(self, site: str, path: Path | None = None) -> None:
        """Add ``site``'s LoRA adapter (from ``adapters/<site>`` unless ``path``)."""
        where = path or self.root / "adapters" / site
        if not (where / "adapter_config.json").is_file():
            raise ConfigError(f"no intent adapter for site {site!r} at {where}; known: "
                              f"{self.adapter_names()}")
        with self._lock, quiet_peft_warnings():
            if site in self._adapters:
                return
            self.net = attach_adapter(self.net, where, site)
            self._adapters.add(site)
            self._active = None
            self._adapters_on = True  # peft attaches an adapter switched on
            self._use(None)

    def unload_adapter(self, site: str) -> None:
        """Remove ``site``'s adapter; with none left, the plain global model remains."""
        from peft import PeftModel

        with self._lock, quiet_peft_warnings():
            if site not in self._adapters:
                return
            net = self.net
            assert isinstance(net, PeftModel)
            if len(self._adapters) == 1:
                self.net = net.unload()
                self._adapters_on = False
            else:
                net.delete_adapter(site)
            self._adapters.discard(site)
            self._active = None
            self._use(None)

    @property
    def loaded_adapters(self) -> list[str]:
        """Adapters now attached."""
        return sorted(self._adapters)

    def _use(self, site: str | None) -> None:
        from peft import PeftModel

        if not isinstance(self.net, PeftModel):
            return
        tuner = self.net.base_model
        if site is None:
            if self._adapters_on:
                getattr(tuner, "disable_adapter_layers")()  # noqa: B009 (torch Module typing)
                self._adapters_on = False
            self._active = None
            return
        if not self._adapters_on:
            getattr(tuner, "enable_adapter_layers")()  # noqa: B009
            self._adapters_on = True
        if self._active != site:
            self.net.set_adapter(site)
            self._active = site

    # -- reading -------------------------------------------------------------------------

    def encode_prompt(self, request: TaggedRequest) -> list[int]:
        """Token ids of ``<bos> prompt <sep>``."""
        ids = self.tokenizer.encode(request.prompt())
        return [self._ids[BOS], *ids, self._ids[SEP]]

    def read(self, text: str, names: NameTable, *, site: str | None = None,
             adapter: str | None = None, owner: str = "operator") -> EdgeReading:
        """Read ``text`` said at ``site`` (optional) with ``adapter`` (a loaded site adapter)."""
        if not text or not text.strip():
            raise ConfigError("the intent text is empty; say what must hold, e.g. "
                              "'engineering must reach servers'")
        if adapter is not None and adapter not in self._adapters:
            self.load_adapter(adapter)
        start = time.perf_counter()
        request = tag_request(text, names, site=site if site in names.sites else None)
        with self._lock:
            self._use(adapter)
            tokens, logp = self._decode(request)
        intent, error, draft = None, None, {}
        try:
            draft = build_draft(tokens, request)
            intent = intent_from_draft(draft, names, text=text[:4000], owner=owner)
        except (GrammarError, DraftError, ValueError, KeyError) as exc:
            error = str(exc)
        said = set(request.text.split())
        unsaid = tuple(str(request.by_token[t].value) for t in dict.fromkeys(tokens)
                       if t in request.by_token and t.startswith("<e") and t not in said
                       and t != request.here)
        return EdgeReading(
            intent=intent, draft=draft, tokens=tuple(tokens), confidence=math.exp(logp),
            latency_ms=(time.perf_counter() - start) * 1000, adapter=adapter,
            tagged=request.text, error=error, unsaid_names=unsaid,
            unknown_words=tuple(w for w in request.text.split()
                                if w[0].isalnum() and self.tokenizer.word_id(w)
                                == self.tokenizer.unk_id),
        )

    def _decode(self, request: TaggedRequest) -> tuple[list[str], float]:
        tokens, steps = self.decode_steps(request)
        return tokens, self.steps_logprob(steps, self.temperature)

    @staticmethod
    def steps_logprob(steps: list[tuple[Any, int]], temperature: float) -> float:
        """Log-probability of the chosen tokens of :meth:`decode_steps` at ``temperature``."""
        import torch

        return sum(float(torch.log_softmax(scores / temperature, dim=0)[chosen])
                   for scores, chosen in steps)

    def decode_steps(self, request: TaggedRequest) -> tuple[list[str], list[tuple[Any, int]]]:
        """Greedy grammar-masked decoding: the tokens, and per step (allowed logits, chosen)."""
        import torch

        grammar = OutputGrammar(request)
        ids = self.encode_prompt(request)
        out: list[str] = []
        steps: list[tuple[Any, int]] = []
        with torch.inference_mode():
            inp = torch.tensor([ids])
            result = self.net(input_ids=inp, use_cache=True)
            past = result.past_key_values
            logits = result.logits[0, -1]
            for _ in range(_MAX_STEPS):
                allowed = grammar.allowed(out)
                if not allowed:
                    break
                idx = torch.tensor([self._ids[output_token(t)] for t in allowed])
                scores = logits[idx]
                best = int(torch.argmax(scores))
                steps.append((scores, best))
                tok = allowed[best]
                out.append(tok)
                if tok == END:
                    break
                result = self.net(input_ids=torch.tensor([[self._ids[output_token(tok)]]]),
                                  past_key_values=past, use_cache=True)
                past = result.past_key_values
                logits = result.logits[0, -1]
        if not out or out[-1] != END:
            out.append(END)
        return out, steps
