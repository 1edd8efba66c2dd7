"""Training the edge intent model and its per-site adapters (``netgpt intent-model train``).

Data (all made by the project, seeded): :func:`~netgpt.edge_models.intent_corpus.generate_requests`
over the campus, Abilene and NetConfEval name tables, *train* partition only (its held-out frames
and words are never seen here), with a share of requests re-said from the operator's own site
("block telnet from here"); plus the NetConfEval sentences of one half of them (a stable hash,
:func:`netconfeval_half`), labelled by the controlled parser, each given three times (given
once, they were 3% of the data and the model misread NetConfEval's fronted "To reach X from Y,
..." sentences: 0.955 on its batches against 1.0, measured). Each request is tagged
(:func:`~netgpt.edge_models.intent_tagging.tag_request`) and its draft aligned to the output
language (:func:`~netgpt.edge_models.intent_grammar.align`); requests that do not align are
counted and dropped. The benchmark scores NetConfEval on every batch and, apart, on the batches
whose sentences all come from the other half.

The model is a GPT-2 decoder over a word vocabulary of the prompts (words seen twice or more;
others read as their inflection's stem or ``<unk>``), trained from scratch to write the output
language and, at half that weight, to predict the request's own next word. It learns to read
around words it does not know two ways: 12% of the text's words are hidden as ``<unk>`` in
each batch, and 5% of the corpus's lexical entries are written as never-learnt words (whole
entries, such as all of "reach out to", the way an unseen phrasing shows up).
After training, the softmax temperature for the confidence is fitted on fresh train-partition
requests (lowest Brier score of confidence against exact match). Weights are saved as float16
safetensors: a few MB. Per-site adapters (LoRA on the attention and MLP projections) learn a
site's own words from a handful of requests (:func:`train_site_adapter`).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from netgpt.cloud_models.corpus import JARGON, corpus_name_tables
from netgpt.cloud_models.transformers_local import quiet_peft_warnings
from netgpt.edge_models.intent_corpus import NOVEL_WORD
from netgpt.edge_models.intent_grammar import GRAMMAR_TOKENS, align
from netgpt.edge_models.intent_model import (
    BOS,
    CARD_FILE,
    PAD,
    SEP,
    TOKENIZER_FILE,
    UNK,
    EdgeIntentModel,
    WordVocabulary,
    output_token,
)
from netgpt.edge_models.intent_tagging import TaggedRequest, placeholder_tokens, tag_request
from netgpt.errors import ConfigError
from netgpt.intents.names import NameTable

__all__ = [
    "IntentModelSettings",
    "TrainedExample",
    "examples_from_requests",
    "train_intent_model",
    "train_site_adapter",
]

_DEIXIS = ("here", "this site", "our site", "us", "the local site", "my site", "this location")


@dataclass(frozen=True)
class IntentModelSettings:
    """What ``netgpt intent-model train`` trains; the defaults make the shipped model."""

    seed: int = 0
    requests: dict[str, int] = field(default_factory=lambda: {
        "campus": 18000, "abilene": 14000, "netconfeval": 10000})
    netconfeval_sentences: int = 1500  # from the training half (see netconfeval_half): all
    netconfeval_repeat: int = 3  # times each of those sentences is in the training data
    deixis_share: float = 0.08
    word_dropout: float = 0.12
    novel_share: float = 0.05  # lexical entries written as never-learnt words (intent_corpus)
    n_layer: int = 4
    n_embd: int = 192
    n_head: int = 4
    n_positions: int = 320
    dropout: float = 0.1
    steps: int = 1400
    batch_size: int = 32
    lr: float = 2e-3
    warmup: int = 100
    text_weight: float = 0.5  # weight of predicting the request's own next word
    calibration_requests: int = 600
    max_minutes: float = 13.0
    adapter_sites: tuple[str, ...] = ("campus", "abilene")
    adapter_examples: int = 24
    adapter_steps: int = 150
    adapter_rank: int = 8
    device: str = "cpu"  # the global model's training only; "cuda" for exploration runs


@dataclass(frozen=True)
class TrainedExample:
    """One training request: the tagged prompt and the output tokens it should produce."""

    request: TaggedRequest
    target: list[str]
    topology: str


def _say_here(req: TaggedRequest, rng: random.Random) -> TaggedRequest | None:
    """``req`` re-said from one of its named sites: the site becomes "here" (or None)."""
    sites = [m for m in req.of_kind("endpoint")
             if m.mentioned and str(m.value).startswith("site:")
             and req.text.split().count(m.token) == 1]
    if not sites:
        return None
    m = rng.choice(sites)
    text = req.text.replace(m.token, rng.choice(_DEIXIS))
    return TaggedRequest(text=text, mentions=req.mentions, here=m.token)


def examples_from_requests(requests: Sequence[Any], tables: dict[str, NameTable], *,
                           rng: random.Random, deixis_share: float = 0.0,
                           ) -> tuple[list[TrainedExample], int]:
    """Tag and align labelled requests; returns (examples, how many did not align)."""
    out, dropped = [], 0
    for r in requests:
        if r.topology not in tables:
            from netgpt.sim_networks.topology import build_topology

            tables[r.topology] = NameTable.from_topology(build_topology(r.topology))
        names = tables[r.topology]
        site = rng.choice(list(names.sites)) if names.sites and rng.random() < 0.3 else None
        req = tag_request(r.text, names, site=site)
        target = align(r.draft, req, r.text)
        if target is None:
            dropped += 1
            continue
        if deixis_share and rng.random() < deixis_share:
            moved = _say_here(req, rng)
            if moved is not None:
                req = moved
        out.append(TrainedExample(req, target, r.topology))
    return out, dropped


def _tokenizer(prompts: Sequence[str]) -> WordVocabulary:
    special = [PAD, BOS, SEP, UNK, *placeholder_tokens(),
               *[output_token(t) for t in GRAMMAR_TOKENS]]
    # NOVEL_WORD stands for a word never learnt: it is read as <unk>
    return WordVocabulary.build(list(prompts), special, never=frozenset({NOVEL_WORD}))


_Encoded = tuple[list[int], list[float], list[bool]]


def _encode(tk: WordVocabulary, ex: TrainedExample, max_len: int, text_weight: float,
            ) -> _Encoded | None:
    """(ids, loss weight per position, which positions are words word dropout may hide)."""
    vocab = tk.get_vocab()
    prompt = ex.request.prompt()
    ctx, _, text = prompt.partition(" | ")
    ctx_ids = tk.encode(ctx + " |")
    words = text.split()
    text_ids = tk.encode(text)
    out_ids = [vocab[output_token(t)] for t in ex.target]
    ids = [vocab[BOS], *ctx_ids, *text_ids, vocab[SEP], *out_ids]
    if len(ids) > max_len:
        return None
    # weights[i] is the weight for predicting ids[i] from what precedes it
    weights = ([0.0] * (1 + len(ctx_ids)) + [text_weight] * len(text_ids) + [0.0]
               + [1.0] * len(out_ids))
    hideable = ([False] * (1 + len(ctx_ids)) + [not w.startswith("<") for w in words]
                + [False] * (1 + len(out_ids)))
    return ids, weights, hideable


def _lr(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def fit_next_token(net: Any, data: list[_Encoded], *, steps: int, batch_size: int,
         lr: float, warmup: int, seed: int, params: list[Any], pad_id: int, unk_id: int,
         word_dropout: float = 0.0, deadline: float | None = None) -> list[float]:
    """Weighted next-token training; returns the mean loss of every 50 steps.

    Batches are drawn from length-sorted runs (little padding); ``word_dropout`` hides that
    share of the text's words as ``<unk>`` in each batch.
    """
    import torch

    rng = random.Random(seed)
    device = next(net.parameters()).device
    order = sorted(range(len(data)), key=lambda i: len(data[i][0]))
    runs = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    losses: list[float] = []
    running: list[float] = []
    net.train()
    for step in range(steps):
        if deadline is not None and time.monotonic() > deadline:
            break
        batch = [data[i] for i in rng.choice(runs)]
        width = max(len(b[0]) for b in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        w = torch.zeros((len(batch), width))
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (x, wt, hide) in enumerate(batch):
            if word_dropout:
                x = [unk_id if h and rng.random() < word_dropout else t
                     for t, h in zip(x, hide, strict=True)]
            ids[row, :len(x)] = torch.tensor(x)
            w[row, :len(x)] = torch.tensor(wt)
            mask[row, :len(x)] = 1
        for g in opt.param_groups:
            g["lr"] = _lr(step, steps, lr, warmup)
        ids, w, mask = ids.to(device), w.to(device), mask.to(device)
        logits = net(input_ids=ids, attention_mask=mask).logits[:, :-1]
        target = ids[:, 1:]
        weight = w[:, 1:]
        ce = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none")
        loss = (ce * weight.reshape(-1)).sum() / weight.sum().clamp(min=1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        running.append(loss.item())
        if (step + 1) % 50 == 0:
            losses.append(sum(running) / len(running))
            running = []
    net.eval()
    if running:
        losses.append(sum(running) / len(running))
    return losses


def _calibrate(model: EdgeIntentModel, examples: Sequence[TrainedExample]) -> dict[str, float]:
    """Fit the confidence temperature: lowest Brier score of confidence vs exact match."""
    steps_by_example = []
    for ex in examples:
        tokens, steps = model.decode_steps(ex.request)
        steps_by_example.append((steps, tokens == ex.target))
    best: tuple[float, float] = (float("inf"), 1.0)
    for t in [0.5 + 0.1 * i for i in range(36)]:
        brier = 0.0
        for steps, right in steps_by_example:
            conf = math.exp(EdgeIntentModel.steps_logprob(steps, t))
            brier += (conf - float(right)) ** 2
        brier /= max(1, len(steps_by_example))
        if brier < best[0]:
            best = (brier, t)
    exact = sum(r for _, r in steps_by_example) / max(1, len(steps_by_example))
    scored = [(math.exp(EdgeIntentModel.steps_logprob(steps, best[1])), right)
              for steps, right in steps_by_example]
    # the lowest threshold at which at most 5% of the readings acted on are wrong
    threshold = 0.99
    for t in [0.5 + 0.01 * i for i in range(50)]:
        acted = [right for conf, right in scored if conf >= t]
        if acted and acted.count(False) / len(acted) <= 0.05:
            threshold = t
            break
    return {"temperature": round(best[1], 2), "brier": round(best[0], 4),
            "calibration_exact": round(exact, 4), "min_confidence": round(threshold, 2)}


@dataclass(frozen=True)
class LabelledSentence:
    """A NetConfEval sentence with the draft the controlled parser reads from it."""

    text: str
    draft: dict[str, Any]
    topology: str = "netconfeval"


def netconfeval_half(sentence: str) -> int:
    """0 (trained on) or 1 (never trained on): a stable hash of the sentence."""
    return hashlib.sha256(sentence.strip().encode()).digest()[0] % 2


def netconfeval_sentences(n: int, *, seed: int) -> list[LabelledSentence]:
    """Up to ``n`` NetConfEval sentences of the training half, labelled by the parser."""
    from netgpt.cloud_models.corpus import NETCONFEVAL_FILE
    from netgpt.cloud_models.intent_draft import draft_from_intent
    from netgpt.errors import IntentParseError
    from netgpt.intents import netconfeval as nce
    from netgpt.intents.parser import parse_intent

    if n <= 0 or not NETCONFEVAL_FILE.is_file():
        return []
    rows = nce.load_step1(NETCONFEVAL_FILE)
    names = nce.name_table(r.expected for r in rows)
    sentences = sorted({x.strip() for r in rows
                        for x in re.split(r"(?<=[.!?])\s+", r.human_language) if x.strip()})
    sentences = [x for x in sentences if netconfeval_half(x) == 0]
    random.Random(seed).shuffle(sentences)
    out = []
    for sentence in sentences[:n]:
        try:
            draft = draft_from_intent(parse_intent(sentence, names))
        except IntentParseError:
            continue
        out.append(LabelledSentence(sentence, draft))
    return out


def _requests(split: str, seed: int, sizes: dict[str, int], novel_share: float = 0.0,
              ) -> list[Any]:
    from netgpt.edge_models.intent_corpus import generate_requests

    out: list[Any] = []
    tables = corpus_name_tables()
    for i, (topo, n) in enumerate(sorted(sizes.items())):
        if topo in tables and n:
            out += generate_requests(topo, n, split=split,  # type: ignore[arg-type]
                                     seed=seed * 100 + i, table=tables[topo],
                                     novel_share=novel_share)
    return out


def train_intent_model(out: Path, settings: IntentModelSettings | None = None,
                       *, log: Any = None) -> dict[str, Any]:
    """Train the global model (and the site adapters) into ``out``; returns the card."""
    import torch
    from safetensors.torch import save_file
    from transformers import GPT2Config, GPT2LMHeadModel

    s = settings or IntentModelSettings()
    say = log or (lambda _msg: None)
    started = time.monotonic()
    torch.manual_seed(s.seed)
    rng = random.Random(s.seed)
    tables = corpus_name_tables()
    requests = _requests("train", s.seed, s.requests, s.novel_share)
    requests += (netconfeval_sentences(s.netconfeval_sentences, seed=s.seed)
                 * s.netconfeval_repeat)
    examples, unaligned = examples_from_requests(requests, tables, rng=rng,
                                                 deixis_share=s.deixis_share)
    if not examples:
        raise ConfigError("no training requests aligned; check the corpus settings")
    say(f"{len(examples)} training requests ({unaligned} did not align)")
    tk = _tokenizer([ex.request.prompt() for ex in examples])
    vocab = tk.get_vocab()
    data = [e for e in (_encode(tk, ex, s.n_positions, s.text_weight) for ex in examples) if e]
    config = GPT2Config(vocab_size=len(vocab), n_positions=s.n_positions, n_embd=s.n_embd,
                        n_layer=s.n_layer, n_head=s.n_head, resid_pdrop=s.dropout,
                        embd_pdrop=s.dropout, attn_pdrop=s.dropout,
                        bos_token_id=vocab[BOS], eos_token_id=vocab[output_token("<end>")],
                        pad_token_id=vocab[PAD])
    net: Any = GPT2LMHeadModel(config)  # transformers types .to() too narrowly for mypy
    net.to(s.device)
    deadline = started + s.max_minutes * 60
    losses = fit_next_token(net, data, steps=s.steps, batch_size=s.batch_size, lr=s.lr,
                            warmup=s.warmup, seed=s.seed, params=list(net.parameters()),
                            pad_id=vocab[PAD], unk_id=tk.unk_id, word_dropout=s.word_dropout,
                            deadline=deadline)
    trained_s = round(time.monotonic() - started, 1)
    say(f"trained {len(losses)} x 50 steps in {trained_s} s, loss {losses[0]:.3f} -> "
        f"{losses[-1]:.3f}")
    out.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(str(out))
    tk.save(out / TOKENIZER_FILE)
    net.cpu()
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in net.state_dict().items()
             if not k.endswith((".attn.bias", ".attn.masked_bias")) and k != "lm_head.weight"}
    save_file(state, str(out / "model.safetensors"))
    card: dict[str, Any] = {"settings": asdict(s), "examples": len(examples),
                            "unaligned": unaligned, "losses": [round(x, 4) for x in losses],
                            "temperature": 1.0}
    (out / CARD_FILE).write_text(json.dumps(card, indent=2))
    card.update(calibrate_model(out, s))
    card["train_seconds"] = round(time.monotonic() - started, 1)
    (out / CARD_FILE).write_text(json.dumps(card, indent=2))
    say(f"temperature {card['temperature']}, exact on fresh train-partition requests "
        f"{card['calibration_exact']}")
    model = EdgeIntentModel.load(out)
    for site in s.adapter_sites:
        info = train_site_adapter(model, site, out / "adapters" / site, settings=s)
        card.setdefault("adapters", {})[site] = info
        say(f"adapter {site}: {info}")
    card["total_seconds"] = round(time.monotonic() - started, 1)
    (out / CARD_FILE).write_text(json.dumps(card, indent=2))
    return card


def _hide_words(req: TaggedRequest, share: float, rng: random.Random) -> TaggedRequest:
    words = [w if w.startswith("<") or rng.random() >= share else UNK for w in req.text.split()]
    return TaggedRequest(text=" ".join(words), mentions=req.mentions, here=req.here)


def calibrate_model(out: Path, settings: IntentModelSettings | None = None) -> dict[str, float]:
    """Fit the saved model's confidence temperature and write it into its card.

    Calibration requests are fresh train-partition requests with 1.5 times the training word
    dropout hidden as ``<unk>``: like text in words the model never saw, without using any
    held-out text.
    """
    s = settings or IntentModelSettings()
    model = EdgeIntentModel.load(out)  # what was saved (float16 round trip)
    reqs = _requests("train", s.seed + 7919,
                     {k: max(1, s.calibration_requests // 3) for k in s.requests})
    rng = random.Random(s.seed + 1)
    calib, _ = examples_from_requests(reqs, corpus_name_tables(), rng=rng)
    noisy = [TrainedExample(_hide_words(ex.request, 1.5 * s.word_dropout, rng), ex.target,
                            ex.topology) for ex in calib]
    fitted = _calibrate(model, noisy)
    card = json.loads((out / CARD_FILE).read_text())
    card.update(fitted)
    (out / CARD_FILE).write_text(json.dumps(card, indent=2))
    return fitted


def site_requests(site: str, n: int, *, split: str, seed: int) -> list[Any]:
    """A site's own requests: its words for its places (:data:`JARGON`), labelled drafts."""
    from netgpt.edge_models.intent_corpus import generate_requests

    if site not in JARGON:
        raise ConfigError(f"no site words for {site!r}; known: {sorted(JARGON)}")
    table = corpus_name_tables()[site]
    return generate_requests(site, n, split=split, seed=seed,  # type: ignore[arg-type]
                             table=table, jargon=JARGON[site])


