"""The project's fine-tuning step, and what it costs: full fine-tuning against LoRA, and decode.

One training step (:func:`train_step`) for a causal language model prepared by
:func:`prepare_model` for a :class:`FinetuneMethod`:

- ``full``: every weight trains, in float32, with AdamW (fused on CUDA unless told otherwise).
- ``lora``: the base is frozen (bfloat16 on CUDA, float32 on CPU unless told otherwise); peft's
  LoRA adapters (rank ``rank``, scale ``alpha / rank``) on ``q_proj``/``v_proj`` for Llama and
  ``c_attn`` for GPT-2 train in float32 with AdamW.

:func:`measure_finetune` builds a model of a named shape (:data:`SHAPES`: ``llama-7b``,
``gpt2-base``, ``tiny``, ``tiny-gpt2``) with random weights straight on the device (memory and
speed do not depend on the weights' values) and times warm-up plus timed steps;
:func:`measure_decode` times greedy ``generate`` in bfloat16 and sets it against the
memory-bandwidth limit. Both run on CPU or CUDA; ``benchmarks/netgpt_gpu.py`` runs them on a GPU.
torch, transformers and peft are imported inside the functions.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from netgpt.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = [
    "H200_BANDWIDTH",
    "SHAPES",
    "DecodeResult",
    "FinetuneMethod",
    "FinetuneResult",
    "MethodKind",
    "ModelShape",
    "PreparedModel",
    "build_model",
    "measure_decode",
    "measure_finetune",
    "prepare_model",
    "shape_named",
    "train_step",
]

H200_BANDWIDTH = 4.8e12
"""The H200's memory bandwidth in bytes per second, by NVIDIA's datasheet (HBM3e, 4.8 TB/s)."""

MethodKind = Literal["full", "lora"]
AdamWImpl = Literal["auto", "fused", "foreach"]
DecodePath = Literal["eager", "static-compile"]
_DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True, kw_only=True)
class ModelShape:
    """A model's shape: enough to build a ``transformers`` config with random weights."""

    name: str
    family: Literal["llama", "gpt2"]
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    positions: int

    def config(self) -> Any:
        """The ``transformers`` config (``LlamaConfig`` or ``GPT2Config``) of this shape."""
        if self.family == "gpt2":
            from transformers import GPT2Config

            return GPT2Config(n_embd=self.hidden, n_layer=self.layers, n_head=self.heads,
                              n_inner=self.intermediate, vocab_size=self.vocab,
                              n_positions=self.positions, bos_token_id=self.vocab - 1,
                              eos_token_id=self.vocab - 1, use_cache=False)
        from transformers import LlamaConfig

        return LlamaConfig(hidden_size=self.hidden, num_hidden_layers=self.layers,
                           num_attention_heads=self.heads, num_key_value_heads=self.heads,
                           intermediate_size=self.intermediate, vocab_size=self.vocab,
                           max_position_embeddings=self.positions, use_cache=False)


SHAPES: dict[str, ModelShape] = {
    shape.name: shape
    for shape in (
        ModelShape(name="llama-7b", family="llama", hidden=4096, layers=32, heads=32,
                   intermediate=11008, vocab=32000, positions=2048),
        ModelShape(name="gpt2-base", family="gpt2", hidden=768, layers=12, heads=12,
                   intermediate=4 * 768, vocab=50257, positions=1024),
        ModelShape(name="tiny", family="llama", hidden=64, layers=2, heads=4, intermediate=128,
                   vocab=256, positions=1024),
        ModelShape(name="tiny-gpt2", family="gpt2", hidden=64, layers=2, heads=4,
                   intermediate=256, vocab=256, positions=1024),
    )
}
"""Named shapes: ``llama-7b`` (LLaMA-7B), ``gpt2-base`` (GPT2Config's defaults), two tiny ones."""

_LORA_TARGETS = {"llama": ("q_proj", "v_proj"), "gpt2": ("c_attn",)}


def shape_named(name: str) -> ModelShape:
    """The shape called ``name``; :class:`ConfigError` naming the known ones otherwise."""
    try:
        return SHAPES[name]
    except KeyError:
        raise ConfigError(f"unknown model shape {name!r}: use one of {', '.join(SHAPES)}") from None


