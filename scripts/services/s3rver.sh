# s3rver (an S3 API server, from node_modules) on 127.0.0.1:14568, data under $STATE/s3rver.
svc_s3rver_up() {
  running "$STATE/s3rver.pid" && return 0
  [ -x "$ROOT/node_modules/.bin/s3rver" ] || die "s3rver is missing from node_modules: run npm ci"
  mkdir -p "$STATE/s3rver/data"
  nohup "$ROOT/node_modules/.bin/s3rver" --address 127.0.0.1 --port 14568 --directory "$STATE/s3rver/data" --silent \
    >"$STATE/s3rver/s3rver.log" 2>&1 &
  echo $! > "$STATE/s3rver.pid"
  wait_for "s3rver (127.0.0.1:14568)" 30 bash -c 'exec 3<>/dev/tcp/127.0.0.1/14568'
}

svc_s3rver_down() {
  stop_pidfile "$STATE/s3rver.pid"
}

svc_s3rver_env() {
  echo "export VIGIL_TEST_S3_ENDPOINT=http://127.0.0.1:14568"
}