def train_site_adapter(model: EdgeIntentModel, site: str, out: Path, *,
                       settings: IntentModelSettings | None = None,
                       requests: Sequence[Any] | None = None) -> dict[str, Any]:
    """Fit a LoRA adapter for ``site`` on a handful of its requests and save it to ``out``."""
    import torch
    from peft import LoraConfig, get_peft_model

    s = settings or IntentModelSettings()
    reqs = list(requests) if requests is not None else site_requests(
        site, s.adapter_examples, split="train", seed=s.seed + 31)
    tables = corpus_name_tables()
    examples, unaligned = examples_from_requests(reqs, tables, rng=random.Random(s.seed))
    if not examples:
        raise ConfigError(f"none of the {len(reqs)} requests for site {site!r} aligned")
    data = [e for e in (_encode(model.tokenizer, ex, s.n_positions, s.text_weight)
                        for ex in examples) if e]
    torch.manual_seed(s.seed)
    base = model.net
    config = LoraConfig(r=s.adapter_rank, lora_alpha=2 * s.adapter_rank, lora_dropout=0.0,
                        target_modules=["c_attn", "c_proj", "c_fc"], fan_in_fan_out=True)
    with quiet_peft_warnings():
        peft_net = get_peft_model(base, config, adapter_name=site)
        params = [p for p in peft_net.parameters() if p.requires_grad]
        pad = model.tokenizer.get_vocab()[PAD]
        losses = fit_next_token(peft_net, data, steps=s.adapter_steps, batch_size=8, lr=3e-3,
                                warmup=10, seed=s.seed, params=params, pad_id=pad,
                                unk_id=model.tokenizer.unk_id)
        out.parent.mkdir(parents=True, exist_ok=True)
        peft_net.save_pretrained(str(out.parent), selected_adapters=[site])
        (out.parent / "README.md").unlink(missing_ok=True)  # peft's model-card stub
        model.net = peft_net.unload()
    size = sum(p.stat().st_size for p in out.iterdir())
    return {"examples": len(examples), "unaligned": unaligned,
            "loss": [round(losses[0], 4), round(losses[-1], 4)], "bytes": size}
