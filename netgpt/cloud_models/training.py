"""Training the project's cloud model: a small Llama that writes intent drafts, plus site adapters.

``netgpt llm train`` runs :func:`train_cloud_model`:

1. **Corpus** (:mod:`netgpt.cloud_models.corpus`): seeded (text, draft) pairs labelled by the
   controlled-language parser, on the campus and abilene topologies and NetConfEval's names.
2. **Tokenizer**: byte-level BPE trained with ``tokenizers`` on that corpus (spaces split off
   as tokens of their own, so a name is one and the same token in the text and in the JSON,
   which a model this small copies far more reliably), with one special token per chat role
   and the chat template of :mod:`netgpt.cloud_models.prompts`, saved in Hugging Face format
   (``tokenizer.json`` + config) so vLLM and transformers load the directory.
3. **Model**: ``transformers.LlamaForCausalLM`` from a small ``LlamaConfig`` (a few million
   parameters), trained from scratch on the chat-formatted pairs; the loss covers only the
   answer. Saved as ``model.safetensors`` (float16 on disk; both backends compute in float32).
4. **Adapters**: per-site LoRA adapters (peft, ``q_proj,v_proj``) trained on the site's jargon
   ("the dorms" for the students group, "NYC" for New York) with the base model frozen; vLLM
   serves them with ``--enable-lora --lora-modules NAME=DIR``.

Everything is seeded; :class:`ModelCard` (``netgpt_model.json``) records the settings, sizes,
times and validation scores. Training needs no network access and no GPU.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from netgpt.cloud_models.corpus import TrainingPair, build_corpus
from netgpt.cloud_models.plan_corpus import PlanPair, build_plan_corpus, plan_messages
from netgpt.cloud_models.prompts import CHAT_TEMPLATE, intent_messages
from netgpt.errors import ConfigError

__all__ = [
    "ADAPTERS_DIR",
    "BASE_DIR",
    "CARD_FILE",
    "SHIPPED_WEIGHTS",
    "AdapterCard",
    "ModelCard",
    "TrainingSettings",
    "load_card",
    "shipped_adapters",
    "shipped_model_dir",
    "train_cloud_model",
]

SHIPPED_WEIGHTS = Path(__file__).resolve().parent / "weights"
BASE_DIR = "intent-llama"
ADAPTERS_DIR = "adapters"
CARD_FILE = "netgpt_model.json"
PLANS_ADAPTER = "plans"
"""The task adapter for choosing between plans (``choose_plan``), next to the site adapters."""
SPECIAL_TOKENS = ("<|pad|>", "<|begin|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>")
_VLLM_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256)


@dataclass(frozen=True, kw_only=True)
class TrainingSettings:
    """Everything that decides the trained weights (with the code and the data)."""

    seed: int = 0
    campus: int = 3200
    abilene: int = 2400
    netconfeval: int = 1400
    netconfeval_sentences: int = 800
    paraphrase_share: float = 0.6
    context_share: float = 0.3
    text_loss_weight: float = 0.0
    vocab_size: int = 2048
    hidden_size: int = 192
    intermediate_size: int = 512
    layers: int = 4
    heads: int = 6
    kv_heads: int = 2
    max_positions: int = 4096
    max_tokens: int = 192
    epochs: float = 5.0
    batch_size: int = 16
    learning_rate: float = 2e-3
    weight_decay: float = 0.01
    warmup_share: float = 0.05
    threads: int = 1
    adapters: tuple[str, ...] = ("campus", "abilene")
    adapter_pairs: int = 1200
    adapter_rank: int = 8
    adapter_steps: int = 500
    adapter_learning_rate: float = 3e-3
    validation: int = 150
    # the plans task adapter (0 pairs: none); LoRA on every linear layer, longer prompts
    plan_pairs: int = 1600
    plan_rank: int = 16
    plan_steps: int = 1200
    plan_learning_rate: float = 3e-3
    plan_max_tokens: int = 448
    plan_validation: int = 100

    def __post_init__(self) -> None:
        if self.hidden_size % self.heads or self.heads % self.kv_heads:
            raise ConfigError(f"hidden_size {self.hidden_size} must divide by heads {self.heads}"
                              f" and heads by kv_heads {self.kv_heads}")
        if self.hidden_size // self.heads not in _VLLM_HEAD_SIZES:
            raise ConfigError(f"head size {self.hidden_size // self.heads} (hidden_size / heads)"
                              f" must be one of {_VLLM_HEAD_SIZES}: vLLM's CPU attention takes "
                              "only those")
        if self.vocab_size < 300:
            raise ConfigError(f"vocab_size {self.vocab_size} must be at least 300 (256 bytes "
                              "+ special tokens + merges)")
        if not 0 < self.epochs <= 100 or self.batch_size < 1 or self.threads < 1:
            raise ConfigError("epochs must be in (0, 100], batch_size and threads at least 1")

    @classmethod
    def tiny(cls, **changes: Any) -> TrainingSettings:
        """Settings that train in seconds (tests, CI): tiny corpus, model and adapters."""
        base = cls(campus=120, abilene=80, netconfeval=40, netconfeval_sentences=40,
                   vocab_size=400, hidden_size=64, intermediate_size=128, layers=1, heads=2,
                   kv_heads=1, max_positions=512, epochs=1.0, batch_size=16,
                   adapters=("campus",), adapter_pairs=40, adapter_steps=4, validation=8,
                   threads=1, plan_pairs=12, plan_steps=3, plan_rank=4, plan_validation=2)
        return replace(base, **changes)


class AdapterCard(BaseModel):
    """One trained adapter."""

    model_config = ConfigDict(extra="forbid")
    name: str
    topology: str
    rank: int
    pairs: int
    steps: int
    train_s: float
    trainable_params: int
    size_bytes: int
    final_loss: float
    jargon_exact_base: float | None = None
    jargon_exact_adapter: float | None = None
    task: str | None = None  # a task adapter's task (``choose_plan``); None for a site's
    choice_accuracy_base: float | None = None  # held-out plan choices: the base model's index
    choice_accuracy_adapter: float | None = None


class ModelCard(BaseModel):
    """What a trained model directory holds and how it was made (``netgpt_model.json``)."""

    model_config = ConfigDict(extra="forbid")
    name: str = "netgpt-intent-llama"
    tasks: list[str] = Field(default_factory=lambda: ["read_intent"])
    created_at: datetime
    settings: dict[str, Any]
    parameters: int
    corpus_pairs: int
    corpus_sources: dict[str, int]
    corpus_dropped: dict[str, int]
    held_out_excluded: int
    tokens_seen: int
    train_s: float
    tokens_per_s: float
    final_loss: float
    size_bytes: int
    validation_exact: float | None = None
    adapters: list[AdapterCard] = Field(default_factory=list)
    torch_version: str
    transformers_version: str


def load_card(model_dir: Path) -> ModelCard | None:
    """The model card of ``model_dir``; ``None`` when it has none."""
    path = model_dir / CARD_FILE
    if not path.is_file():
        return None
    return ModelCard.model_validate_json(path.read_text())


def shipped_model_dir() -> Path:
    """The trained model shipped with the package."""
    return SHIPPED_WEIGHTS / BASE_DIR


def shipped_adapters(root: Path | None = None) -> dict[str, Path]:
    """Adapters next to a model directory (default: the shipped ones), by name."""
    base = (root or SHIPPED_WEIGHTS) / ADAPTERS_DIR
    if not base.is_dir():
        return {}
    return {p.name: p for p in sorted(base.iterdir()) if (p / "adapter_config.json").is_file()}


# ------------------------------------------------------------------------------------------
# tokenizer and data


def _train_tokenizer(texts: Sequence[str], vocab_size: int) -> Any:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    # spaces are tokens of their own, so a name is the same token in the text ("to kiev") and
    # in the JSON ("device:kiev"): the model copies it instead of translating " kiev" to "kiev"
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\s"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tk.train_from_iterator(texts, trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token="<|begin|>", eos_token="<|end|>", pad_token="<|pad|>",
        additional_special_tokens=["<|system|>", "<|user|>", "<|assistant|>"],
    )
    tok.chat_template = CHAT_TEMPLATE
    tok.model_max_length = 4096
    return tok


@dataclass(frozen=True)
class _Example:
    ids: list[int]
    weights: list[float]  # loss weight for predicting each token (0: not learned)


def _contexts(pair: TrainingPair, rng: random.Random, share: float) -> str:
    return f"network: {pair.topology}" if rng.random() < share else ""


def prompt_ids(tokenizer: Any, text: str, context: str = "") -> list[int]:
    """Token ids of the chat prompt for ``text`` (what both backends feed the model)."""
    messages = [{"role": m.role, "content": m.content} for m in intent_messages(text, context)]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return list(tokenizer.encode(rendered, add_special_tokens=False))


def _encode(tokenizer: Any, pairs: Sequence[TrainingPair], max_tokens: int, seed: int,
            context_share: float, text_weight: float) -> tuple[list[_Example], int]:
    """Token ids and loss weights: 1 for the answer, ``text_weight`` for the user's text.

    Predicting the user's own words as well (a language-model loss on the input) teaches the
    model what follows what in a sentence, which it needs to tell a source from a destination.
    """
    rng = random.Random(seed)
    user, end = tokenizer.convert_tokens_to_ids(["<|user|>", "<|end|>"])
    out, too_long = [], 0
    for p in pairs:
        prompt = prompt_ids(tokenizer, p.text, _contexts(p, rng, context_share))
        answer = list(tokenizer.encode(p.target + "<|end|>", add_special_tokens=False))
        if len(prompt) + len(answer) > max_tokens:
            too_long += 1
            continue
        weights = [0.0] * len(prompt) + [1.0] * len(answer)
        start = prompt.index(user) + 1
        stop = prompt.index(end, start)
        for i in range(start + 1, stop + 1):  # the text's tokens after its first, and its end
            weights[i] = text_weight
        out.append(_Example(prompt + answer, weights))
    return out, too_long


def _batches(examples: Sequence[_Example], batch_size: int, rng: random.Random,
             pad_id: int) -> list[tuple[Any, Any, Any]]:
    import torch

    order = list(range(len(examples)))
    rng.shuffle(order)
    # sort within chunks of 50 batches by length: less padding, still shuffled
    chunk = batch_size * 50
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start:start + chunk], key=lambda i: len(examples[i].ids))
        for b in range(0, len(part), batch_size):
            idx = part[b:b + batch_size]
            width = max(len(examples[i].ids) for i in idx)
            ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
            weights = torch.zeros((len(idx), width), dtype=torch.float32)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                n = len(examples[i].ids)
                ids[row, :n] = torch.tensor(examples[i].ids)
                weights[row, :n] = torch.tensor(examples[i].weights)
                mask[row, :n] = 1
            batches.append((ids, weights, mask))
    rng.shuffle(batches)
    return batches


def _lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _train_loop(model: Any, params: list[Any], examples: Sequence[_Example], *, steps: int,
                batch_size: int, lr: float, weight_decay: float, warmup: int, seed: int,
                pad_id: int, log: Callable[[str], None], what: str) -> tuple[float, int]:
    import torch

    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    rng = random.Random(seed)
    batches: list[tuple[Any, Any, Any]] = []
    model.train()
    smoothed, tokens, started = float("nan"), 0, time.monotonic()
    for step in range(steps):
        if not batches:
            batches = _batches(examples, batch_size, rng, pad_id)
        ids, weights, mask = batches.pop()
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, steps, lr, warmup)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
        target, w = ids[:, 1:], weights[:, 1:]
        token_loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none"
        ).view_as(target)
        answer = (w >= 1).float()
        n_answer = answer.sum().clamp(min=1)
        loss = (token_loss * w).sum() / n_answer  # answer tokens set the scale
        answer_loss = (token_loss * answer).sum() / n_answer
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        tokens += int(mask.sum())
        value = float(answer_loss.detach())
        smoothed = value if math.isnan(smoothed) else 0.95 * smoothed + 0.05 * value
        if step % 50 == 0 or step == steps - 1:
            rate = tokens / max(1e-9, time.monotonic() - started)
            log(f"{what}: step {step + 1}/{steps} loss {smoothed:.4f} ({rate:,.0f} tokens/s)")
    model.eval()
    return smoothed, tokens


def _greedy_answer(model: Any, tokenizer: Any, prompt: list[int], max_new: int) -> str:
    """The model's greedy, unconstrained answer to ``prompt`` (token ids), as text."""
    import torch

    with torch.inference_mode():
        ids = torch.tensor([prompt])
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                             max_new_tokens=max_new, do_sample=False,
                             eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id)
    return str(tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True))


