#!/usr/bin/env bash
# Run a command inside a private network namespace that has loopback only.
#
#   tests/netns.sh COMMAND [ARGS...]
#   tests/netns.sh --check     only check the current namespace (exit 97 if not loopback-only)
#
# Every test or tool run that starts a ROS 2 participant on a development or CI machine goes
# through this wrapper, so DDS discovery multicast never leaves the machine: the namespace
# gets `lo` (up, multicast on, 224.0.0.0/4 routed to it) and nothing else, and the wrapper
# refuses to run the command if any other interface is present.
# ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and ALTERMOMA_IN_NETNS=1 are exported inside.
set -euo pipefail

# Interfaces of this process's own namespace (/proc/self/net/dev is per namespace) besides lo.
other_interfaces() {
  awk -F: 'NR > 2 { gsub(/ /, "", $1); if ($1 != "lo") print $1 }' /proc/self/net/dev | tr '\n' ' '
}
if [ "${1:-}" = "--check" ]; then
  others=$(other_interfaces)
  if [ -n "$others" ]; then
    echo "netns: refusing to run: interfaces other than lo present: $others" >&2
    exit 97
  fi
  exit 0
fi
[ $# -ge 1 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }
command -v unshare >/dev/null || { echo "netns: unshare not found (apt install util-linux)" >&2; exit 2; }
command -v ip >/dev/null || { echo "netns: ip not found (apt install iproute2)" >&2; exit 2; }

SELF=$(readlink -f "$0")
UNSHARE=(unshare -n)
[ "$(id -u)" -ne 0 ] && UNSHARE=(unshare -r -n)   # rootless: a user namespace grants CAP_NET_ADMIN

exec "${UNSHARE[@]}" -- bash -c '
  set -eu
  ip link set lo up
  ip link set lo multicast on
  ip route add 224.0.0.0/4 dev lo
  "$0" --check
  export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
  export ALTERMOMA_IN_NETNS=1
  exec "$@"
' "$SELF" "$@"
