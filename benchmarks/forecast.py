"""Traffic-forecasting benchmark: the GPT-2 forecaster (global and site-adapted), its int8 copy
and the baselines on the shared series, plus CPU latency.

Usage: python benchmarks/forecast.py [--json OUT] [--weights DIR] [--data-dir DIR]
                                     [--stride N] [--threads N] [--skip-int8]

Protocol (netgpt.edge_models.evaluation): each file's longest outage-free stretch, last 20% as
test, rolling origins, pooled MAE / RMSE / NMAE (sum|err| / sum|y|) of the median at h=1 and
h=12. JSON layout: {dataset: {"h1"|"h12": {method: {"mae", "rmse", "nmae"}}}, "latency_ms": {...},
"int8": {dataset: {"h1"|"h12": {...}}}, "reference": {dataset: {"h1"|"h12": {"hindsight_linear":
{...}}}}, "goals": {...}, "context": {...}}.

"reference" is not a method: the best linear reading of the forecaster's inputs plus the time of
day, fitted on the test rows themselves (netgpt.edge_models.hindsight). It tells how much of the
test period such inputs explain; "goals" compares it with the 15% goal.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from netgpt.edge_models.adapters import SiteAdaptedForecaster
from netgpt.edge_models.baselines import BASELINES, make_baseline
from netgpt.edge_models.evaluation import (
    SeriesData,
    chronological_split,
    load_series,
    longest_segment,
)
from netgpt.edge_models.forecasting import (
    METHODS,
    load_forecaster,
    measure_latency,
    score_data,
)
from netgpt.edge_models.gpt_forecaster import GPTForecaster
from netgpt.edge_models.hindsight import hindsight_linear
from netgpt.edge_models.training import SHARED_FILES, default_data_dir, default_weights_dir

GOAL_H12_GAIN = 0.15  # NMAE at h=12 at least 15% below the best baseline
N_LINKS = 30  # directed links of the 12-node network


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def table(dataset: str, metrics: dict, int8: dict | None) -> str:
    lines = [f"\n{dataset}"]
    lines.append(f"{'method':22s} {'h1 NMAE':>9s} {'h12 NMAE':>9s} {'h1 MAE':>10s} {'h12 MAE':>10s}"
                 f" {'h12 RMSE':>10s}")
    rows = list(metrics["h1"])
    for m in rows:
        a, b = metrics["h1"][m], metrics["h12"][m]
        lines.append(f"{m:22s} {a['nmae']:9.4f} {b['nmae']:9.4f} {a['mae']:10.3f} {b['mae']:10.3f}"
                     f" {b['rmse']:10.3f}")
    if int8:
        a, b = int8["h1"], int8["h12"]
        lines.append(f"{'forecaster (int8)':22s} {a['nmae']:9.4f} {b['nmae']:9.4f} {a['mae']:10.3f}"
                     f" {b['mae']:10.3f} {b['rmse']:10.3f}")
    return "\n".join(lines)


def goals(metrics: dict, reference: dict | None = None) -> dict:
    out: dict = {}
    for h in ("h1", "h12"):
        base = {m: v["nmae"] for m, v in metrics[h].items() if m in BASELINES}
        best_name = min(base, key=base.__getitem__)
        for m in ("forecaster", "forecaster_adapted"):
            gain = 1.0 - metrics[h][m]["nmae"] / base[best_name]
            out[f"{h}_{m}_gain_vs_best_baseline"] = round(gain, 4)
        out[f"{h}_best_baseline"] = best_name
        if reference is not None:
            ref = reference[h]["hindsight_linear"]["nmae"]
            gain = 1.0 - ref / base[best_name]
            out[f"{h}_hindsight_linear_gain_vs_best_baseline"] = round(gain, 4)
        if h == "h12":
            out["h12_goal_nmae"] = round(base[best_name] * (1.0 - GOAL_H12_GAIN), 4)
    out["h12_goal_met"] = max(out["h12_forecaster_gain_vs_best_baseline"],
                              out["h12_forecaster_adapted_gain_vs_best_baseline"]) >= GOAL_H12_GAIN
    out["h1_no_worse_than_best_baseline"] = max(
        out["h1_forecaster_gain_vs_best_baseline"],
        out["h1_forecaster_adapted_gain_vs_best_baseline"],
    ) >= 0.0
    return out


def latency(weights: Path, data_dir: Path, repeats: int, skip_int8: bool) -> dict:
    seg, _ = longest_segment(load_series(data_dir / SHARED_FILES["abilene"], name="abilene"))
    fp32 = load_forecaster(weights)
    rows = fp32.lookback(seg.step_s)
    cols = list(range(0, seg.values.shape[1], max(1, seg.values.shape[1] // N_LINKS)))[:N_LINKS]
    hist = seg.values[-rows:, cols]
    names = [seg.series[c] for c in cols]
    out: dict = {"series": len(cols), "history_rows": rows, "threads": torch.get_num_threads()}
    out["forecaster"] = measure_latency(fp32, hist, 12, series=names, repeats=repeats)
    adapted = SiteAdaptedForecaster.from_weights(GPTForecaster.load(weights), weights)
    out["forecaster_adapted"] = measure_latency(adapted, hist, 12, series=names, repeats=repeats)
    out["forecaster_adapted"]["sites_in_call"] = len({adapted.site_of.get(n) for n in names})
    if not skip_int8:
        int8 = load_forecaster(weights, int8=True)
        out["forecaster_int8"] = measure_latency(int8, hist, 12, series=names, repeats=repeats)
    for name in BASELINES:
        method = make_baseline(name)
        method.fit(seg.values[:2000, cols], series=names)
        long_hist = seg.values[-method.lookback(seg.step_s) :, cols]
        out[name] = measure_latency(method, long_hist, 12, series=names, repeats=repeats)
    out["all_links_12_node"] = {
        "fp32_ms": out["forecaster"]["median_ms"],
        "int8_ms": out.get("forecaster_int8", {}).get("median_ms"),
        "adapted_fp32_ms": out["forecaster_adapted"]["median_ms"],
        "goal_ms": 100.0,
    }
    return out


def reference_scores(data: SeriesData) -> dict:
    """The hindsight-linear reference on the benchmark's test rows, in the methods' layout."""
    seg, _ = longest_segment(data)
    fits = hindsight_linear(seg, split=chronological_split(seg.n_time, 0.2), horizons=(1, 12))
    return {f"h{h}": {"hindsight_linear": {"mae": f.score.mae, "rmse": f.score.rmse,
                                           "nmae": f.score.nmae}} for h, f in fits.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--weights", type=Path, default=None, help="weights folder [package's]")
    ap.add_argument("--data-dir", type=Path, default=None, help="shared data [../shared/data]")
    ap.add_argument("--stride", type=int, default=1, help="score every N-th origin (1: all)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--repeats", type=int, default=30, help="latency repeats")
    ap.add_argument("--skip-int8", action="store_true", help="leave the int8 model out")
    ap.add_argument("--skip-scores", action="store_true", help="latency only (seconds)")
    args = ap.parse_args()
    torch.set_num_threads(max(1, args.threads))
    weights = args.weights or default_weights_dir()
    data_dir = args.data_dir or default_data_dir()
    result: dict = {}
    int8_all: dict = {}
    goal_all: dict = {}
    reference: dict = {}
    context: dict = {"stride": args.stride, "threads": args.threads, "weights": str(weights),
                     "eval_seconds": {}, "notes": {}}
    result["latency_ms"] = latency(weights, data_dir, args.repeats, args.skip_int8)
    lat = result["latency_ms"]
    print(f"latency, {lat['series']} series, {lat['threads']} thread(s): fp32 "
          f"{lat['forecaster']['median_ms']:.1f} ms (p90 {lat['forecaster']['p90_ms']:.1f}), "
          f"adapted {lat['forecaster_adapted']['median_ms']:.1f} ms"
          + (f", int8 {lat['forecaster_int8']['median_ms']:.1f} ms" if "forecaster_int8" in lat
             else ""), flush=True)
    for key, rel in ([] if args.skip_scores else SHARED_FILES.items()):
        path = data_dir / rel
        if not path.is_file():
            print(f"missing {path}: pass --data-dir", file=sys.stderr)
            return 2
        data = load_series(path, name=key)
        t0 = time.perf_counter()
        scores = score_data(data, weights_dir=weights, methods=METHODS, stride=args.stride,
                            progress=lambda m: print(m, file=sys.stderr, flush=True))
        metrics = scores.metrics()
        result[key] = metrics
        context["eval_seconds"][key] = {m: round(s.seconds, 2) for m, s in scores.methods.items()}
        context["notes"][key] = scores.notes
        if not args.skip_int8:
            q = score_data(data, weights_dir=weights, methods=("forecaster",), stride=args.stride,
                           int8=True)
            int8_all[key] = {h: v["forecaster"] for h, v in q.metrics().items()}
            int8_all[key]["relative_h12_nmae_change"] = round(
                int8_all[key]["h12"]["nmae"] / metrics["h12"]["forecaster"]["nmae"] - 1.0, 4)
        reference[key] = reference_scores(data)
        goal_all[key] = goals(metrics, reference[key])
        print(table(key, metrics, int8_all.get(key)))
        ref = reference[key]
        print(f"{'hindsight linear (ref)':22s} {ref['h1']['hindsight_linear']['nmae']:9.4f} "
              f"{ref['h12']['hindsight_linear']['nmae']:9.4f}   fitted on the test rows")
        print(f"  vs best baseline: {goal_all[key]}")
        print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    if int8_all:
        result["int8"] = int8_all
    if reference:
        result["reference"] = reference
    result["goals"] = goal_all
    training = weights / "training.json"
    context["weights_bytes"] = {
        "global": (weights / "model.safetensors").stat().st_size,
        "adapters_total": dir_size(weights / "adapters"),
    }
    if training.is_file():
        meta = json.loads(training.read_text())
        keys = ("total_seconds", "global_seconds", "global_steps", "threads", "seed")
        context["training"] = {k: meta.get(k) for k in keys}
    result["context"] = context
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
