# Debian's packages enable their systemd units when installed: rabbitmq-server, epmd (epmd.socket
# listens on port 4369 of every interface) and prometheus-alertmanager (:9093 of every interface)
# would start at the next boot. The test services run from .services/ on 127.0.0.1 instead.
# VIGIL_SYSTEM_ROOT (default /) points systemctl at another root: test/services-scripts.test.ts runs
# these functions on a copy of the units.

# enabled_packaged_units UNIT...: prints those of the units that are installed and not masked.
enabled_packaged_units() {
  local root="${VIGIL_SYSTEM_ROOT:-/}" unit
  for unit in "$@"; do
    [ -e "$root/lib/systemd/system/$unit" ] || [ -e "$root/usr/lib/systemd/system/$unit" ] || continue
    [ "$(readlink "$root/etc/systemd/system/$unit" 2>/dev/null)" = /dev/null ] && continue
    printf '%s\n' "$unit"
  done
}

# disable_packaged_units UNIT...: for packages this script has just installed. Each unit is disabled
# (which also turns off its SysV links through systemd-sysv-install) and masked: a masked unit cannot
# be started at boot, by socket activation or by a package upgrade. Nothing running is stopped.
# Idempotent: masked units are skipped.
disable_packaged_units() {
  local root="${VIGIL_SYSTEM_ROOT:-/}" todo
  mapfile -t todo < <(enabled_packaged_units "$@")
  [ ${#todo[@]} -gt 0 ] || return 0
  command -v systemctl >/dev/null 2>&1 || { log "WARNING: no systemctl: disable ${todo[*]} by hand so they do not start at boot"; return 0; }
  log "disabling and masking the packaged units ${todo[*]}"
  systemctl --root="$root" --quiet disable "${todo[@]}" >&2 || log "systemctl disable ${todo[*]} failed; masking anyway"
  systemctl --root="$root" --quiet mask "${todo[@]}" >&2 || die "systemctl mask ${todo[*]} failed"
}

# warn_packaged_units UNIT...: for packages that were already installed (perhaps in use by this
# machine's owner, so they are left as they are): says which units are still unmasked and how to mask them.
warn_packaged_units() {
  local todo
  mapfile -t todo < <(enabled_packaged_units "$@")
  [ ${#todo[@]} -gt 0 ] || return 0
  log "WARNING: ${todo[*]} (Debian's own, listening on every interface) may start at the next boot;" \
    "if only Vigil's tests use them: systemctl disable ${todo[*]} && systemctl mask ${todo[*]}"
}
