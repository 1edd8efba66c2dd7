"""Training the edge prompt model and its per-site adapters.

``python -m netgpt.edge_models.prompt_training --out DIR`` (or :func:`train_prompt_model`).

Data (made by the project, seeded): ``prompt_corpus.generate_prompt_requests`` over the
campus and Abilene site directory, *train* partition only, in general words only, posed
against varied service lists (other sites' services mixed in, shuffled, statuses redrawn) so
that the model learns to read the slots rather than remember each site. Site words are never
shown to the global model: they are what a site adapter learns, from a handful of the site's
own requests (train partition) plus a few of its general ones, so it does not forget them.

The model is a GPT-2 decoder over a word vocabulary (words seen twice or more, minus those that
look like a typo of a much more frequent word, plus every word of the site directory), trained
from scratch with next-token loss on the answer tokens only; 10% of the request's words are
hidden as ``<unk>`` per batch. Weights are float16 safetensors (a few MB). The card records the
settings, sizes, timings and the held-out scores: service accuracy (exact set of services) of
the global and of the adapted model on general held-out phrasings, on held-out phrasings in
the sites' own words, and on the hand-written benchmark; and the latency of a completion.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from netgpt.cloud_models.transformers_local import quiet_peft_warnings
from netgpt.edge_models.intent_model import BOS, PAD, TOKENIZER_FILE, UNK
from netgpt.edge_models.intent_training import fit_next_token
from netgpt.edge_models.prompt_corpus import (
    BENCHMARK,
    PromptExample,
    generate_prompt_requests,
    request_words,
)
from netgpt.edge_models.prompt_model import (
    CARD_FILE,
    END,
    MODEL_NAME,
    EdgePromptModel,
    SpellingVocabulary,
    adapter_key,
    encode_prompt,
    one_edit,
    prompt_tokens,
    slot_words,
    target_tokens,
)
from netgpt.errors import ConfigError
from netgpt.generative.directory import SiteDirectory, load_directory, site_context

__all__ = [
    "PromptModelSettings",
    "adapter_examples",
    "build_vocabulary",
    "encode_example",
    "evaluate",
    "train_global",
    "train_prompt_model",
    "train_site_adapter",
]

_Encoded = tuple[list[int], list[float], list[bool]]


@dataclass(frozen=True)
class PromptModelSettings:
    """What :func:`train_prompt_model` trains; the defaults make the shipped model."""

    seed: int = 0
    examples: dict[str, int] = field(default_factory=lambda: {"campus": 6000, "abilene": 18000})
    word_dropout: float = 0.1
    n_layer: int = 2
    n_embd: int = 96
    n_head: int = 4
    n_positions: int = 160
    dropout: float = 0.0
    steps: int = 1400
    batch_size: int = 32
    lr: float = 2e-3
    warmup: int = 60
    max_minutes: float = 3.3  # a safety stop for the global model's training
    threads: int = 1  # torch CPU threads while training (one is fastest on a shared machine)
    adapter_word_examples: int = 16
    adapter_general_examples: int = 24
    adapter_steps: int = 50
    adapter_rank: int = 4
    adapter_lr: float = 3e-3
    adapters: bool = True
    eval_general: int = 300  # held-out general requests per topology
    eval_words: int = 16  # held-out site-word requests per site


def _typo_like(word: str, count: int, counts: Counter[str]) -> bool:
    """Whether ``word`` is one edit from a word seen at least five times as often."""
    return len(word) >= 4 and any(counts.get(c, 0) >= 5 * count for c in one_edit(word))


def build_vocabulary(examples: Sequence[PromptExample],
                     directory: SiteDirectory) -> SpellingVocabulary:
    """The vocabulary: special tokens, then words of the examples seen twice or more.

    Typo-like words are left out (a misspelling is read through the spelling correction);
    every word of the directory (service slots and site words) is in.
    """
    counts: Counter[str] = Counter()
    for ex in examples:
        counts.update(request_words(ex.request))
        for s in ex.offered:
            counts.update(slot_words(s))
    kept = {w for w, c in counts.items() if c >= 2 and not _typo_like(w, c, counts)}
    for entry in directory.entries:
        for s in entry.services:
            kept.update(slot_words(s))
        for word in entry.words:
            kept.update(request_words(word.phrase))
    vocab = {tok: i for i, tok in enumerate(prompt_tokens(directory.kinds))}
    for w in sorted(kept - set(vocab)):
        vocab[w] = len(vocab)
    return SpellingVocabulary(vocab)


def encode_example(vocabulary: SpellingVocabulary, ex: PromptExample,
                   max_len: int) -> _Encoded | None:
    """(ids, loss weight per position, which positions are request words), or None if long."""
    words = request_words(ex.request)
    prompt = encode_prompt(vocabulary, words, ex.offered)
    ids = vocabulary.get_vocab()
    answer = [ids[t] for t in target_tokens(ex.services, ex.offered)]
    if len(prompt) + len(answer) > max_len:
        return None
    weights = [0.0] * len(prompt) + [1.0] * len(answer)
    hide = [1 <= i <= len(words) for i in range(len(prompt))] + [False] * len(answer)
    return prompt + answer, weights, hide


def _examples(s: PromptModelSettings, directory: SiteDirectory) -> list[PromptExample]:
    out: list[PromptExample] = []
    for i, (topology, n) in enumerate(sorted(s.examples.items())):
        out += generate_prompt_requests(topology, n, split="train", seed=s.seed * 100 + i,
                                        vary=True, directory=directory)
    return out


def train_global(examples: Sequence[PromptExample], s: PromptModelSettings,
                 directory: SiteDirectory, *, deadline: float | None = None,
                 ) -> tuple[Any, SpellingVocabulary, list[float]]:
    """Train a GPT-2 from scratch on ``examples``: (network, vocabulary, loss per 50 steps)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(s.seed)
    vocabulary = build_vocabulary(examples, directory)
    data = [e for e in (encode_example(vocabulary, ex, s.n_positions) for ex in examples) if e]
    if not data:
        raise ConfigError("no training example fits; check the corpus settings")
    ids = vocabulary.get_vocab()
    config = GPT2Config(vocab_size=len(ids), n_positions=s.n_positions, n_embd=s.n_embd,
                        n_layer=s.n_layer, n_head=s.n_head, resid_pdrop=s.dropout,
                        embd_pdrop=s.dropout, attn_pdrop=s.dropout, bos_token_id=ids[BOS],
                        eos_token_id=ids[END], pad_token_id=ids[PAD])
    net = GPT2LMHeadModel(config)
    losses = fit_next_token(net, data, steps=s.steps, batch_size=s.batch_size, lr=s.lr,
                            warmup=s.warmup, seed=s.seed, params=list(net.parameters()),
                            pad_id=ids[PAD], unk_id=ids[UNK], word_dropout=s.word_dropout,
                            deadline=deadline)
    return net, vocabulary, losses


