"""Edge intent model benchmark: held-out phrasings, NetConfEval, per-site adapters, latency.

    .venv/bin/python benchmarks/intent_model.py --json OUT [--weights DIR] [--n N]

* **Held-out phrasings**: ``generate_requests(split="heldout")`` for campus, Abilene and
  NetConfEval names: frames and words the training partition never used (names and numbers are
  shared). Scored by the model alone (no parser): field accuracy and exact match
  (:mod:`netgpt.edge_models.intent_evaluation`).
* **Hand-written**: ``benchmarks/data/paraphrases.jsonl`` (written by people for the parser
  benchmark; never trained on), the items that expect an intent.
* **NetConfEval**: every batch of step 1, read sentence by sentence by the model alone, scored
  with NetConfEval's metric. Training uses sentences of one half (a stable hash); besides every
  batch, the batches made only of the other half's sentences are scored apart
  (``netconfeval_unseen_accuracy``).
* **Per-site**: each site's own words (held-out frames), read by the global model and by the
  model with that site's adapter.
* **Latency**: per request (tagging + constrained decoding), over the held-out reads.
* **Router**: the parser-then-edge chain on the held-out set: share answered by each stage,
  share of questions, and the share of confident answers that are wrong.

JSON keys: ``netconfeval_accuracy``, ``heldout_field_accuracy``, ``heldout_exact_match``,
``adapted_field_accuracy``, ``global_field_accuracy``, ``latency_p50_ms``, ``latency_p95_ms``,
plus ``details``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from netgpt.agents.intent_reading import Clarification, IntentReader  # noqa: E402
from netgpt.cloud_models.corpus import NETCONFEVAL_FILE, corpus_name_tables  # noqa: E402
from netgpt.cloud_models.intent_draft import intent_from_draft  # noqa: E402
from netgpt.edge_models.intent_corpus import generate_requests  # noqa: E402
from netgpt.edge_models.intent_evaluation import (  # noqa: E402
    field_accuracy,
    score_netconfeval,
    score_requests,
    summarize,
)
from netgpt.edge_models.intent_model import (  # noqa: E402
    DEFAULT_MIN_CONFIDENCE,
    SHIPPED_INTENT_WEIGHTS,
    EdgeIntentModel,
)
from netgpt.edge_models.intent_training import (  # noqa: E402
    netconfeval_half,
    site_requests,
)
from netgpt.errors import IntentParseError  # noqa: E402
from netgpt.intents.model import Intent  # noqa: E402
from netgpt.intents.names import NameTable  # noqa: E402

GOALS = {"heldout_field_accuracy": 0.95, "netconfeval_accuracy": 0.99, "latency_p50_ms": 50.0}
SEED = 424242  # not a training seed (training draws 0..~8000)
HANDWRITTEN = ROOT / "benchmarks" / "data" / "paraphrases.jsonl"


def _reader(model: EdgeIntentModel, adapter: str | None = None) -> Any:
    def read(text: str, names: NameTable) -> tuple[Intent | None, float, float]:
        r = model.read(text, names, adapter=adapter)
        return r.intent, r.confidence, r.latency_ms
    return read


def _handwritten(model: EdgeIntentModel, tables: dict[str, NameTable]) -> dict[str, Any]:
    from benchmarks.intents import expand

    items = [json.loads(x) for x in HANDWRITTEN.read_text().splitlines() if x.strip()]
    accs, exact, n = [], 0, 0
    for item in items:
        if item.get("expected_error") or item["topology"] not in tables:
            continue
        names = tables[item["topology"]]
        want = Intent(expectations=tuple(expand(e) for e in item["expected"]),
                      priority=item.get("priority", 5))
        got = model.read(item["text"], names).intent
        acc, ok = field_accuracy(want, got)
        accs.append(acc)
        exact += ok
        n += 1
    return {"items": n, "field_accuracy": round(sum(accs) / max(1, n), 4),
            "exact_match": round(exact / max(1, n), 4)}


def _router(model: EdgeIntentModel, requests: list[Any], tables: dict[str, NameTable],
            ) -> dict[str, Any]:
    stages: dict[str, int] = {}
    wrong_acted = 0
    readers = {topo: IntentReader(names, edge=model) for topo, names in tables.items()}
    for r in requests:
        reader = readers[r.topology]
        want = intent_from_draft(r.draft, tables[r.topology])
        try:
            u = reader.read(r.text)
            stage = u.stage
            wrong_acted += not field_accuracy(want, u.intent)[1]
        except Clarification:
            stage = "clarify"
        except IntentParseError:
            stage = "refused"
        stages[stage] = stages.get(stage, 0) + 1
    n = len(requests)
    acted = n - stages.get("clarify", 0) - stages.get("refused", 0)
    return {"items": n, "stages": stages,
            "acted_wrong_share": round(wrong_acted / max(1, acted), 4),
            "clarify_share": round(stages.get("clarify", 0) / max(1, n), 4)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--weights", type=Path, default=SHIPPED_INTENT_WEIGHTS)
    ap.add_argument("--n", type=int, default=300, help="held-out requests per network")
    ap.add_argument("--netconfeval-batches", type=int, default=None,
                    help="score only the first N NetConfEval batches (default: all)")
    args = ap.parse_args()
    started = time.monotonic()
    model = EdgeIntentModel.load(args.weights)
    tables = corpus_name_tables()
    heldout = []
    for i, topo in enumerate(("campus", "abilene", "netconfeval")):
        heldout += generate_requests(topo, args.n, split="heldout", seed=SEED + i,
                                     table=tables[topo])
    model.read("warm up", tables["campus"])
    outcomes = score_requests(heldout, tables, _reader(model))
    held = summarize(outcomes, DEFAULT_MIN_CONFIDENCE)
    print(f"held-out phrasings ({held.items}): field {held.field_accuracy:.4f}, exact "
          f"{held.exact_match:.4f}, p50 {held.latency_p50_ms:.1f} ms, p95 "
          f"{held.latency_p95_ms:.1f} ms, ECE {held.ece:.3f}")
    hand = _handwritten(model, tables)
    print(f"hand-written paraphrases ({hand['items']}): field {hand['field_accuracy']}, "
          f"exact {hand['exact_match']}")
    nce_scores: dict[str, Any] = {"accuracy": None}
    nce_unseen: dict[str, Any] = {"accuracy": None}
    if NETCONFEVAL_FILE.is_file():
        cache: dict[str, Intent | None] = {}
        nce_scores = score_netconfeval(NETCONFEVAL_FILE, _reader(model),
                                       limit=args.netconfeval_batches, cache=cache)
        nce_unseen = score_netconfeval(NETCONFEVAL_FILE, _reader(model),
                                       limit=args.netconfeval_batches, cache=cache,
                                       only=lambda s: netconfeval_half(s.strip()) == 1)
    print(f"NetConfEval step 1, every batch: {nce_scores}")
    print(f"NetConfEval step 1, batches of never-trained sentences only: {nce_unseen}")
    sites: dict[str, Any] = {}
    for site in model.adapter_names():
        reqs = site_requests(site, 100, split="heldout", seed=SEED + 50)
        plain = summarize(score_requests(reqs, tables, _reader(model)), DEFAULT_MIN_CONFIDENCE)
        model.load_adapter(site)
        adapted = summarize(score_requests(reqs, tables, _reader(model, site)),
                            DEFAULT_MIN_CONFIDENCE)
        model.unload_adapter(site)
        sites[site] = {"global": plain.as_json(), "adapted": adapted.as_json()}
        print(f"site {site}: global field {plain.field_accuracy:.4f} -> adapted "
              f"{adapted.field_accuracy:.4f}")
    router = _router(model, heldout[: 3 * min(args.n, 100)], tables)
    print(f"router (parser, then edge): {router}")
    glob = [v["global"]["field_accuracy"] for v in sites.values()]
    adap = [v["adapted"]["field_accuracy"] for v in sites.values()]
    result: dict[str, Any] = {
        "netconfeval_accuracy": nce_scores["accuracy"],
        "netconfeval_unseen_accuracy": nce_unseen["accuracy"],
        "heldout_field_accuracy": round(held.field_accuracy, 4),
        "heldout_exact_match": round(held.exact_match, 4),
        "adapted_field_accuracy": round(sum(adap) / len(adap), 4) if adap else None,
        "global_field_accuracy": round(sum(glob) / len(glob), 4) if glob else None,
        "latency_p50_ms": round(held.latency_p50_ms, 2),
        "latency_p95_ms": round(held.latency_p95_ms, 2),
        "details": {
            "heldout": held.as_json(),
            "handwritten": hand,
            "netconfeval": nce_scores,
            "netconfeval_unseen": nce_unseen,
            "sites": sites,
            "router": router,
            "goals": GOALS,
            "model": {"weights": str(args.weights), "card": {
                k: v for k, v in model.card.items() if k not in ("losses", "settings")}},
            "seconds": round(time.monotonic() - started, 1),
        },
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
