#!/usr/bin/env bash
# The drill fleet's lifecycle: podman containers with systemd as PID 1, one per trading host.
#
#   fleet/fleet.sh up [N]     start drill-bot-1..N (default 3) from the fleet image; wait for systemd
#   fleet/fleet.sh down       remove every container labelled as ours (and nothing else)
#   fleet/fleet.sh status     list ours
#
# Environment: FLEET_IMAGE (default: the tag fleet/image/build.sh computes), FLEET_PREFIX
# (default drill-bot). Containers carry the label tradeops.fleet=drill: `down` removes only those.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
prefix=${FLEET_PREFIX:-drill-bot}
label=tradeops.fleet=drill

# The machine as the containers see it: the default bridge's gateway (10.88.0.1 on podman's
# default network). The exchange double listens on 0.0.0.0 there.
gateway() {
  local gw
  gw=$(podman network inspect podman --format '{{range .Subnets}}{{.Gateway}}{{end}}' 2>/dev/null || true)
  echo "${gw:-10.88.0.1}"
}

up() {
  local count=${1:-3} image=${FLEET_IMAGE:-$(bash "$here/image/build.sh" --print-tag)} gw started=()
  podman image exists "$image" || { echo "no image $image: run make fleet-image" >&2; exit 1; }
  gw=$(gateway)
  local start=$(date +%s%N)
  for i in $(seq 1 "$count"); do
    local name="$prefix-$i"
    if [ "$(podman container inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" = "true" ]; then
      if [ "$(podman container inspect -f '{{.ImageName}}' "$name")" != "$image" ]; then
        echo "$name runs an older image; make fleet-down first to move to $image" >&2
      fi
      continue
    fi
    podman rm -f "$name" > /dev/null 2>&1 || true
    # --systemd=always: systemd is PID 1 (the SOP's units are real units).
    # NET_ADMIN/NET_RAW: the key-compromise runbook's iptables egress block inside the host.
    # ulimits: this machine's root cannot raise RLIMIT_NOFILE/NPROC to podman's default.
    # --add-host: the Coinbase names point at the exchange double on the machine.
    podman run -d --name "$name" --hostname "$name" --label "$label" \
      --systemd=always --cap-add NET_ADMIN --cap-add NET_RAW \
      --ulimit nofile=16384:16384 --ulimit nproc=16384:16384 \
      --add-host "api.coinbase.com:$gw" \
      --add-host "advanced-trade-ws.coinbase.com:$gw" \
      --add-host "advanced-trade-ws-user.coinbase.com:$gw" \
      "$image" /sbin/init > /dev/null
    started+=("$name")
  done
  for name in "${started[@]}"; do
    # "degraded" still means systemd is up and can run units; report it, don't fail on it.
    local state
    state=$(podman exec "$name" timeout 60 systemctl is-system-running --wait 2>/dev/null || true)
    case "$state" in
      running) ;;
      degraded) echo "$name: systemd is degraded: $(podman exec "$name" systemctl --failed --no-legend --plain | awk '{print $1}' | xargs)" >&2 ;;
      *) echo "$name: systemd did not come up (state: ${state:-none})" >&2; exit 1 ;;
    esac
  done
  local ms=$(( ($(date +%s%N) - start) / 1000000 ))
  printf 'fleet up: %d host(s) (%d started) from %s in %d.%03d s; the machine is %s from inside\n' \
    "$count" "${#started[@]}" "$image" $((ms / 1000)) $((ms % 1000)) "$gw"
}

down() {
  local ids
  # Ours (the label) with this prefix only: a test session with another FLEET_PREFIX keeps its hosts.
  ids=$(podman ps -a -q --filter "label=$label" --filter "name=^$prefix-[0-9]+\$")
  if [ -n "$ids" ]; then
    # systemd stops on SIGRTMIN+3 (the image's STOPSIGNAL); give it a few seconds.
    podman rm -f -t 5 $ids > /dev/null
    echo "fleet down: removed $(echo "$ids" | wc -w) container(s)"
  else
    echo "fleet down: nothing to remove"
  fi
}

status() {
  podman ps -a --filter "label=$label" --filter "name=^$prefix-[0-9]+\$" --format '{{.Names}}\t{{.Status}}\t{{.Image}}'
}

case "${1:-}" in
  up) up "${2:-3}" ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up [N] | down | status" >&2; exit 2 ;;
esac
