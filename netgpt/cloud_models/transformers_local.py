"""The ``transformers_local`` backend: the model in this process, generated with transformers.

Loads a model directory (default: the project's trained model shipped in the package) with
``AutoModelForCausalLM`` in float32, and its LoRA adapters with peft (default: the adapters next
to it), each under its own name; a request's ``adapter`` picks one, ``None`` the base model.

Schema-constrained requests are decoded with **llguidance** (the grammar engine behind vLLM's
``guidance`` structured-output backend): a logits processor masks, at each step, every token
that would take the answer outside the JSON schema, so the answer always parses and fits the
schema's shape. Greedy decoding when ``temperature`` is 0. ``timeout_s`` bounds generation time
(:class:`~netgpt.errors.LLMTimeoutError` when it runs out). One generation at a time per
instance (a lock); ``threads`` sets torch's intra-op threads for this process.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from netgpt.cloud_models.base import ChatRequest, ChatResponse, HealthReport
from netgpt.errors import ConfigError, LLMOutputError, LLMTimeoutError, LLMUnavailableError

__all__ = ["LocalTransformersModel", "LocalTransformersSettings", "quiet_peft_warnings"]

_BACKEND = "transformers_local"


@contextlib.contextmanager
def quiet_peft_warnings() -> Iterator[None]:
    """Silence peft 0.21's use of an attribute transformers 5.2x renamed (a FutureWarning)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*",
                                category=FutureWarning)
        yield


