# Prometheus Alertmanager from Debian (prometheus-alertmanager), the binary started directly (never the
# package's init service) on 127.0.0.1:19099, clustering off, storage and config under $STATE/alertmanager.
svc_alertmanager_up() {
  if ! command -v prometheus-alertmanager >/dev/null 2>&1; then
    log "installing prometheus-alertmanager (apt)"
    apt_install_no_start prometheus-alertmanager
    disable_packaged_units prometheus-alertmanager.service
  else
    warn_packaged_units prometheus-alertmanager.service
  fi
  running "$STATE/alertmanager.pid" && return 0
  local dir="$STATE/alertmanager"
  mkdir -p "$dir/data"
  # A null receiver: the tests read alerts back from Alertmanager's own API, nothing is sent onwards.
  cat >"$dir/alertmanager.yml" <<'EOF'
route:
  receiver: "null"
  group_by: ["..."]
receivers:
  - name: "null"
EOF
  nohup prometheus-alertmanager --config.file="$dir/alertmanager.yml" --storage.path="$dir/data" \
    --web.listen-address=127.0.0.1:19099 --cluster.listen-address= --log.level=warn \
    >"$dir/alertmanager.log" 2>&1 &
  echo $! > "$STATE/alertmanager.pid"
  wait_for "Alertmanager (127.0.0.1:19099/-/ready)" 30 bash -c 'exec 3<>/dev/tcp/127.0.0.1/19099 && printf "GET /-/ready HTTP/1.0\r\n\r\n" >&3 && grep -q "200 OK" <&3'
}

svc_alertmanager_down() {
  stop_pidfile "$STATE/alertmanager.pid"
}

svc_alertmanager_env() {
  echo "export VIGIL_TEST_ALERTMANAGER_URL=http://127.0.0.1:19099"
}