def _save(net: Any, vocabulary: SpellingVocabulary, out: Path) -> None:
    import torch
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    net.config.save_pretrained(str(out))
    vocabulary.save(out / TOKENIZER_FILE)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in net.state_dict().items()
             if k != "lm_head.weight"}  # tied to the input embeddings
    save_file(state, str(out / "model.safetensors"))
    (out / "model.safetensors").chmod(0o644)  # readable like the rest of the package


def adapter_examples(topology: str, site: str, s: PromptModelSettings,
                     directory: SiteDirectory) -> list[PromptExample]:
    """A site's adapter data: its own words (train partition) and a few general requests."""
    words = generate_prompt_requests(topology, s.adapter_word_examples, split="train",
                                     seed=s.seed + 31, site=site, site_words=True,
                                     directory=directory)
    general = generate_prompt_requests(topology, s.adapter_general_examples, split="train",
                                       seed=s.seed + 37, site=site, directory=directory)
    return words + general


def train_site_adapter(model: EdgePromptModel, site: str, examples: Sequence[PromptExample],
                       out: Path, *, settings: PromptModelSettings | None = None,
                       ) -> dict[str, Any]:
    """Fit a LoRA adapter for ``site`` on ``examples`` and save it to ``out/<adapter key>``.

    The model's network is left as it was (the adapter is saved, not attached).
    """
    import torch
    from peft import LoraConfig, get_peft_model

    s = settings or PromptModelSettings()
    key = adapter_key(site)
    data = [e for e in (encode_example(model.vocabulary, ex, s.n_positions) for ex in examples)
            if e]
    if not data:
        raise ConfigError(f"no adapter example for site {site!r} fits the model")
    torch.manual_seed(s.seed)
    lora = LoraConfig(r=s.adapter_rank, lora_alpha=2 * s.adapter_rank, lora_dropout=0.0,
                      target_modules=["c_attn", "c_proj", "c_fc"], fan_in_fan_out=True)
    vocab = model.vocabulary.get_vocab()
    with quiet_peft_warnings():
        tuned = get_peft_model(model.net, lora, adapter_name=key)
        trainable = [p for p in tuned.parameters() if p.requires_grad]
        losses = fit_next_token(tuned, data, steps=s.adapter_steps, batch_size=8,
                                lr=s.adapter_lr, warmup=5, seed=s.seed, params=trainable,
                                pad_id=vocab[PAD], unk_id=vocab[UNK])
        out.mkdir(parents=True, exist_ok=True)
        tuned.save_pretrained(str(out), selected_adapters=[key])
        (out / "README.md").unlink(missing_ok=True)  # peft's model-card stub
        for written in (out / key).iterdir():
            written.chmod(0o644)
        model.net = tuned.unload()
    size = sum(p.stat().st_size for p in (out / key).iterdir())
    return {"examples": len(data), "loss": [round(losses[0], 4), round(losses[-1], 4)],
            "bytes": size}


