#!/usr/bin/env bash
# Builds the drill-fleet image locally: Debian bookworm with systemd as PID 1 and the stand-in
# bot's Python dependencies (the controller's pins), but not the bot's code (provisioning
# installs that, so a drill always runs the checkout's bot).
#
#   fleet/image/build.sh               build localhost/tradeops-fleet:<tag> unless it exists
#   fleet/image/build.sh --print-tag   print localhost/tradeops-fleet:<tag> and exit
#
# <tag> is a hash of this directory's files plus requirements.txt and constraints.txt, so a
# changed recipe or pin gives a new tag and an unchanged one is never rebuilt.
# Environment: PYTHON (a CPython 3.11 with pip; default python3), DEBIAN_MIRROR, BUILD_DIR.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
repo_name=localhost/tradeops-fleet
python=${PYTHON:-python3}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
build_dir=${BUILD_DIR:-$root/build/fleet-image}

image_tag() {
  # Names and contents of every input, in a stable order.
  (cd "$root" && find fleet/image -type f ! -name '*.pyc' -print0 | sort -z \
     | xargs -0 sha256sum && sha256sum requirements.txt constraints.txt) \
    | sha256sum | cut -c1-12
}
image="$repo_name:$(image_tag)"

if [ "${1:-}" = "--print-tag" ]; then
  echo "$image"
  exit 0
fi

if podman image exists "$image"; then
  echo "fleet image $image exists (recipe unchanged)"
  exit 0
fi

# The bot's dependencies are installed with this machine's pip into the rootfs; that only
# works because bookworm's python3 is CPython 3.11 too (same cp311/abi3 wheels).
py_version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$py_version" != "3.11" ]; then
  echo "PYTHON=$python is $py_version; bookworm's python3 is 3.11 and the wheels must match" >&2
  exit 1
fi

start=$(date +%s)
rootfs="$build_dir/rootfs"
rm -rf "$build_dir"
mkdir -p "$build_dir"
trap 'rm -rf "$build_dir"' EXIT

# Packages, and why each is there:
#   systemd systemd-sysv dbus    PID 1 and systemctl (the SOP's units)
#   python3                      the bot, and Ansible's modules on the host
#   iptables                     the key-compromise egress block (SOP 3); see README for the backend
#   iproute2 iputils-ping        `ip`, the SOP's `ping -c 5 advanced-trade-ws.coinbase.com`
#   procps                       pkill -f trading_bot (SOP 3), ps
#   curl ca-certificates         the SOP's `curl https://api.coinbase.com/...`; update-ca-certificates
#   netbase                      /etc/services, /etc/protocols (iptables, getent)
#   sudo                         become: true the way production runs it
#   less                         journalctl / systemctl paging for humans in a drill
packages=systemd,systemd-sysv,dbus,python3,iptables,iproute2,iputils-ping,procps,curl
packages=$packages,ca-certificates,netbase,sudo,less

echo "debootstrap bookworm ($mirror) ..."
debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$mirror" \
  > "$build_dir/debootstrap.log" 2>&1 || { tail -40 "$build_dir/debootstrap.log" >&2; exit 1; }

echo "installing the bot's Python dependencies with $python -m pip ..."
"$python" -m pip install --quiet --disable-pip-version-check --no-compile \
  --only-binary=:all: --python-version 3.11 --implementation cp --platform manylinux_2_36_x86_64 \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform linux_x86_64 \
  --target "$rootfs/opt/trading-bot/lib" \
  -r "$root/requirements.txt" -c "$root/constraints.txt"

# Settle the rootfs for containers. What each step avoids:
#  - a machine-id baked into the image would give every host the same identity; systemd
#    creates one at first boot when the file is empty
#  - units that need hardware or a real kernel console fail noisily in a container
#  - the apt lists and docs are dead weight in a drill host
: > "$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id"
for unit in systemd-remount-fs.service getty.target console-getty.service \
            systemd-udevd.service systemd-udev-trigger.service systemd-modules-load.service \
            sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
            systemd-firstboot.service apt-daily.timer apt-daily-upgrade.timer; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
install -D -m 0644 "$here/journald.conf" "$rootfs/etc/systemd/journald.conf.d/tradeops.conf"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/doc/* \
       "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
echo "tradeops drill fleet image $image" > "$rootfs/etc/tradeops-fleet-image"

echo "importing $image ..."
tar -C "$rootfs" --numeric-owner -c . | podman import \
  --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL=SIGRTMIN+3' \
  --change 'LABEL tradeops.fleet.image=1' \
  --message "tradeops drill fleet image" - "$image" > /dev/null
echo "fleet image $image built in $(( $(date +%s) - start )) s"
