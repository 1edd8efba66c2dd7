#!/usr/bin/env bash
# Set up NetGPT on a fresh Debian machine: system packages (as root, only what is missing) and
# a virtual environment at .venv/ in the repository root. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's net-snmp command-line tools: the integration tests talk to the devices with them too.
missing=()
command -v snmpget >/dev/null 2>&1 || missing+=(snmp)
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then missing+=(python3-venv); fi
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch first, alone: its pin must take the local CPU wheel; everything else resolves under it.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -c scripts/constraints.txt -e ".[dev,lab]"
echo "setup done: $(.venv/bin/netgpt --help >/dev/null && echo 'netgpt command ready in .venv/bin')"