class LocalTransformersSettings(BaseModel):
    """Which model directory and adapters to load, and how to run them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    model_dir: Path | None = None
    adapters: dict[str, Path] | None = None
    threads: int = Field(default=1, ge=1, le=256)
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    constrained: bool = True


class _Deadline:
    """A stopping criterion: stops generation at a deadline and notes the first token time."""

    def __init__(self, start: float, timeout_s: float, prompt_len: int) -> None:
        self.start = start
        self.deadline = start + timeout_s
        self.prompt_len = prompt_len
        self.first_token_at: float | None = None
        self.expired = False

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        now = time.perf_counter()
        if self.first_token_at is None and input_ids.shape[1] > self.prompt_len:
            self.first_token_at = now
        if now > self.deadline:
            self.expired = True
            return torch.ones(input_ids.shape[0], dtype=torch.bool)
        return torch.zeros(input_ids.shape[0], dtype=torch.bool)


class _SchemaConstraint:
    """A logits processor that keeps the answer inside a JSON schema (llguidance)."""

    def __init__(self, ll_tokenizer: Any, schema: dict[str, Any], prompt_len: int,
                 vocab_size: int) -> None:
        import llguidance

        grammar = llguidance.LLMatcher.grammar_from_json_schema(
            schema, defaults={"whitespace_flexible": False})
        self.matcher = llguidance.LLMatcher(ll_tokenizer, grammar, log_level=0)
        if self.matcher.is_error():
            raise LLMOutputError(f"the JSON schema cannot be used for constrained decoding: "
                                 f"{self.matcher.get_error()}", backend=_BACKEND)
        self.prompt_len = prompt_len
        self.vocab_size = vocab_size

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import numpy as np
        import torch

        if input_ids.shape[1] > self.prompt_len:
            self.matcher.consume_token(int(input_ids[0, -1]))
        if self.matcher.is_error():
            raise LLMOutputError(f"constrained decoding failed: {self.matcher.get_error()}",
                                 backend=_BACKEND)
        words = np.frombuffer(self.matcher.compute_bitmask(), dtype="<u4")
        bits = np.unpackbits(words.view(np.uint8), bitorder="little")[: scores.shape[-1]]
        allowed = torch.from_numpy(bits.astype(bool))
        if allowed.shape[0] < scores.shape[-1]:
            allowed = torch.cat([allowed, torch.zeros(scores.shape[-1] - allowed.shape[0],
                                                      dtype=torch.bool)])
        return scores.masked_fill(~allowed, float("-inf"))


class LocalTransformersModel:
    """A :class:`~netgpt.cloud_models.base.LanguageModel` running in this process."""

    def __init__(self, settings: LocalTransformersSettings | None = None) -> None:
        from netgpt.cloud_models.training import shipped_adapters, shipped_model_dir

        self.settings = settings or LocalTransformersSettings()
        self.model_dir = (self.settings.model_dir or shipped_model_dir()).resolve()
        if not (self.model_dir / "config.json").is_file():
            raise LLMUnavailableError(
                f"no model in {self.model_dir} (config.json missing); train one with "
                "'netgpt llm train' or point model_dir at a model directory", backend=_BACKEND)
        adapters = self.settings.adapters
        if adapters is None:
            adapters = shipped_adapters(self.model_dir.parent) \
                if self.settings.model_dir is not None else shipped_adapters()
        self.adapter_dirs = {name: Path(p).resolve() for name, p in adapters.items()}
        self._lock = threading.Lock()
        self._load()

    def _load(self) -> None:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bars on stderr
        torch.set_num_threads(self.settings.threads)
        try:
            self.tokenizer: Any = AutoTokenizer.from_pretrained(self.model_dir)
            base = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise LLMUnavailableError(f"cannot load the model in {self.model_dir}: {exc}",
                                      backend=_BACKEND) from exc
        base.eval()
        self._net: Any = base
        if self.adapter_dirs:
            from peft import PeftModel

            names = list(self.adapter_dirs)
            try:
                with quiet_peft_warnings():
                    peft_model = PeftModel.from_pretrained(base, self.adapter_dirs[names[0]],
                                                           adapter_name=names[0])
                    for name in names[1:]:
                        peft_model.load_adapter(self.adapter_dirs[name], adapter_name=name)
            except (OSError, ValueError, KeyError) as exc:
                raise LLMUnavailableError(f"cannot load adapters {self.adapter_dirs}: {exc}",
                                          backend=_BACKEND) from exc
            peft_model.eval()
            self._net = peft_model
        self._ll_tokenizer: Any = None
        self.max_positions = int(getattr(base.config, "max_position_embeddings", 2048))

    @property
    def backend(self) -> str:
        """``transformers_local``."""
        return _BACKEND

    @property
    def model(self) -> str:
        """The model directory."""
        return str(self.model_dir)

    @property
    def adapters(self) -> tuple[str, ...]:
        """Names of the loaded adapters."""
        return tuple(self.adapter_dirs)

    # -- generation -------------------------------------------------------------------------

    def _prompt(self, request: ChatRequest) -> Any:
        import torch

        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=True)
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if len(ids) + request.max_tokens > self.max_positions:
            raise LLMOutputError(
                f"the prompt ({len(ids)} tokens) plus max_tokens ({request.max_tokens}) exceed "
                f"the model's {self.max_positions} positions; shorten the prompt",
                backend=_BACKEND)
        return torch.tensor([ids])

    def _constraint(self, request: ChatRequest, prompt_len: int) -> _SchemaConstraint | None:
        if request.json_schema is None or not self.settings.constrained:
            return None
        if self._ll_tokenizer is None:
            import llguidance.hf

            self._ll_tokenizer = llguidance.hf.from_tokenizer(self.tokenizer)
        return _SchemaConstraint(self._ll_tokenizer, dict(request.json_schema), prompt_len,
                                 len(self.tokenizer))

    def _select(self, request: ChatRequest) -> Any:
        """The network to generate with, adapter set (a context manager for the base)."""
        if request.adapter is None:
            if self._net is not None and self.adapter_dirs:
                return self._net.disable_adapter()
            return contextlib.nullcontext()
        if request.adapter not in self.adapter_dirs:
            raise ConfigError(f"adapter {request.adapter!r} is not loaded; loaded: "
                              f"{sorted(self.adapter_dirs) or 'none'}")
        self._net.set_adapter(request.adapter)
        return contextlib.nullcontext()

    def _generate(self, request: ChatRequest, streamer: Any = None) -> tuple[Any, Any, _Deadline,
                                                                              float]:
        import torch
        from transformers import LogitsProcessorList, StoppingCriteriaList

        ids = self._prompt(request)
        start = time.perf_counter()
        deadline = _Deadline(start, request.timeout_s or self.settings.timeout_s, ids.shape[1])
        constraint = self._constraint(request, ids.shape[1])
        processors = LogitsProcessorList([constraint] if constraint is not None else [])
        sampling: dict[str, Any] = {"do_sample": False}
        if request.temperature > 0:
            sampling = {"do_sample": True, "temperature": request.temperature, "top_k": 0,
                        "top_p": 1.0}
        with self._select(request), torch.inference_mode():
            out = self._net.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids),
                max_new_tokens=request.max_tokens, logits_processor=processors,
                stopping_criteria=StoppingCriteriaList([deadline]),
                eos_token_id=self.tokenizer.eos_token_id,
                pad_token_id=self.tokenizer.pad_token_id, output_scores=True,
                return_dict_in_generate=True, streamer=streamer, **sampling,
            )
        if deadline.expired:
            raise LLMTimeoutError(
                f"generation ran past {request.timeout_s or self.settings.timeout_s:g} s; raise "
                "timeout_s or max_tokens lower", backend=_BACKEND)
        return ids, out, deadline, start

    def chat(self, request: ChatRequest) -> ChatResponse:
        """Generate the answer in this process."""
        import torch

        with self._lock:
            ids, out, deadline, start = self._generate(request)
        new = out.sequences[0, ids.shape[1]:]
        tokens = [int(t) for t in new]
        eos = self.tokenizer.eos_token_id
        finished = bool(tokens) and tokens[-1] == eos
        text = str(self.tokenizer.decode([t for t in tokens if t != eos],
                                         skip_special_tokens=True))
        mean_logprob = None
        if request.logprobs and out.scores:
            chosen = []
            for step, scores in enumerate(out.scores[: len(tokens)]):
                logp = torch.log_softmax(scores[0].float(), dim=-1)[tokens[step]]
                if math.isfinite(float(logp)):
                    chosen.append(float(logp))
            mean_logprob = sum(chosen) / len(chosen) if chosen else None
        end = time.perf_counter()
        return ChatResponse(
            text=text, backend=_BACKEND, model=self.model, adapter=request.adapter,
            prompt_tokens=int(ids.shape[1]), completion_tokens=len(tokens),
            finish_reason="stop" if finished else "length", latency_s=end - start,
            ttft_s=(deadline.first_token_at - start) if deadline.first_token_at else None,
            mean_logprob=mean_logprob,
        )

    def stream(self, request: ChatRequest) -> Iterator[str]:
        """Yield text pieces as the model generates them (generation runs in a thread)."""
        from transformers import TextIteratorStreamer

        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True,
                                        skip_special_tokens=True,
                                        timeout=request.timeout_s or self.settings.timeout_s)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                self._generate(request, streamer)
            except BaseException as exc:  # handed to the consumer below, re-raised there
                failure.append(exc)
                streamer.end()

        with self._lock:
            worker = threading.Thread(target=run, name="netgpt-llm-stream", daemon=True)
            worker.start()
            try:
                for piece in streamer:
                    if piece:
                        yield piece
            except Exception as exc:  # the streamer's queue timed out
                raise LLMTimeoutError(f"no token within the timeout: {exc}",
                                      backend=_BACKEND) from exc
            finally:
                worker.join()
        if failure:
            raise failure[0]

    def health(self) -> HealthReport:
        """Loaded means ready; a one-token generation checks it."""
        from netgpt.cloud_models.base import ChatMessage

        start = time.perf_counter()
        try:
            self.chat(ChatRequest(messages=(ChatMessage("user", "ping"),), max_tokens=1))
        except Exception as exc:  # health never raises: the problem is the report's detail
            return HealthReport(ok=False, backend=_BACKEND, model=self.model,
                                detail=f"{type(exc).__name__}: {exc}",
                                latency_ms=(time.perf_counter() - start) * 1000)
        return HealthReport(ok=True, backend=_BACKEND, model=self.model,
                            detail=f"loaded from {self.model_dir}",
                            latency_ms=(time.perf_counter() - start) * 1000,
                            adapters=self.adapters)

    def close(self) -> None:
        """Drop the model (memory is freed when nothing else holds it)."""
        self._net = None
