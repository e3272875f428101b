# Headless Chromium for the dashboard tests (driven by playwright-core). Nothing runs between tests:
# up installs Debian's chromium when missing, down has nothing to stop.
CHROMIUM_BIN=/usr/bin/chromium

svc_chromium_up() {
  if [ -x "$CHROMIUM_BIN" ]; then return 0; fi
  log "installing Debian chromium (apt-get)"
  if [ "$(id -u)" -eq 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) >"$STATE/chromium-install.log" 2>&1 \
      || die "apt-get install chromium failed (see $STATE/chromium-install.log)"
  else
    (sudo -n apt-get update -qq && sudo -n DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) >"$STATE/chromium-install.log" 2>&1 \
      || die "apt-get install chromium failed (needs root or passwordless sudo; see $STATE/chromium-install.log)"
  fi
  [ -x "$CHROMIUM_BIN" ] || die "chromium installed but $CHROMIUM_BIN is missing"
  wait_for "chromium --version" 30 "$CHROMIUM_BIN" --headless --no-sandbox --version
}

svc_chromium_down() { :; }

svc_chromium_env() {
  echo "export VIGIL_TEST_CHROMIUM=$CHROMIUM_BIN"
}
