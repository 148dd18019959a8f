#!/usr/bin/env bash
# Machine set-up for the drill fleet and the tests (Debian 12, run as root).
# Idempotent: safe to run again. See docs/architecture.md and the team's test-fleet notes.
set -euo pipefail

packages=(podman runc crun containernetworking-plugins iptables debootstrap systemd-container
          uidmap slirp4netns fuse-overlayfs python3-venv rsync git make shellcheck)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# This machine's root lacks CAP_SYS_RESOURCE (podman's default ulimits fail) and has hybrid
# cgroups (crun refuses them; runc works).
conf=/etc/containers/containers.conf
want='# managed by tradeops scripts/setup-machine.sh
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=16384:16384"]

[engine]
runtime = "runc"'
mkdir -p /etc/containers
if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
  [ -f "$conf" ] && cp "$conf" "$conf.before-tradeops"
  printf '%s\n' "$want" > "$conf"
fi
echo "machine ready: $(podman --version)"