@dataclass(frozen=True, kw_only=True)
class FinetuneMethod:
    """How to fine-tune: ``full`` (float32, AdamW) or ``lora`` (frozen base, float32 adapters).

    ``base_dtype`` ``None`` means float32 for ``full``; for ``lora``, bfloat16 on CUDA and
    float32 on CPU. ``target_modules`` ``None`` means the family's attention projections
    (``q_proj``, ``v_proj`` for Llama; ``c_attn`` for GPT-2). ``adamw`` ``auto`` is the fused
    kernel on CUDA (no full-size temporaries) and the foreach one elsewhere. Validated here.
    """

    kind: MethodKind
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] | None = None
    base_dtype: str | None = None
    lr: float = 1e-4
    weight_decay: float = 0.0
    adamw: AdamWImpl = "auto"

    def __post_init__(self) -> None:
        if self.kind not in ("full", "lora"):
            raise ConfigError(f"unknown fine-tuning method {self.kind!r}: use 'full' or 'lora'")
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            raise ConfigError(f"LoRA rank must be a whole number >= 1, got {self.rank!r}")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, int) or self.alpha < 1:
            raise ConfigError(f"LoRA alpha must be a whole number >= 1, got {self.alpha!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"LoRA dropout must be in [0, 1), got {self.dropout!r}")
        if self.target_modules is not None and not self.target_modules:
            raise ConfigError("LoRA target_modules is empty: name at least one module, "
                              "or pass None for the family's default")
        if self.base_dtype is not None and self.base_dtype not in _DTYPES:
            raise ConfigError(f"unknown base dtype {self.base_dtype!r}: use one of "
                              f"{', '.join(_DTYPES)}")
        if not self.lr > 0:
            raise ConfigError(f"learning rate must be > 0, got {self.lr!r}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight decay must be >= 0, got {self.weight_decay!r}")
        if self.adamw not in ("auto", "fused", "foreach"):
            raise ConfigError(f"unknown AdamW implementation {self.adamw!r}: use 'auto', "
                              "'fused' or 'foreach'")

    def dtype_on(self, device_type: str) -> str:
        """The base weights' dtype name on a device of this type (``cuda``, ``cpu``)."""
        if self.base_dtype is not None:
            return self.base_dtype
        return "bfloat16" if self.kind == "lora" and device_type == "cuda" else "float32"

    def targets_for(self, family: str) -> tuple[str, ...]:
        """The module names LoRA wraps in a model of this family."""
        if self.target_modules is not None:
            return self.target_modules
        try:
            return _LORA_TARGETS[family]
        except KeyError:
            raise ConfigError(f"no default LoRA targets for model family {family!r}: pass "
                              "target_modules") from None


@dataclass(frozen=True)
class PreparedModel:
    """A model ready to train: the (maybe peft-wrapped) model, its AdamW and parameter counts."""

    model: Any
    optimizer: Any
    trainable_params: int
    total_params: int
    adamw: Literal["fused", "foreach"]


@dataclass(frozen=True, kw_only=True)
class FinetuneResult:
    """What :func:`measure_finetune` measured.

    ``peak_allocated_bytes``/``peak_reserved_bytes`` are ``torch.cuda.max_memory_allocated`` /
    ``max_memory_reserved`` over the warm-up and timed steps (the model already built; the
    optimizer's state is created in the first warm-up step); ``None`` on CPU.
    """

    shape: str
    method: MethodKind
    device: str
    base_dtype: str
    adamw: str
    seq: int
    batch: int
    steps: int
    trainable_params: int
    total_params: int
    weights_bytes: int
    step_ms: float
    step_ms_all: tuple[float, ...]
    first_loss: float
    last_loss: float
    peak_allocated_bytes: int | None
    peak_reserved_bytes: int | None


@dataclass(frozen=True, kw_only=True)
class DecodeResult:
    """What :func:`measure_decode` measured for one batch size.

    ``ms_per_step`` is (``generate`` wall time - one eager forward over the prompt) /
    (``new_tokens`` - 1): the prompt's forward makes the first new token, each later token is
    one decode step. ``limit_ms`` is the memory-bandwidth limit of one step: (weights read +
    the mean KV cache read per step) / ``bandwidth``; ``weights_limit_ms`` counts the weights
    alone. Weights exclude input embedding tables (a step reads one row each), unless tied to
    the output layer. ``ratio`` is ``ms_per_step / limit_ms`` (1.0 is the limit).
    """

    shape: str
    path: DecodePath
    device: str
    batch: int
    prompt_tokens: int
    new_tokens: int
    ms_per_step: float
    tokens_per_s: float
    prefill_ms: float
    generate_ms: float
    weights_bytes: int
    kv_bytes_per_step: int
    bandwidth: float
    limit_ms: float
    weights_limit_ms: float
    ratio: float


def _torch_dtype(name: str) -> torch.dtype:
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16,
            "float16": torch.float16}[name]