def evaluate(model: EdgePromptModel, examples: Sequence[PromptExample], *,
             adapted: bool) -> float:
    """Share of ``examples`` whose chosen services are exactly the expected set.

    ``adapted``: each example is read with its site's adapter (the global model where the site
    has none).
    """
    if not examples:
        return 0.0
    right = 0
    for ex in examples:
        adapter = ex.site if adapted and model.has_adapter(ex.site) else None
        choice = model.choose(ex.request, ex.offered, adapter=adapter)
        right += set(choice.services) == set(ex.services)
    return right / len(examples)


def _latency_ms(model: EdgePromptModel, directory: SiteDirectory, *,
                use_adapter: bool) -> dict[str, float]:
    from netgpt.sim_networks.topology import build_topology

    topologies = {t: build_topology(t) for t in directory.topologies()}
    at = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    times = []
    for b in BENCHMARK:
        context = site_context(topologies[b.topology], b.site, at=at, directory=directory)
        model.complete(b.request, context, use_adapter=use_adapter)  # warm (adapter load)
        times.append(model.complete(b.request, context, use_adapter=use_adapter).elapsed_s)
    ms = sorted(1000 * t for t in times)
    return {"median": round(statistics.median(ms), 2), "p95": round(ms[int(0.95 * len(ms))], 2)}


