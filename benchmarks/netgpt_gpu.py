"""GPU resource figures: full fine-tuning against LoRA (peak memory, step time), and decode speed.

Usage: python benchmarks/netgpt_gpu.py --json OUT [--shapes llama-7b,gpt2-base] [--seq 512]
       [--batch 1] [--steps N] [--warmup N] [--decode-shapes llama-7b] [--decode-batches 1,16]
       [--decode-tokens N] [--prompt-tokens N] [--bandwidth B/s] [--no-compile] [--no-foreach]
       [--budget-s S]

Everything is measured with the project's code, :mod:`netgpt.cloud_models.finetune`, on models
of named shapes built with random weights straight on the GPU (memory and speed do not depend on
the weights' values):

- Fine-tuning, per shape, at ``--seq`` x ``--batch``: ``full`` (every weight in float32, fused
  AdamW), ``full_foreach`` (the same with torch's default foreach AdamW, as plain transformers
  code gets it: it keeps full-size temporaries; ``--no-foreach`` leaves it out) and ``lora``
  (rank 8 on q/v for Llama, c_attn for GPT-2, over a bfloat16 base; float32 adapters). Peak
  memory is ``torch.cuda.max_memory_allocated`` (and ``max_memory_reserved``) over the warm-up
  and timed steps, after the model is built; GB are 1e9 bytes. Step time is the median.
- Decode, per ``--decode-shapes``: greedy ``generate`` in bfloat16, exactly ``--decode-tokens``
  new tokens, ms per decode step against the memory-bandwidth limit (weights + the mean KV
  cache read per step, over ``--bandwidth``, default the H200's 4.8e12 B/s). ``decode`` is plain
  ``generate``; ``decode_static_compile`` is ``cache_implementation="static"``, which makes
  transformers compile the decode step (``--no-compile`` leaves it out; a failure is recorded).

Each measurement runs in its own Python process (a clean allocator for the 7B full fine-tune;
an out-of-memory or a failure is recorded in the JSON, not fatal), within ``--budget-s``
seconds in all. Without CUDA only the ``tiny`` shapes run (a CPU smoke test). ``reference``
in the JSON holds the issue's plain transformers + peft numbers and the paper's, for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netgpt.cloud_models.finetune import (
    H200_BANDWIDTH,
    SHAPES,
    FinetuneMethod,
    measure_decode,
    measure_finetune,
)

CPU_SHAPES = ("tiny", "tiny-gpt2")
REFERENCE = {
    "issue_plain_transformers_peft": {
        "note": "issue 8: plain transformers + peft on the H200, seq 512, batch 1",
        "llama-7b_full_fp32_adamw_peak_gb": 134.8,
        "llama-7b_lora_r8_qv_bf16_peak_gb": 27.3,
        "llama-7b_decode_batch_1_ms_per_step": 61.5,
        "llama-7b_decode_batch_1_limit_ms": 2.8,
    },
    "paper": {"llama-7b_full_peak_gb": 112.0, "llama-7b_lora_peak_gb": 28.0},
}
MARK = "NETGPT_GPU_RESULT "


# -- one measurement (in a child process) ---------------------------------------------------


def _device_info() -> dict[str, Any]:
    import peft
    import torch
    import transformers

    info: dict[str, Any] = {
        "python": sys.version.split()[0], "torch": torch.__version__,
        "transformers": transformers.__version__, "peft": peft.__version__,
        "cuda": torch.cuda.is_available(),
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", ""),
    }
    if not torch.cuda.is_available():
        info["name"] = "cpu"
        return info
    props = torch.cuda.get_device_properties(0)
    info.update(name=props.name, total_memory_bytes=props.total_memory,
                multiprocessors=props.multi_processor_count)
    n = 1 << 30  # 2 GiB of bf16: copy read + write, well past the L2
    a = torch.empty(n, dtype=torch.bfloat16, device="cuda").normal_()
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    torch.cuda.synchronize()
    reps = 20
    t0 = time.perf_counter()
    for _ in range(reps):
        b.copy_(a)
    torch.cuda.synchronize()
    info["copy_bandwidth_bytes_per_s"] = 2 * a.numel() * a.element_size() * reps / (
        time.perf_counter() - t0)
    return info


def _run_job(job: dict[str, Any]) -> dict[str, Any]:
    if job["job"] == "device":
        return _device_info()
    if job["job"] == "finetune":
        method = FinetuneMethod(kind=job["method"], adamw=job.get("adamw", "auto"),
                                rank=job.get("rank", 8), alpha=job.get("alpha", 16))
        res = measure_finetune(job["shape"], method, seq=job["seq"], batch=job["batch"],
                               warmup=job["warmup"], steps=job["steps"])
        out = asdict(res)
        if res.peak_allocated_bytes is not None and res.peak_reserved_bytes is not None:
            out["peak_allocated_gb"] = round(res.peak_allocated_bytes / 1e9, 2)
            out["peak_reserved_gb"] = round(res.peak_reserved_bytes / 1e9, 2)
        return out
    if job["job"] == "decode":
        results = measure_decode(job["shape"], batches=job["batches"],
                                 prompt_tokens=job["prompt_tokens"],
                                 new_tokens=job["new_tokens"], repeats=job["repeats"],
                                 bandwidth=job["bandwidth"], path=job["path"])
        return {f"batch_{r.batch}": asdict(r) for r in results}
    raise SystemExit(f"unknown job {job['job']!r}")


def _worker(spec: str) -> int:
    import torch

    job = json.loads(spec)
    t0 = time.perf_counter()
    try:
        out = _run_job(job)
    except torch.OutOfMemoryError as exc:
        out = {"error": "out of memory", "detail": str(exc).splitlines()[0]}
    except Exception as exc:  # recorded in the JSON: one failed measurement stops no other
        out = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    print(MARK + json.dumps(out), flush=True)
    return 0


# -- the run (parent) -----------------------------------------------------------------------


class Runner:
    """Runs jobs in child processes within one time budget; records failures."""

    def __init__(self, budget_s: float) -> None:
        self.deadline = time.monotonic() + budget_s

    def __call__(self, job: dict[str, Any], cap_s: float) -> dict[str, Any]:
        left = self.deadline - time.monotonic()
        if left < 20:
            return {"error": "skipped: the time budget (--budget-s) ran out"}
        timeout = min(cap_s, left)
        print(f"-- {json.dumps(job)} (timeout {timeout:.0f} s)", file=sys.stderr, flush=True)
        env = dict(os.environ)
        env.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
        try:
            proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)],
                                  stdout=subprocess.PIPE, text=True, timeout=timeout, env=env,
                                  check=False)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f} s"}
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith(MARK):
                return dict(json.loads(line[len(MARK):]))
        return {"error": f"worker exited {proc.returncode} with no result",
                "stdout_tail": proc.stdout[-1000:]}


def _gb(value: Any) -> str:
    return f"{value / 1e9:7.2f}" if isinstance(value, int | float) else f"{'-':>7}"


def finetune_table(finetune: dict[str, dict[str, dict[str, Any]]], seq: int, batch: int) -> str:
    lines = [f"fine-tuning, seq {seq}, batch {batch} (GB = 1e9 bytes; peak = max allocated)",
             f"{'shape':10} {'method':13} {'base':9} {'adamw':8} {'trainable':>13} "
             f"{'total':>14} {'peak GB':>8} {'reserved':>8} {'step ms':>9}"]
    for shape, methods in finetune.items():
        for name, r in methods.items():
            if "error" in r:
                lines.append(f"{shape:10} {name:13} {r['error']}")
                continue
            lines.append(
                f"{shape:10} {name:13} {r['base_dtype']:9} {r['adamw']:8} "
                f"{r['trainable_params']:13,} {r['total_params']:14,} "
                f"{_gb(r['peak_allocated_bytes']):>8} {_gb(r['peak_reserved_bytes']):>8} "
                f"{r['step_ms']:9.1f}")
    return "\n".join(lines)


def decode_table(title: str, decode: dict[str, dict[str, dict[str, Any]]]) -> str:
    lines = [title, f"{'shape':10} {'batch':>5} {'ms/step':>9} {'tok/s':>9} {'limit ms':>9} "
             f"{'weights-only ms':>15} {'x limit':>8}"]
    for shape, batches in decode.items():
        if "error" in batches:
            lines.append(f"{shape:10} {batches['error']}")
            continue
        for r in batches.values():
            if not isinstance(r, dict):
                continue
            lines.append(f"{shape:10} {r['batch']:5} {r['ms_per_step']:9.2f} "
                         f"{r['tokens_per_s']:9.0f} {r['limit_ms']:9.2f} "
                         f"{r['weights_limit_ms']:15.2f} {r['ratio']:8.1f}")
    return "\n".join(lines)


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--shapes", default="llama-7b,gpt2-base", help="fine-tuning shapes")
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps (optimizer state)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps")
    ap.add_argument("--decode-shapes", default="llama-7b", help="decode shapes ('' for none)")
    ap.add_argument("--decode-batches", default="1,16")
    ap.add_argument("--decode-tokens", type=int, default=128, help="new tokens per generate")
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--decode-repeats", type=int, default=3)
    ap.add_argument("--bandwidth", type=float, default=H200_BANDWIDTH,
                    help="memory bandwidth, bytes/s (default the H200's 4.8e12)")
    ap.add_argument("--no-compile", action="store_true", help="leave out the compiled decode")
    ap.add_argument("--no-foreach", action="store_true", help="leave out full_foreach")
    ap.add_argument("--budget-s", type=float, default=540.0, help="wall time for everything")
    ap.add_argument("--job-timeout-s", type=float, default=300.0, help="cap per measurement")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return _worker(args.worker)

    import torch

    shapes, decode_shapes = _csv(args.shapes), _csv(args.decode_shapes)
    for name in shapes + decode_shapes:
        if name not in SHAPES:
            print(f"unknown shape {name!r}: use {', '.join(SHAPES)}", file=sys.stderr)
            return 2
    if not torch.cuda.is_available() and set(shapes + decode_shapes) - set(CPU_SHAPES):
        print("no CUDA device: this benchmark measures GPU memory and speed. Run it on a GPU, "
              "or smoke-test on CPU with --shapes tiny --decode-shapes tiny", file=sys.stderr)
        return 2
    batches = [int(b) for b in _csv(args.decode_batches)]
    run = Runner(args.budget_s)
    result: dict[str, Any] = {
        "device": run({"job": "device"}, 120),
        "settings": {"seq": args.seq, "batch": args.batch, "warmup": args.warmup,
                     "steps": args.steps, "lora": {"rank": 8, "alpha": 16},
                     "decode_batches": batches, "decode_new_tokens": args.decode_tokens,
                     "decode_prompt_tokens": args.prompt_tokens,
                     "decode_repeats": args.decode_repeats, "bandwidth_bytes_per_s":
                     args.bandwidth},
        "finetune": {}, "decode": {}, "reference": REFERENCE,
    }
    print(f"device: {result['device'].get('name')}", flush=True)

    def save() -> None:
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")

    variants = [("lora", "lora", "auto"), ("full", "full", "auto")]
    if not args.no_foreach:
        variants.append(("full_foreach", "full", "foreach"))
    for shape in shapes:
        per: dict[str, Any] = result["finetune"].setdefault(shape, {})
        for key, kind, adamw in variants:
            per[key] = run({"job": "finetune", "shape": shape, "method": kind, "adamw": adamw,
                            "seq": args.seq, "batch": args.batch, "warmup": args.warmup,
                            "steps": args.steps}, args.job_timeout_s)
            save()
    paths = [("decode", "eager")] + ([] if args.no_compile else
                                     [("decode_static_compile", "static-compile")])
    for key, path in paths:
        for shape in decode_shapes:
            result.setdefault(key, {})[shape] = run(
                {"job": "decode", "shape": shape, "path": path, "batches": batches,
                 "prompt_tokens": args.prompt_tokens, "new_tokens": args.decode_tokens,
                 "repeats": args.decode_repeats, "bandwidth": args.bandwidth},
                args.job_timeout_s)
            save()

    print(finetune_table(result["finetune"], args.seq, args.batch))
    limit = (f"limit = (weights + mean KV read) / {args.bandwidth / 1e12:.2f} TB/s; bf16, greedy, "
             f"prompt {args.prompt_tokens}, {args.decode_tokens} new tokens")
    print(decode_table(f"decode, plain generate ({limit})", result["decode"]))
    if "decode_static_compile" in result:
        print(decode_table("decode, static cache + torch.compile",
                           result["decode_static_compile"]))
    print(f"reference: {json.dumps(REFERENCE)}")
    save()
    if args.json:
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