def _device(device: str | None) -> torch.device:
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device {device!r}: use 'cpu' or 'cuda'") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but torch sees no CUDA device: "
                          "use 'cpu'")
    return dev


def _positive(name: str, value: int, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be a whole number >= {minimum}, got {value!r}")


def build_model(shape: ModelShape, *, dtype: str, device: str | None = None,
                seed: int = 0) -> Any:
    """A causal LM of ``shape`` with random weights, created directly on ``device`` in ``dtype``."""
    import torch
    from transformers import AutoModelForCausalLM

    if dtype not in _DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}: use one of {', '.join(_DTYPES)}")
    dev = _device(device)
    torch.manual_seed(seed)
    with dev:
        return AutoModelForCausalLM.from_config(shape.config(), dtype=_torch_dtype(dtype))


@contextmanager
def _quiet_peft() -> Iterator[None]:
    from netgpt.cloud_models.transformers_local import quiet_peft_warnings

    with quiet_peft_warnings():
        yield


def prepare_model(model: Any, method: FinetuneMethod, *, family: str) -> PreparedModel:
    """Make ``model`` trainable by ``method``: all of it (full) or peft LoRA adapters only.

    For LoRA the base is frozen and wrapped with ``get_peft_model``; the adapters are kept in
    float32 whatever the base's dtype. Returns the model to train (the peft wrapper for LoRA),
    an AdamW over its trainable parameters and the trainable and total parameter counts
    (total includes the adapters).
    """
    import torch

    if method.kind == "lora":
        from peft import LoraConfig, get_peft_model

        targets = method.targets_for(family)
        config = LoraConfig(r=method.rank, lora_alpha=method.alpha, lora_dropout=method.dropout,
                            target_modules=list(targets), bias="none", task_type="CAUSAL_LM",
                            fan_in_fan_out=family == "gpt2")  # GPT-2's Conv1D stores W^T
        for param in model.parameters():
            param.requires_grad_(False)
        try:
            with _quiet_peft():
                model = get_peft_model(model, config)
        except ValueError as exc:
            raise ConfigError(f"LoRA target modules {list(targets)} do not fit this "
                              f"{family} model: {exc}") from exc
        for param in model.parameters():
            if param.requires_grad and param.dtype != torch.float32:
                param.data = param.data.float()
    else:
        for param in model.parameters():
            param.requires_grad_(True)
    trainable = [p for p in model.parameters() if p.requires_grad]
    on_cuda = bool(trainable) and trainable[0].device.type == "cuda"
    impl: Literal["fused", "foreach"] = (
        method.adamw if method.adamw != "auto" else ("fused" if on_cuda else "foreach"))
    if impl == "fused":
        optimizer = torch.optim.AdamW(trainable, lr=method.lr, weight_decay=method.weight_decay,
                                      fused=True)
    else:
        optimizer = torch.optim.AdamW(trainable, lr=method.lr, weight_decay=method.weight_decay,
                                      foreach=True)
    return PreparedModel(model=model, optimizer=optimizer,
                         trainable_params=sum(p.numel() for p in trainable),
                         total_params=sum(p.numel() for p in model.parameters()), adamw=impl)


def train_step(prepared: PreparedModel, input_ids: Any) -> float:
    """One step: forward with ``labels=input_ids``, backward, AdamW step, gradients dropped.

    Returns the step's loss (reading it waits for the device, so the step has finished).
    """
    prepared.model.train()
    out = prepared.model(input_ids=input_ids, labels=input_ids, use_cache=False)
    out.loss.backward()
    prepared.optimizer.step()
    prepared.optimizer.zero_grad(set_to_none=True)
    return float(out.loss.detach())


