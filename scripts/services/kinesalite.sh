# kinesalite: an in-memory Kinesis API server from npm (devDependency), on 127.0.0.1:14567 only.
# It speaks HTTP/1.1 and lacks UpdateShardCount and SubscribeToShard (resharding uses SplitShard).
KINESALITE_PORT=14567

kinesalite_ready() {
  # Any HTTP answer means the server is listening (an unsigned request is rejected, which is fine).
  curl -s -o /dev/null -X POST "http://127.0.0.1:$KINESALITE_PORT/"
}

svc_kinesalite_up() {
  if running "$STATE/kinesalite.pid"; then wait_for "kinesalite on 127.0.0.1:$KINESALITE_PORT" 30 kinesalite_ready; return 0; fi
  [ -d "$ROOT/node_modules/kinesalite" ] || die "kinesalite is not installed: run npm ci"
  command -v curl >/dev/null || die "curl is required to check kinesalite's readiness"
  setsid nohup node "$ROOT/scripts/services/kinesalite-server.js" 127.0.0.1 "$KINESALITE_PORT" >"$STATE/kinesalite.log" 2>&1 &
  echo $! >"$STATE/kinesalite.pid"
  wait_for "kinesalite on 127.0.0.1:$KINESALITE_PORT" 30 kinesalite_ready
  log "kinesalite ready on 127.0.0.1:$KINESALITE_PORT"
}

svc_kinesalite_down() {
  stop_pidfile "$STATE/kinesalite.pid"
}

svc_kinesalite_env() {
  echo "export VIGIL_TEST_KINESIS_ENDPOINT=http://127.0.0.1:$KINESALITE_PORT"
}