def _exact(model: Any, tokenizer: Any, pairs: Sequence[TrainingPair], max_new: int) -> float:
    """Share of pairs whose greedy, unconstrained answer equals the label exactly."""
    if not pairs:
        return float("nan")
    hits = sum(_greedy_answer(model, tokenizer, prompt_ids(tokenizer, p.text), max_new).strip()
               == p.target for p in pairs)
    return hits / len(pairs)


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# ------------------------------------------------------------------------------------------
# the whole recipe


def train_cloud_model(
    out_dir: Path,
    settings: TrainingSettings | None = None,
    *,
    log: Callable[[str], None] = lambda _: None,
) -> ModelCard:
    """Train tokenizer, model and adapters into ``out_dir``; return the model card.

    The model goes to ``out_dir/intent-llama/`` and each adapter to ``out_dir/adapters/NAME/``
    (both replaced; nothing else in ``out_dir`` is touched), the layout of the shipped
    ``weights/`` directory. Seeded by ``settings.seed``: the same settings on the same software
    give the same weights.
    """
    import torch
    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM

    s = settings or TrainingSettings()
    transformers.utils.logging.disable_progress_bar()
    torch.manual_seed(s.seed)
    random.seed(s.seed)
    torch.set_num_threads(s.threads)
    started = time.monotonic()
    corpus = build_corpus(
        {"campus": s.campus, "abilene": s.abilene, "netconfeval": s.netconfeval},
        seed=s.seed, netconfeval_sentences=s.netconfeval_sentences,
        paraphrase_share=s.paraphrase_share,
    )
    valid = build_corpus(
        {"campus": s.validation // 2, "abilene": s.validation // 4,
         "netconfeval": s.validation - s.validation // 2 - s.validation // 4},
        seed=s.seed + 1000, paraphrase_share=s.paraphrase_share,
    )
    train_texts = {p.text for p in corpus.pairs}
    valid_pairs = [p for p in valid.pairs if p.text not in train_texts]
    log(f"corpus: {len(corpus.pairs)} pairs ({time.monotonic() - started:.1f} s); dropped "
        f"{corpus.dropped}")

    tok_texts = [t for p in corpus.pairs for t in (p.text, p.target)]
    tok_texts += [m.content for m in intent_messages("x", "network: campus")]
    tokenizer = _train_tokenizer(tok_texts, s.vocab_size)
    examples, too_long = _encode(tokenizer, corpus.pairs, s.max_tokens, s.seed, s.context_share,
                                 s.text_loss_weight)
    log(f"tokenizer: {len(tokenizer)} tokens; {len(examples)} examples "
        f"({too_long} longer than {s.max_tokens} tokens left out)")

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=s.hidden_size,
        intermediate_size=s.intermediate_size, num_hidden_layers=s.layers,
        num_attention_heads=s.heads, num_key_value_heads=s.kv_heads,
        max_position_embeddings=s.max_positions, rms_norm_eps=1e-5, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, attention_bias=False, mlp_bias=False,
    )
    model = LlamaForCausalLM(config)
    n_params = sum(p.numel() for p in model.parameters())
    mean_len = sum(len(e.ids) for e in examples) / max(1, len(examples))
    steps = max(1, int(s.epochs * len(examples) / s.batch_size))
    log(f"model: {n_params:,} parameters; {steps} steps of {s.batch_size} "
        f"(~{mean_len:.0f} tokens per example)")
    t0 = time.monotonic()
    loss, tokens = _train_loop(
        model, list(model.parameters()), examples, steps=steps, batch_size=s.batch_size,
        lr=s.learning_rate, weight_decay=s.weight_decay,
        warmup=max(1, int(s.warmup_share * steps)), seed=s.seed, pad_id=tokenizer.pad_token_id,
        log=log, what="base",
    )
    train_s = time.monotonic() - t0
    exact = _exact(model, tokenizer, valid_pairs, s.max_tokens)
    log(f"base: {train_s:.0f} s, final loss {loss:.4f}, validation exact match {exact:.3f} "
        f"on {len(valid_pairs)} unseen pairs")

    model_dir = out_dir / BASE_DIR
    for old in (model_dir, out_dir / ADAPTERS_DIR):
        if old.exists():
            shutil.rmtree(old)
    model_dir.mkdir(parents=True)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.do_sample = False
    model.half().save_pretrained(model_dir, safe_serialization=True)
    model.float()
    tokenizer.save_pretrained(model_dir)

    adapter_cards = []
    for name in s.adapters:
        adapter_cards.append(_train_adapter(model, tokenizer, name, out_dir / ADAPTERS_DIR / name,
                                            s, log))
    tasks = ["read_intent"]
    if s.plan_pairs:
        adapter_cards.append(_train_plans_adapter(model, tokenizer,
                                                  out_dir / ADAPTERS_DIR / PLANS_ADAPTER, s, log))
        tasks.append("choose_plan")
    card = ModelCard(
        tasks=tasks, created_at=datetime.now(UTC), settings=asdict(s), parameters=n_params,
        corpus_pairs=len(corpus.pairs),
        corpus_sources={src: sum(p.source == src for p in corpus.pairs)
                        for src in sorted({p.source for p in corpus.pairs})},
        corpus_dropped=corpus.dropped, held_out_excluded=corpus.dropped.get("held-out", 0),
        tokens_seen=tokens, train_s=round(train_s, 1),
        tokens_per_s=round(tokens / max(train_s, 1e-9), 1), final_loss=round(loss, 4),
        size_bytes=_dir_size(model_dir),
        validation_exact=None if math.isnan(exact) else round(exact, 4),
        adapters=adapter_cards, torch_version=torch.__version__,
        transformers_version=transformers.__version__,
    )
    (model_dir / CARD_FILE).write_text(card.model_dump_json(indent=2) + "\n")
    log(f"done in {time.monotonic() - started:.0f} s: {model_dir}")
    return card


_ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _fit_lora(model: Any, tokenizer: Any, examples: Sequence[_Example], *, rank: int,
              modules: Sequence[str], steps: int, lr: float, seed: int, s: TrainingSettings,
              log: Callable[[str], None], what: str) -> tuple[Any, list[Any], float, float]:
    """A LoRA adapter of ``rank`` on ``modules`` trained on ``examples``; the base is frozen.

    Returns the peft model (LoRA layers in place), its trainable parameters, the final loss and
    the training seconds.
    """
    import torch
    from peft import LoraConfig, get_peft_model

    from netgpt.cloud_models.transformers_local import quiet_peft_warnings

    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=list(modules),
                        lora_dropout=0.0, bias="none", task_type="CAUSAL_LM")
    torch.manual_seed(seed)
    with quiet_peft_warnings():
        peft_model = get_peft_model(model, config)
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    t0 = time.monotonic()
    loss, _ = _train_loop(
        peft_model, trainable, examples, steps=steps, batch_size=s.batch_size, lr=lr,
        weight_decay=0.0, warmup=max(1, steps // 20), seed=seed, pad_id=tokenizer.pad_token_id,
        log=log, what=what,
    )
    return peft_model, trainable, loss, time.monotonic() - t0


def _save_adapter(peft_model: Any, out: Path) -> None:
    """Write the adapter to ``out`` and take its LoRA layers out of the base model."""
    out.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(out), safe_serialization=True)
    (out / "README.md").unlink(missing_ok=True)  # peft's empty model-card template
    config_path = out / "adapter_config.json"
    raw = json.loads(config_path.read_text())
    raw["base_model_name_or_path"] = "netgpt-intent-llama"
    if isinstance(raw.get("target_modules"), list):  # peft writes a set: same run, same file
        raw["target_modules"] = sorted(raw["target_modules"])
    config_path.write_text(json.dumps(raw, indent=2) + "\n")
    peft_model.unload()  # removes the LoRA layers: the base model is as before