def _free(dev: torch.device) -> None:
    import torch

    gc.collect()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.empty_cache()


def _param_bytes(model: Any) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def measure_finetune(shape: str | ModelShape, method: FinetuneMethod, *, seq: int = 512,
                     batch: int = 1, warmup: int = 2, steps: int = 5,
                     device: str | None = None, seed: int = 0) -> FinetuneResult:
    """Build ``shape`` with random weights on ``device``, prepare it for ``method``, time steps.

    Runs ``warmup`` untimed then ``steps`` timed :func:`train_step` calls on one fixed random
    batch of ``batch`` x ``seq`` tokens; the step time is the median. Peak memory counts from
    after the model is built (see :class:`FinetuneResult`). Frees the model before returning.
    ``device`` ``None``: CUDA if torch sees one, else CPU. ``torch.OutOfMemoryError`` passes
    through.
    """
    import torch

    spec = shape if isinstance(shape, ModelShape) else shape_named(shape)
    _positive("seq", seq, 2)
    _positive("batch", batch)
    _positive("steps", steps)
    _positive("warmup", warmup, 0)
    if seq > spec.positions:
        raise ConfigError(f"seq {seq} is longer than {spec.name}'s {spec.positions} positions")
    dev = _device(device)
    dtype = method.dtype_on(dev.type)
    _free(dev)
    prepared: PreparedModel | None = None
    try:
        model = build_model(spec, dtype=dtype, device=str(dev), seed=seed)
        prepared = prepare_model(model, method, family=spec.family)
        del model
        weights = _param_bytes(prepared.model)
        gen = torch.Generator(device="cpu").manual_seed(seed)
        input_ids = torch.randint(0, spec.vocab, (batch, seq), generator=gen).to(dev)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
        losses = [train_step(prepared, input_ids) for _ in range(warmup)]
        times: list[float] = []
        for _ in range(steps):
            t0 = time.perf_counter()
            losses.append(train_step(prepared, input_ids))
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            times.append((time.perf_counter() - t0) * 1000.0)
        peak_alloc = torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else None
        peak_res = torch.cuda.max_memory_reserved(dev) if dev.type == "cuda" else None
        return FinetuneResult(
            shape=spec.name, method=method.kind, device=_device_name(dev), base_dtype=dtype,
            adamw=prepared.adamw, seq=seq, batch=batch, steps=steps,
            trainable_params=prepared.trainable_params, total_params=prepared.total_params,
            weights_bytes=weights, step_ms=statistics.median(times),
            step_ms_all=tuple(round(t, 3) for t in times), first_loss=losses[0],
            last_loss=losses[-1], peak_allocated_bytes=peak_alloc, peak_reserved_bytes=peak_res)
    finally:
        del prepared
        _free(dev)


def _device_name(dev: torch.device) -> str:
    import torch

    return torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"


def _decode_weight_bytes(model: Any) -> int:
    """Bytes of weights one decode step reads: all but input embedding tables (unless tied)."""
    from torch import nn

    out = model.get_output_embeddings()
    tied = out.weight if out is not None else None
    skip = {id(m.weight) for m in model.modules()
            if isinstance(m, nn.Embedding) and m.weight is not tied}
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) in seen or id(p) in skip:
            continue
        seen.add(id(p))
        total += p.numel() * p.element_size()
    return total


def _kv_bytes_per_token(config: Any, element_size: int) -> int:
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    return 2 * config.num_hidden_layers * kv_heads * head_dim * element_size


def _time_generate(model: Any, ids: Any, gen_config: Any, *, new_tokens: int,
                   repeats: int) -> tuple[float, float]:
    """Median ms of ``generate`` and of one forward over the prompt, after one warm-up each."""
    import torch

    mask = torch.ones_like(ids)
    cuda = ids.device.type == "cuda"

    def timed(fn: Any) -> float:
        if cuda:
            torch.cuda.synchronize(ids.device)
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize(ids.device)
        return (time.perf_counter() - t0) * 1000.0

    def generate() -> None:
        out = model.generate(input_ids=ids, attention_mask=mask, generation_config=gen_config)
        if out.shape[1] != ids.shape[1] + new_tokens:
            raise RuntimeError(f"generate made {out.shape[1] - ids.shape[1]} tokens, "
                               f"not {new_tokens}")

    def prefill() -> None:
        model(input_ids=ids, attention_mask=mask, use_cache=True)

    with torch.inference_mode():
        generate()
        prefill()
        gen_ms = statistics.median(timed(generate) for _ in range(repeats))
        pre_ms = statistics.median(timed(prefill) for _ in range(repeats))
    return gen_ms, pre_ms


