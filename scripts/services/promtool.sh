# Prometheus's promtool, to check /metrics the way Prometheus parses it. Only the tool: Debian's
# prometheus package is downloaded (not installed) and promtool alone is unpacked into $STATE/promtool,
# so no Prometheus server is installed, enabled or started. Nothing runs between tests.
svc_promtool_up() {
  local dir="$STATE/promtool"
  [ -x "$dir/promtool" ] && return 0
  mkdir -p "$dir/deb"
  if [ ! -f "$STATE/.apt-updated" ]; then apt-get update -qq >&2 || die "apt-get update failed"; touch "$STATE/.apt-updated"; fi
  log "downloading Debian's prometheus package for its promtool (not installing it)"
  (cd "$dir/deb" && apt-get download -qq prometheus >&2) || die "apt-get download prometheus failed"
  dpkg-deb -x "$dir"/deb/prometheus_*.deb "$dir/deb/root" || die "cannot unpack the prometheus package"
  cp "$dir/deb/root/usr/bin/promtool" "$dir/promtool"
  rm -rf "$dir/deb"
  "$dir/promtool" --version >/dev/null 2>&1 || die "promtool from the prometheus package does not run"
}

svc_promtool_down() { :; }

svc_promtool_env() {
  echo "export VIGIL_TEST_PROMTOOL=$STATE/promtool/promtool"
}
