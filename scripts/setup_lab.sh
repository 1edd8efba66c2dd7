#!/usr/bin/env bash
# What the Mininet lab needs on a Debian machine (as root; only what is missing): Debian's mininet
# (for mnexec), Linux bridges, FRR, net-snmp's snmpd, nftables, iproute2's tc, iperf3, ethtool.
# No Open vSwitch: the lab uses Linux bridges, so no kernel OVS module is needed. Safe to run again.
set -euo pipefail
need=()
command -v mnexec >/dev/null 2>&1 || need+=(mininet)
command -v brctl >/dev/null 2>&1 || need+=(bridge-utils)
command -v ping >/dev/null 2>&1 || need+=(iputils-ping)
command -v ethtool >/dev/null 2>&1 || need+=(ethtool)
command -v iperf3 >/dev/null 2>&1 || need+=(iperf3)
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v snmpd >/dev/null 2>&1 || [ -x /usr/sbin/snmpd ] || need+=(snmpd)
command -v snmpget >/dev/null 2>&1 || need+=(snmp)
[ -x /usr/lib/frr/ospfd ] || need+=(frr)
command -v tc >/dev/null 2>&1 || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
echo "lab packages ready"