def measure_decode(shape: str | ModelShape, *, batches: Sequence[int] = (1, 16),
                   prompt_tokens: int = 64, new_tokens: int = 128, repeats: int = 3,
                   bandwidth: float = H200_BANDWIDTH, path: DecodePath = "eager",
                   device: str | None = None, seed: int = 0) -> list[DecodeResult]:
    """Time greedy ``model.generate`` of ``shape`` (random weights, bfloat16) per batch size.

    Every call makes exactly ``new_tokens`` tokens (``min_new_tokens`` too, so it never stops
    early). ``path``: ``eager`` is plain ``generate`` with its dynamic cache;
    ``static-compile`` passes ``cache_implementation="static"``, with which transformers
    compiles the decode step on CUDA (``torch.compile``; the first call per batch size pays
    the compilation, it is a warm-up). One warm-up call, then the median of ``repeats``.
    ``bandwidth`` is the device's memory bandwidth in bytes/s (default the H200's 4.8e12).
    """
    import torch
    from transformers import GenerationConfig

    spec = shape if isinstance(shape, ModelShape) else shape_named(shape)
    _positive("prompt_tokens", prompt_tokens)
    _positive("new_tokens", new_tokens, 2)
    _positive("repeats", repeats)
    if not batches:
        raise ConfigError("batches is empty: give at least one batch size")
    for b in batches:
        _positive("batch size", b)
    if prompt_tokens + new_tokens > spec.positions:
        raise ConfigError(f"prompt_tokens + new_tokens = {prompt_tokens + new_tokens} is more "
                          f"than {spec.name}'s {spec.positions} positions")
    if not bandwidth > 0:
        raise ConfigError(f"bandwidth must be > 0 bytes/s, got {bandwidth!r}")
    if path not in ("eager", "static-compile"):
        raise ConfigError(f"unknown decode path {path!r}: use 'eager' or 'static-compile'")
    dev = _device(device)
    _free(dev)
    model: Any = None
    try:
        model = build_model(spec, dtype="bfloat16", device=str(dev), seed=seed)
        model.eval()
        model.config.use_cache = True
        weights = _decode_weight_bytes(model)
        kv_token = _kv_bytes_per_token(model.config, 2)
        gen_config = GenerationConfig(
            do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
            pad_token_id=0, eos_token_id=spec.vocab - 1, use_cache=True,
            cache_implementation="static" if path == "static-compile" else None)
        rng = torch.Generator(device="cpu").manual_seed(seed)
        results = []
        for b in batches:
            ids = torch.randint(1, spec.vocab - 1, (b, prompt_tokens), generator=rng).to(dev)
            gen_ms, pre_ms = _time_generate(model, ids, gen_config, new_tokens=new_tokens,
                                            repeats=repeats)
            per_step = max(gen_ms - pre_ms, 0.0) / (new_tokens - 1)
            mean_ctx = prompt_tokens + new_tokens / 2.0  # a step reads the cache it has so far
            kv_step = int(kv_token * b * mean_ctx)
            limit = (weights + kv_step) / bandwidth * 1000.0
            results.append(DecodeResult(
                shape=spec.name, path=path, device=_device_name(dev), batch=b,
                prompt_tokens=prompt_tokens, new_tokens=new_tokens, ms_per_step=per_step,
                tokens_per_s=b * 1000.0 / per_step if per_step > 0 else float("inf"),
                prefill_ms=pre_ms, generate_ms=gen_ms, weights_bytes=weights,
                kv_bytes_per_step=kv_step, bandwidth=bandwidth, limit_ms=limit,
                weights_limit_ms=weights / bandwidth * 1000.0,
                ratio=per_step / limit))
        return results
    finally:
        model = None
        _free(dev)
