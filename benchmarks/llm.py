"""Cloud-model benchmark: the project's model through vLLM and in process, on this CPU.

    .venv/bin/python benchmarks/llm.py --json OUT [--requests N] [--skip-vllm]

Serving: the shipped weights (``netgpt/cloud_models/weights``) behind a real vLLM server
(``netgpt llm serve``'s code: its own environment, loopback, float32, eager mode) with the site
adapters loaded (multi-LoRA), and the same weights in process (``transformers_local``). Each
request is the project's intent prompt for one of :data:`TEXTS`, greedy, no schema, up to 64
new tokens (the model stops at its end token after ~30-60). Per backend, over ``--requests``
requests after two warm-up ones:

* ``*_ttft_ms``: median time to the first generated token: the first streamed piece from vLLM
  (HTTP streaming, loopback); the first token of ``generate`` in process.
* ``*_tok_s``: median of completion tokens / request wall time (prefill included), one request at
  a time: what one caller sees, not the server's batched throughput.
* ``*_adapter_tok_s``: the same with the ``campus`` LoRA adapter selected.
* ``*_read_intent_ms``: median wall time of a full ``read_intent`` (schema-constrained decoding:
  vLLM's structured outputs / llguidance in process, plus validation) on :data:`TEXTS`, which
  the model reads right at the first attempt (a retry restates the ~2,100-token schema and
  costs far more).

Both backends run with ``--threads`` CPU threads (default 1).

Accuracy on the held-out paraphrases (``benchmarks/data/paraphrases.jsonl``, never used for
training): an item counts when the intent's expectations equal the expected ones exactly (as a
multiset) and the priority matches. ``*_paraphrase_accuracy`` covers the 58 items that state a
requirement, read by the model alone; ``parser_then_*_accuracy`` covers all 68 items the way the
agent reads text (``netgpt.agents``): the parser first, the model only when the parser could not
place the text (reasons ``unplaced`` and ``incomplete``; refused, contradictory, out-of-range texts
and unknown names stay refused), and a model reading that names something the text does not
mention is refused too; so the 10 bad inputs count only when the result is still a refusal.

Plan choice (``*_plan_choice_accuracy``): ``--plan-choices`` held-out choices of the plan corpus
(``netgpt.cloud_models.plan_corpus``, a seed the training never uses, less any choice the
adapter was trained on), asked through
``choose_plan`` with the ``plans`` adapter, schema-constrained, as the agent asks; an item counts
when the chosen index is the planner's preferred one. ``*_plan_choice_ms`` is the median time per
choice; ``plan_choice_first_option_accuracy`` is what always taking option 0 would score.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.intents import DATA, PARAPHRASES, expand  # noqa: E402
from netgpt.agents.graph import MODEL_PARSE_REASONS  # noqa: E402
from netgpt.cloud_models import (  # noqa: E402
    ChatRequest,
    LanguageModel,
    llm_from_config,
    read_intent,
)
from netgpt.cloud_models.intent_draft import ungrounded_names  # noqa: E402
from netgpt.cloud_models.plan_corpus import PlanPair, build_plan_corpus  # noqa: E402
from netgpt.cloud_models.prompts import intent_messages  # noqa: E402
from netgpt.cloud_models.proposals import choose_plan  # noqa: E402
from netgpt.cloud_models.training import load_card, shipped_adapters, shipped_model_dir  # noqa: E402
from netgpt.cloud_models.vllm_server import (  # noqa: E402
    ensure_vllm_env,
    start_vllm_server,
    stop_vllm_server,
)
from netgpt.errors import IntentParseError, LLMError  # noqa: E402
from netgpt.intents import netconfeval as nce  # noqa: E402
from netgpt.intents.names import NameTable  # noqa: E402
from netgpt.intents.parser import parse_intent  # noqa: E402
from netgpt.sim_networks.topology import build_topology  # noqa: E402

TEXTS = [
    "Kindly throttle the students to 200 Mbps.",
    "Balance NYCMng to LOSAng over 2 paths",
    "Please block ssh coming from students towards the servers.",
    "We want every link kept below 80% utilization.",
    "Kindly keep latency from NYCMng to LOSAng under 30 ms.",
]
_MODEL_FALLBACK = MODEL_PARSE_REASONS


def _median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 2)


def _request(i: int, adapter: str | None = None) -> ChatRequest:
    return ChatRequest(messages=intent_messages(TEXTS[i % len(TEXTS)]), max_tokens=64,
                       adapter=adapter)


def _ttft_stream(llm: LanguageModel, n: int) -> float:
    samples = []
    for i in range(n + 2):
        start = time.perf_counter()
        stream = llm.stream(_request(i))
        next(stream)
        first = time.perf_counter() - start
        for _ in stream:
            pass
        if i >= 2:
            samples.append(first)
    return _median_ms(samples)


def _ttft_local(llm: LanguageModel, n: int) -> float:
    samples = []
    for i in range(n + 2):
        response = llm.chat(_request(i))
        if i >= 2 and response.ttft_s is not None:
            samples.append(response.ttft_s)
    return _median_ms(samples)


def _tok_s(llm: LanguageModel, n: int, adapter: str | None = None) -> tuple[float, float]:
    rates, tokens = [], []
    for i in range(n + 2):
        start = time.perf_counter()
        response = llm.chat(_request(i, adapter))
        elapsed = time.perf_counter() - start
        if i >= 2:
            rates.append(response.completion_tokens / elapsed)
            tokens.append(response.completion_tokens)
    return round(statistics.median(rates), 1), statistics.fmean(tokens)


def _names() -> dict[str, NameTable]:
    tables = {t: NameTable.from_topology(build_topology(t)) for t in ("campus", "abilene")}
    if DATA.exists():
        tables["netconfeval"] = nce.name_table(r.expected for r in nce.load_step1(DATA))
    return tables


def _read_ms(llm: LanguageModel, n: int) -> float:
    names = _names()
    samples = []
    for i in range(n + 1):
        text = TEXTS[i % len(TEXTS)]
        topo = "abilene" if any(w in text for w in ("NYCMng", "every link")) else "campus"
        start = time.perf_counter()
        with contextlib.suppress(LLMError):
            read_intent(llm, text, names[topo])
        if i >= 1:
            samples.append(time.perf_counter() - start)
    return _median_ms(samples)


def _matches(item: dict[str, Any], expectations: Any, priority: int) -> bool:
    want = sorted(e.model_dump_json() for e in map(expand, item["expected"]))
    have = sorted(e.model_dump_json() for e in expectations)
    return want == have and priority == item.get("priority", 5)


def paraphrase_accuracy(read: Callable[[str, NameTable], Any]) -> dict[str, Any]:
    """The model alone on requirement items, and parser-then-model on every item."""
    items = [json.loads(ln) for ln in PARAPHRASES.read_text().splitlines() if ln.strip()]
    tables = _names()
    model_ok, model_n, chain_ok, misses = 0, 0, 0, []
    for item in items:
        if item["topology"] not in tables:
            continue
        names = tables[item["topology"]]
        model_intent = None
        if not item.get("expected_error"):
            model_n += 1
            try:
                model_intent = read(item["text"], names)
            except (LLMError, ValueError):
                model_intent = None
            ok = model_intent is not None and _matches(item, model_intent.expectations,
                                                         model_intent.priority)
            model_ok += ok
            if not ok:
                misses.append(item["id"])
        try:
            final: Any = parse_intent(item["text"], names)
        except IntentParseError as exc:
            final = exc
            if exc.reason in _MODEL_FALLBACK:
                try:
                    final = model_intent if model_intent is not None else read(item["text"],
                                                                                names)
                    if ungrounded_names(final, item["text"], names):
                        final = ValueError("the reading names what the text does not")
                except (LLMError, ValueError) as err:
                    final = err
        if item.get("expected_error"):
            chain_ok += isinstance(final, Exception)
        else:
            chain_ok += not isinstance(final, Exception) and _matches(
                item, final.expectations, final.priority)
    return {"model_accuracy": round(model_ok / model_n, 4), "model_items": model_n,
            "chain_accuracy": round(chain_ok / len(items), 4), "chain_items": len(items),
            "model_misses": misses}


PLAN_SEED = 9000  # training draws plan corpora with seeds 11 (+ its seed) and 3000


def plan_choice_accuracy(llm: LanguageModel, pairs: list[PlanPair]) -> tuple[float, float]:
    """(share of ``pairs`` where the model picks the preferred index, median ms per choice)."""
    hits, times = 0, []
    for p in pairs:
        started = time.perf_counter()
        try:
            index, _ = choose_plan(llm, p.options, p.goal, adapter="plans", timeout_s=120)
        except LLMError:
            index = -1
        times.append(time.perf_counter() - started)
        hits += index == json.loads(p.target)["index"]
    return round(hits / max(1, len(pairs)), 4), _median_ms(times)


def measure_backend(llm: LanguageModel, name: str, ttft: Callable[[LanguageModel, int], float],
                    n: int, plans: list[PlanPair]) -> dict[str, Any]:
    """Every figure of one backend, keyed ``{name}_...`` (``parser_then_{name}_accuracy``)."""
    out: dict[str, Any] = {f"{name}_ttft_ms": ttft(llm, n)}
    out[f"{name}_tok_s"], out[f"{name}_tokens_per_answer"] = _tok_s(llm, n)
    out[f"{name}_adapter_tok_s"], _ = _tok_s(llm, n, adapter="campus")
    out[f"{name}_read_intent_ms"] = _read_ms(llm, n)
    acc = paraphrase_accuracy(lambda t, names: read_intent(llm, t, names).intent)
    out[f"{name}_paraphrase_accuracy"] = acc["model_accuracy"]
    out[f"parser_then_{name}_accuracy"] = acc["chain_accuracy"]
    out[f"{name}_paraphrase_misses"] = acc["model_misses"]
    if plans:
        (out[f"{name}_plan_choice_accuracy"],
         out[f"{name}_plan_choice_ms"]) = plan_choice_accuracy(llm, plans)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--skip-vllm", action="store_true", help="in-process numbers only")
    parser.add_argument("--plan-choices", type=int, default=100,
                        help="held-out plan choices to score (0: none)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for each backend (1: two threads thrash as soon as "
                             "another process competes for a core)")
    args = parser.parse_args()
    n = args.requests
    card = load_card(shipped_model_dir())
    result: dict[str, Any] = {
        "model": str(shipped_model_dir()),
        "parameters": card.parameters if card else None,
        "model_bytes": card.size_bytes if card else None,
        "train_s": card.train_s if card else None,
        "adapters": sorted(shipped_adapters()),
        "requests": n,
        "threads": args.threads,
        "vllm_ttft_ms": None, "vllm_tok_s": None, "vllm_adapter_tok_s": None,
    }

    def parser_only(text: str, names: NameTable) -> Any:
        return parse_intent(text, names)

    parser_acc = paraphrase_accuracy(parser_only)
    result["parser_paraphrase_accuracy"] = parser_acc["chain_accuracy"]
    plans = build_plan_corpus(args.plan_choices, seed=PLAN_SEED).pairs
    if plans and card is not None and card.settings.get("plan_pairs"):
        # held out for real: drop any choice the adapter was trained on (same goal and options)
        trained = build_plan_corpus(int(card.settings["plan_pairs"]),
                                    seed=int(card.settings["seed"]) + 11).pairs
        seen = {(p.goal, p.options) for p in trained}
        plans = [p for p in plans if (p.goal, p.options) not in seen]
    result["plan_choices"] = len(plans)
    result["plan_choice_first_option_accuracy"] = round(
        sum(json.loads(p.target)["index"] == 0 for p in plans) / max(1, len(plans)), 4)

    local = llm_from_config("transformers_local", environ={}, threads=args.threads)
    try:
        result.update(measure_backend(local, "local", _ttft_local, n, plans))
    finally:
        local.close()

    if not args.skip_vllm:
        with tempfile.TemporaryDirectory(prefix="netgpt-bench-llm-") as tmp:
            started = time.perf_counter()
            env = ensure_vllm_env()
            result["vllm_env_s"] = round(time.perf_counter() - started, 1)
            result["vllm_versions"] = env.versions()
            info = start_vllm_server(shipped_model_dir(), adapters=shipped_adapters(),
                                     state_dir=Path(tmp), env=env, timeout_s=600,
                                     threads=args.threads)
            result["vllm_startup_s"] = info.startup_s
            served = llm_from_config("openai_compat", environ={}, base_url=info.base_url,
                                     timeout_s=120)
            try:
                result.update(measure_backend(served, "vllm", _ttft_stream, n, plans))
            finally:
                served.close()
                stop_vllm_server(Path(tmp))

    for key, value in result.items():
        if not isinstance(value, list | dict):
            print(f"{key:<32} {value}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
