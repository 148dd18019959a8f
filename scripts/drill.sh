#!/usr/bin/env bash
# `make drill`: the monthly disaster-recovery drill, from nothing, in one command.
#   1. a fresh exchange double on 0.0.0.0 (its own CA; the fleet reaches it at the bridge gateway);
#   2. throwaway keys (primary, backup, standby) registered with it;
#   3. the drill fleet up and provisioned: bots trading on the double;
#   4. playbooks/dr_drill.yml: bots trading -> key compromise end to end -> kill switch with
#      close_all -> the drill report;
#   5. everything torn down, unless KEEP_FLEET=1 (then: make fleet-down and kill the double).
# Environment: DRILL_PORT (default 0: a free port), KEEP_FLEET, ANSIBLE_ARGS (e.g. -v).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv="$root/.venv/bin"
work="$root/build/drill"
port=${DRILL_PORT:-0}
keep=${KEEP_FLEET:-0}
export ANSIBLE_CONFIG="$root/ansible.cfg" PATH="$venv:$PATH"

rm -rf "$work/keys" "$work/records" "$work/double/state" "$work/double/ready.json"
mkdir -p "$work/double"

"$venv/exchange-double" serve --host 0.0.0.0 --port "$port" --ca-dir "$work/double/ca" \
  --state-dir "$work/double/state" --ready-file "$work/double/ready.json" > "$work/double.log" 2>&1 &
double_pid=$!
cleanup() {
  if [ "$keep" = 1 ]; then
    echo "KEEP_FLEET=1: the fleet and the double (pid $double_pid, $(cat "$work/double/ready.json" 2>/dev/null)) keep running;"
    echo "stop them with: make fleet-down; kill $double_pid"
    return
  fi
  kill "$double_pid" 2>/dev/null || true
  bash "$root/fleet/fleet.sh" down || true
}
trap cleanup EXIT

for _ in $(seq 1 150); do
  [ -s "$work/double/ready.json" ] && break
  kill -0 "$double_pid" 2>/dev/null || { echo "the exchange double did not start:"; cat "$work/double.log"; exit 1; }
  sleep 0.2
done
[ -s "$work/double/ready.json" ] || { echo "the exchange double was not ready in 30 s"; cat "$work/double.log"; exit 1; }
echo "exchange double: $(cat "$work/double/ready.json")"

started=$(date +%s)
"$venv/python" fleet/drill_vars.py --ready-file "$work/double/ready.json" --out "$work"
bash fleet/fleet.sh up 3
"$venv/ansible-playbook" -i inventories/drill fleet/provision.yml -e @"$work/fleet-vars.yml" \
  -e fleet_reset_trading_mode=true > "$work/provision.log" 2>&1 \
  || { tail -40 "$work/provision.log"; echo "provisioning failed (full log: $work/provision.log)"; exit 1; }
echo "fleet provisioned in $(( $(date +%s) - started )) s; bots trading on the double"

# shellcheck disable=SC2086  # ANSIBLE_ARGS is a list of options
TRADEOPS_RECORDS_DIR="$work/records" "$venv/ansible-playbook" -i inventories/drill playbooks/dr_drill.yml \
  -e @"$work/fleet-vars.yml" ${ANSIBLE_ARGS:-}
echo "records and the drill report: $work/records/"