def _scores(model: EdgePromptModel, s: PromptModelSettings,
            directory: SiteDirectory) -> dict[str, Any]:
    general: list[PromptExample] = []
    words: list[PromptExample] = []
    for i, topology in enumerate(sorted(s.examples)):
        general += generate_prompt_requests(topology, s.eval_general, split="heldout",
                                            seed=s.seed + 1000 + i, directory=directory)
        for site in directory.sites(topology):
            if directory.entry(topology, site).words:
                words += generate_prompt_requests(topology, s.eval_words, split="heldout",
                                                  seed=s.seed + 2000 + i, site=site,
                                                  site_words=True, directory=directory)
    bench_words = [b for b in BENCHMARK if b.source == "site-words"]
    bench_general = [b for b in BENCHMARK if b.source != "site-words"]
    sets = {"heldout_general": general, "heldout_site_words": words,
            "benchmark_general": bench_general, "benchmark_site_words": bench_words,
            "benchmark_all": list(BENCHMARK)}
    return {name: {"n": len(exs), "global": round(evaluate(model, exs, adapted=False), 4),
                   "adapted": round(evaluate(model, exs, adapted=True), 4)}
            for name, exs in sets.items()}


def train_prompt_model(out: Path, settings: PromptModelSettings | None = None, *,
                       log: Any = None, directory: SiteDirectory | None = None,
                       ) -> dict[str, Any]:
    """Train the global model and the site adapters into ``out``; returns the card."""
    import torch

    s = settings or PromptModelSettings()
    threads = torch.get_num_threads()
    torch.set_num_threads(s.threads)
    try:
        return _train(out, s, log or (lambda _msg: None), directory or load_directory())
    finally:
        torch.set_num_threads(threads)


def _train(out: Path, s: PromptModelSettings, say: Any, d: SiteDirectory) -> dict[str, Any]:
    started = time.monotonic()
    random.seed(s.seed)
    examples = _examples(s, d)
    say(f"{len(examples)} training requests over {sum(len(d.sites(t)) for t in s.examples)} "
        "sites")
    net, vocabulary, losses = train_global(examples, s, d,
                                           deadline=started + s.max_minutes * 60)
    train_s = round(time.monotonic() - started, 1)
    say(f"trained {len(losses)} x 50 steps in {train_s} s, loss {losses[0]:.3f} -> "
        f"{losses[-1]:.3f}")
    _save(net, vocabulary, out)
    params = sum(p.numel() for p in net.parameters())
    card: dict[str, Any] = {
        "name": MODEL_NAME, "settings": asdict(s), "examples": len(examples),
        "vocabulary": len(vocabulary.get_vocab()), "parameters": params,
        "model_bytes": (out / "model.safetensors").stat().st_size,
        "losses": [round(x, 4) for x in losses], "steps_run": min(s.steps, 50 * len(losses)),
        "temperature": 1.0, "train_seconds": train_s}
    (out / CARD_FILE).write_text(json.dumps(card, indent=2))
    model = EdgePromptModel.load(out)  # what was saved (float16 round trip)
    adapters: dict[str, Any] = {}
    if s.adapters:
        for topology in sorted(s.examples):
            for site in d.sites(topology):
                exs = adapter_examples(topology, site, s, d)
                adapters[site] = train_site_adapter(model, site, exs, out / "adapters",
                                                    settings=s)
        say(f"{len(adapters)} adapters in {time.monotonic() - started - train_s:.1f} s")
    card["adapters"] = adapters
    card["adapter_seconds"] = round(time.monotonic() - started - train_s, 1)
    model = EdgePromptModel.load(out)
    card["scores"] = _scores(model, s, d)
    card["latency_ms"] = {"global": _latency_ms(model, d, use_adapter=False),
                          "adapted": _latency_ms(model, d, use_adapter=True)}
    card["total_seconds"] = round(time.monotonic() - started, 1)
    (out / CARD_FILE).write_text(json.dumps(card, indent=2))
    say(json.dumps({"scores": card["scores"], "latency_ms": card["latency_ms"]}, indent=1))
    return card


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m netgpt.edge_models.prompt_training --out DIR``."""
    parser = argparse.ArgumentParser(description="Train the edge prompt model and adapters.")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    card = train_prompt_model(args.out, PromptModelSettings(seed=args.seed), log=print)
    print(f"done in {card['total_seconds']} s: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