def _train_adapter(model: Any, tokenizer: Any, name: str, out: Path, s: TrainingSettings,
                   log: Callable[[str], None]) -> AdapterCard:
    """A LoRA adapter on q_proj,v_proj for one site's jargon; the base stays frozen."""
    data = build_corpus({name: s.adapter_pairs // 2}, seed=s.seed + 7, jargon_for=(name,),
                        jargon_size=s.adapter_pairs - s.adapter_pairs // 2,
                        paraphrase_share=s.paraphrase_share)
    held = build_corpus({}, seed=s.seed + 2000, jargon_for=(name,),
                        jargon_size=max(4, s.validation // 2))
    seen = {p.text for p in data.pairs}
    held_pairs = [p for p in held.pairs if p.text not in seen]
    examples, _ = _encode(tokenizer, data.pairs, s.max_tokens, s.seed + 7, s.context_share,
                          s.text_loss_weight)
    base_exact = _exact(model, tokenizer, held_pairs, s.max_tokens)
    peft_model, trainable, loss, train_s = _fit_lora(
        model, tokenizer, examples, rank=s.adapter_rank, modules=("q_proj", "v_proj"),
        steps=s.adapter_steps, lr=s.adapter_learning_rate, seed=s.seed + 7, s=s, log=log,
        what=f"adapter {name}")
    adapter_exact = _exact(peft_model, tokenizer, held_pairs, s.max_tokens)
    _save_adapter(peft_model, out)
    card = AdapterCard(
        name=name, topology=name, rank=s.adapter_rank, pairs=len(examples), steps=s.adapter_steps,
        train_s=round(train_s, 1), trainable_params=sum(p.numel() for p in trainable),
        size_bytes=_dir_size(out), final_loss=round(loss, 4),
        jargon_exact_base=None if math.isnan(base_exact) else round(base_exact, 4),
        jargon_exact_adapter=None if math.isnan(adapter_exact) else round(adapter_exact, 4),
    )
    log(f"adapter {name}: {train_s:.0f} s, jargon exact match {base_exact:.3f} (base) -> "
        f"{adapter_exact:.3f} (adapter) on {len(held_pairs)} unseen pairs")
    return card


# ------------------------------------------------------------------------------------------
# the plans task adapter


def _plan_prompt_ids(tokenizer: Any, pair: PlanPair) -> list[int]:
    """Token ids of the chat prompt of a plan choice (what both backends feed the model)."""
    rendered = tokenizer.apply_chat_template(plan_messages(pair), tokenize=False,
                                             add_generation_prompt=True)
    return list(tokenizer.encode(rendered, add_special_tokens=False))


def _encode_plans(tokenizer: Any, pairs: Sequence[PlanPair], max_tokens: int) -> list[_Example]:
    out = []
    for p in pairs:
        prompt = _plan_prompt_ids(tokenizer, p)
        answer = list(tokenizer.encode(p.target + "<|end|>", add_special_tokens=False))
        if len(prompt) + len(answer) <= max_tokens:
            out.append(_Example(prompt + answer, [0.0] * len(prompt) + [1.0] * len(answer)))
    return out


def _choice_accuracy(model: Any, tokenizer: Any, pairs: Sequence[PlanPair]) -> float:
    """Share of held-out pairs whose greedy, unconstrained answer picks the labelled index."""
    if not pairs:
        return float("nan")
    hits = 0
    for p in pairs:
        text = _greedy_answer(model, tokenizer, _plan_prompt_ids(tokenizer, p), 64)
        with contextlib.suppress(ValueError, KeyError, TypeError):  # not JSON: a miss
            hits += json.loads(text)["index"] == json.loads(p.target)["index"]
    return hits / len(pairs)


def _train_plans_adapter(model: Any, tokenizer: Any, out: Path, s: TrainingSettings,
                         log: Callable[[str], None]) -> AdapterCard:
    """The ``plans`` LoRA adapter (every linear layer) for choosing between plans."""
    started = time.monotonic()
    data = build_plan_corpus(s.plan_pairs, seed=s.seed + 11)
    held = build_plan_corpus(s.plan_validation, seed=s.seed + 3000)
    seen = {(p.goal, p.options) for p in data.pairs}
    held_pairs = [p for p in held.pairs if (p.goal, p.options) not in seen]
    examples = _encode_plans(tokenizer, data.pairs, s.plan_max_tokens)
    log(f"adapter {PLANS_ADAPTER}: {len(data.pairs)} plan choices "
        f"({time.monotonic() - started:.0f} s, skipped {data.skipped}); {len(examples)} fit "
        f"{s.plan_max_tokens} tokens")
    if not examples:
        raise ConfigError(f"no plan choice fits plan_max_tokens={s.plan_max_tokens}; raise it")
    base_accuracy = _choice_accuracy(model, tokenizer, held_pairs)
    peft_model, trainable, loss, train_s = _fit_lora(
        model, tokenizer, examples, rank=s.plan_rank, modules=_ALL_LINEAR, steps=s.plan_steps,
        lr=s.plan_learning_rate, seed=s.seed + 11, s=s, log=log, what=f"adapter {PLANS_ADAPTER}")
    accuracy = _choice_accuracy(peft_model, tokenizer, held_pairs)
    _save_adapter(peft_model, out)
    log(f"adapter {PLANS_ADAPTER}: {train_s:.0f} s, held-out choice accuracy {base_accuracy:.3f} "
        f"(base) -> {accuracy:.3f} (adapter) on {len(held_pairs)} unseen choices")
    return AdapterCard(
        name=PLANS_ADAPTER, topology="*", rank=s.plan_rank, pairs=len(examples),
        steps=s.plan_steps, train_s=round(train_s, 1),
        trainable_params=sum(p.numel() for p in trainable), size_bytes=_dir_size(out),
        final_loss=round(loss, 4), task="choose_plan",
        choice_accuracy_base=None if math.isnan(base_accuracy) else round(base_accuracy, 4),
        choice_accuracy_adapter=None if math.isnan(accuracy) else round(accuracy, 4),
    )


def train_plans_adapter(
    weights_dir: Path,
    settings: TrainingSettings | None = None,
    *,
    log: Callable[[str], None] = lambda _: None,
) -> ModelCard:
    """Train only the ``plans`` adapter on the model already in ``weights_dir``.

    The model card is updated (its task list and adapters). The base is loaded as
    :func:`train_cloud_model` leaves it before its adapters (fp16 weights, back in fp32), so the
    same seed gives the adapter the full recipe would.
    """
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    s = settings or TrainingSettings()
    model_dir = weights_dir / BASE_DIR
    card = load_card(model_dir)
    if card is None:
        raise ConfigError(f"{model_dir} holds no trained model (no {CARD_FILE}); train one with "
                          "'netgpt llm train --out DIR' first")
    torch.set_num_threads(s.threads)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    adapter = _train_plans_adapter(model, tokenizer, weights_dir / ADAPTERS_DIR / PLANS_ADAPTER,
                                   s, log)
    card.adapters = [a for a in card.adapters if a.name != PLANS_ADAPTER] + [adapter]
    card.tasks = [*[t for t in card.tasks if t != "choose_plan"], "choose_plan"]
    card.settings = {**card.settings, **{k: v for k, v in asdict(s).items()
                                          if k.startswith("plan_")}}
    (model_dir / CARD_FILE).write_text(card.model_dump_json(indent=2) + "\n")
    return card
