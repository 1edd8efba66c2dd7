"""Intent-understanding benchmark: NetConfEval step 1 and a held-out paraphrase set.

    .venv/bin/python benchmarks/intents.py --json OUT

NetConfEval: every batch of step_1_spec_translation.jsonl through the controlled-language parser
and the NetConfEval exporter, scored with NetConfEval's metric (mean per-batch share of expected
requirements present). Paraphrases: benchmarks/data/paraphrases.jsonl, written before the parser
was tuned and not used to tune it; an item counts when the parsed expectations equal the expected
ones exactly (as a multiset) and the priority matches, or, for bad input, when the parser refuses.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from netgpt.errors import IntentParseError  # noqa: E402
from netgpt.intents import netconfeval as nce  # noqa: E402
from netgpt.intents.model import Expectation  # noqa: E402
from netgpt.intents.names import NameTable  # noqa: E402
from netgpt.intents.parser import parse_intent  # noqa: E402
from netgpt.sim_networks.topology import build_topology  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "intents" / "netconfeval" / "step_1_spec_translation.jsonl"
PARAPHRASES = Path(__file__).parent / "data" / "paraphrases.jsonl"
_EXPECTATION: TypeAdapter[Any] = TypeAdapter(Expectation)


def _endpoint(short: str) -> dict[str, Any]:
    if short == "any":
        return {"kind": "any"}
    kind, _, name = short.partition(":")
    return {"kind": kind, "prefix": name} if kind == "prefix" else {"kind": kind, "name": name}


def expand(raw: dict[str, Any]) -> Any:
    """A paraphrase-file expectation (short endpoints 'group:x', ports '23') as the model."""
    out = dict(raw)
    for key in ("source", "destination", "scope"):
        if isinstance(out.get(key), str):
            out[key] = _endpoint(out[key])
    if "traffic" in out:
        traffic = dict(out["traffic"])
        for key in ("source", "destination"):
            traffic[key] = _endpoint(traffic.get(key, "any"))
        if "ports" in traffic:
            lo, _, hi = str(traffic["ports"]).partition("-")
            traffic["ports"] = {"lower": int(lo), "upper": int(hi or lo)}
        out["traffic"] = traffic
    return _EXPECTATION.validate_python(out)


def netconfeval(path: Path) -> dict[str, Any]:
    rows = nce.load_step1(path)
    names = nce.name_table(r.expected for r in rows)
    scores, times, refused = [], [], 0
    for r in rows:
        start = time.perf_counter()
        try:
            predicted = nce.translate_step1(r.human_language, names)
        except IntentParseError:
            refused += 1
            predicted = {}
        times.append(time.perf_counter() - start)
        scores.append(nce.score_step1(r.expected, predicted))
    return {
        "batches": len(rows),
        "accuracy": statistics.fmean(s.accuracy for s in scores),
        "requirements": sum(s.expected for s in scores),
        "wrong": sum(s.wrong for s in scores),
        "refused_batches": refused,
        "sentences": sum(r.human_language.count(".") for r in rows),
        "batch_p50_ms": statistics.median(times) * 1000,
    }


def paraphrases(path: Path) -> dict[str, Any]:
    items = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    tables: dict[str, NameTable] = {}
    if DATA.exists():
        tables["netconfeval"] = nce.name_table(r.expected for r in nce.load_step1(DATA))
    failures, correct, times = [], 0, []
    for item in items:
        topo = item["topology"]
        if topo not in tables:
            tables[topo] = NameTable.from_topology(build_topology(topo))
        start = time.perf_counter()
        try:
            intent = parse_intent(item["text"], tables[topo])
            got: Any = intent
        except IntentParseError as exc:
            got = exc
        times.append(time.perf_counter() - start)
        if item.get("expected_error"):
            ok = isinstance(got, IntentParseError)
        elif isinstance(got, IntentParseError):
            ok = False
        else:
            want = sorted(e.model_dump_json() for e in map(expand, item["expected"]))
            have = sorted(e.model_dump_json() for e in got.expectations)
            ok = want == have and got.priority == item.get("priority", 5)
        correct += ok
        if not ok:
            failures.append({"id": item["id"], "text": item["text"],
                             "got": str(got) if isinstance(got, IntentParseError)
                             else [e.model_dump(mode="json") for e in got.expectations]})
    return {"items": len(items), "correct": correct, "accuracy": correct / len(items),
            "failures": failures, "per_text_p50_ms": statistics.median(times) * 1000}


def sentence_p50_ms(path: Path) -> float:
    rows = nce.load_step1(path)
    names = nce.name_table(r.expected for r in rows)
    sentences = [s for r in rows[:300] for s in r.human_language.split(". ") if s]
    times = []
    for s in sentences:
        start = time.perf_counter()
        with contextlib.suppress(IntentParseError):
            parse_intent(s, names)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    result: dict[str, Any] = {
        "netconfeval_accuracy": None,
        "paraphrase_accuracy": None,
        "parse_p50_ms": None,
        "intent_to_verified_p50_s": None,
        "intent_to_verified_p95_s": None,
        "intent_to_verified_note": "agent graph not built yet; the lead fills these in",
    }
    if args.data.exists():
        nce_result = netconfeval(args.data)
        result["netconfeval_accuracy"] = nce_result["accuracy"]
        result["netconfeval"] = nce_result
        result["parse_p50_ms"] = sentence_p50_ms(args.data)
    else:
        result["netconfeval_note"] = f"{args.data} not found"
    para = paraphrases(PARAPHRASES)
    result["paraphrase_accuracy"] = para["accuracy"]
    result["paraphrases"] = para
    rows = [
        ("NetConfEval step-1 accuracy (own metric)", result["netconfeval_accuracy"]),
        ("paraphrase accuracy (held out)", result["paraphrase_accuracy"]),
        ("parse p50 per sentence (ms)", result["parse_p50_ms"]),
        ("intent -> verified p50 / p95 (s)", "not measured yet"),
    ]
    for name, value in rows:
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"{name:<45} {shown}")
    for f in para["failures"]:
        print(f"  paraphrase miss {f['id']}: {f['text']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
