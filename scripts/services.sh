#!/usr/bin/env bash
# Starts and stops, on 127.0.0.1 only, the real services the integration tests talk to.
#   bash scripts/services.sh up [NAME...]     start (idempotent; installs what is missing)
#   bash scripts/services.sh down [NAME...]   stop by PID (never by name)
#   bash scripts/services.sh env              print the test environment (export lines)
# Each service is a file scripts/services/NAME.sh defining svc_NAME_up, svc_NAME_down and
# svc_NAME_env; state (pids, logs, data) lives in .services/ at the project root.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="$ROOT/.services"
mkdir -p "$STATE"
export ROOT STATE

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }
# wait_for DESCRIPTION SECONDS COMMAND...: retries COMMAND once a second, bounded.
wait_for() {
  local what="$1" secs="$2"; shift 2
  local i
  for ((i = 0; i < secs; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  die "$what did not become ready within ${secs}s (logs in $STATE)"
}
# stop_pidfile FILE: stops the process whose PID is in FILE (TERM, then KILL after 15 s).
stop_pidfile() {
  local f="$1" pid i
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 15; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}
running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
# apt_install_no_start PACKAGE...: installs Debian packages without letting their maintainer
# scripts start the packaged daemons (which would listen on every interface, e.g. epmd on
# 0.0.0.0:4369 or Alertmanager on :9093): a policy-rc.d that says "101: not allowed" meanwhile.
apt_install_no_start() {
  local policy=/usr/sbin/policy-rc.d created=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created=1; fi
  if [ ! -f "$STATE/.apt-updated" ]; then apt-get update -qq >&2 || { [ $created = 1 ] && rm -f "$policy"; die "apt-get update failed"; }; touch "$STATE/.apt-updated"; fi
  local rc=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "$@" >&2 || rc=$?
  [ $created = 1 ] && rm -f "$policy"
  [ $rc = 0 ] || die "apt-get install $* failed"
}
# shellcheck source=lib/packaged-units.sh
source "$ROOT/scripts/lib/packaged-units.sh"
export -f log die wait_for stop_pidfile running apt_install_no_start enabled_packaged_units disable_packaged_units warn_packaged_units

services=()
for f in "$ROOT"/scripts/services/*.sh; do
  [ -e "$f" ] || continue
  # shellcheck source=/dev/null
  source "$f"
  services+=("$(basename "$f" .sh)")
done

cmd="${1:-}"; shift || true
selected=("$@")
[ ${#selected[@]} -gt 0 ] || selected=("${services[@]}")

case "$cmd" in
  up)
    for s in "${selected[@]}"; do log "starting $s"; "svc_${s}_up"; done
    log "up: ${selected[*]:-none}"
    ;;
  down)
    for ((i = ${#selected[@]} - 1; i >= 0; i--)); do s="${selected[$i]}"; log "stopping $s"; "svc_${s}_down" || true; done
    ;;
  env)
    for s in "${selected[@]}"; do "svc_${s}_env"; done
    ;;
  *)
    die "usage: services.sh up|down|env [$(IFS='|'; echo "${services[*]}")]"
    ;;
esac
