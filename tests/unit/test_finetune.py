"""The fine-tuning step and its measurements, on the tiny shapes on CPU."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from netgpt.cloud_models.finetune import (
    SHAPES,
    FinetuneMethod,
    MethodKind,
    build_model,
    measure_decode,
    measure_finetune,
    prepare_model,
    shape_named,
    train_step,
)
from netgpt.errors import ConfigError

pytestmark = pytest.mark.unit


def test_the_named_shapes_are_the_issue_s() -> None:
    llama = shape_named("llama-7b")
    assert (llama.hidden, llama.layers, llama.heads, llama.intermediate, llama.vocab) == (
        4096, 32, 32, 11008, 32000)
    gpt2 = shape_named("gpt2-base").config()
    assert (gpt2.n_layer, gpt2.n_embd, gpt2.vocab_size) == (12, 768, 50257)
    assert {"tiny", "tiny-gpt2"} <= set(SHAPES)


@pytest.mark.parametrize("shape", ["tiny", "tiny-gpt2"])
def test_lora_trains_far_fewer_parameters_than_full(shape: str) -> None:
    full = measure_finetune(shape, FinetuneMethod(kind="full"), seq=16, warmup=0, steps=1,
                            device="cpu")
    lora = measure_finetune(shape, FinetuneMethod(kind="lora", rank=4), seq=16, warmup=0,
                            steps=1, device="cpu")
    assert full.trainable_params == full.total_params
    assert 0 < lora.trainable_params * 10 < full.trainable_params
    assert lora.total_params == full.total_params + lora.trainable_params
    assert (full.base_dtype, lora.base_dtype) == ("float32", "float32")  # bf16 only on CUDA
    assert full.peak_allocated_bytes is None and full.step_ms > 0
    assert (lora.shape, lora.method, lora.seq, lora.batch) == (shape, "lora", 16, 1)


@pytest.mark.parametrize("kind", ["full", "lora"])
def test_steps_lower_the_loss_on_a_fixed_batch(kind: MethodKind) -> None:
    shape = shape_named("tiny")
    model = build_model(shape, dtype="float32", device="cpu", seed=1)
    prepared = prepare_model(model, FinetuneMethod(kind=kind, lr=1e-2), family=shape.family)
    ids = torch.randint(0, shape.vocab, (2, 24), generator=torch.Generator().manual_seed(0))
    losses = [train_step(prepared, ids) for _ in range(6)]
    assert losses[-1] < losses[0] - 0.1
    assert all(p.grad is None for p in prepared.model.parameters())  # zero_grad(set_to_none)
    if kind == "lora":
        adapters = [p for p in prepared.model.parameters() if p.requires_grad]
        assert adapters and all(p.dtype == torch.float32 for p in adapters)
        names = {n for n, p in prepared.model.named_parameters() if p.requires_grad}
        assert names and all("q_proj" in n or "v_proj" in n for n in names)


def test_lora_over_a_bf16_base_keeps_float32_adapters() -> None:
    shape = shape_named("tiny-gpt2")
    model = build_model(shape, dtype="bfloat16", device="cpu")
    prepared = prepare_model(model, FinetuneMethod(kind="lora"), family=shape.family)
    trainable = {n: p for n, p in prepared.model.named_parameters() if p.requires_grad}
    assert trainable and all("c_attn" in n for n in trainable)
    assert all(p.dtype == torch.float32 for p in trainable.values())
    frozen = [p for p in prepared.model.parameters() if not p.requires_grad]
    assert all(p.dtype == torch.bfloat16 for p in frozen)
    assert train_step(prepared, torch.randint(0, shape.vocab, (1, 8))) > 0


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda: shape_named("llama-13b"), "llama-13b"),
        (lambda: FinetuneMethod(kind="lora", rank=0), "rank"),
        (lambda: FinetuneMethod(kind="lora", rank=2.5), "2.5"),  # type: ignore[arg-type]
        (lambda: FinetuneMethod(kind="adapter"), "adapter"),  # type: ignore[arg-type]
        (lambda: FinetuneMethod(kind="full", base_dtype="fp8"), "fp8"),
        (lambda: FinetuneMethod(kind="lora", target_modules=()), "target_modules"),
        (lambda: measure_finetune("tiny", FinetuneMethod(kind="full"), seq=4096,
                                  device="cpu"), "4096"),
        (lambda: measure_decode("tiny", batches=(0,), device="cpu"), "batch size"),
    ],
)
def test_bad_values_are_config_errors_naming_them(make: Callable[[], object],
                                                 needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        make()


def test_decode_on_tiny_gives_positive_numbers_and_a_limit() -> None:
    results = measure_decode("tiny", batches=(1, 2), prompt_tokens=4, new_tokens=6, repeats=1,
                             bandwidth=1e9, device="cpu")
    assert [r.batch for r in results] == [1, 2]
    for r in results:
        assert r.ms_per_step > 0 and r.tokens_per_s > 0 and r.generate_ms > r.prefill_ms > 0
        assert r.weights_bytes > 0 and r.kv_bytes_per_step > 0
        assert r.limit_ms == pytest.approx((r.weights_bytes + r.kv_bytes_per_step) / 1e6)
        assert r.ratio == pytest.approx(r.ms_per_step / r.limit_ms)
    assert results[1].kv_bytes_per_step == 2 * results[0].kv_bytes_per_step
