# RabbitMQ from Debian's rabbitmq-server, on 127.0.0.1 only: AMQP 5673, distribution 25673, epmd 4370.
# Its own node name, data and logs under $STATE/rabbitmq; the package's init service is never used.
rabbitmq_env() {
  export RABBITMQ_NODENAME=vigil-test@localhost
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT=5673
  export RABBITMQ_DIST_PORT=25673
  export ERL_EPMD_ADDRESS=127.0.0.1
  export ERL_EPMD_PORT=4370
  export RABBITMQ_BASE="$STATE/rabbitmq"
  export RABBITMQ_MNESIA_BASE="$STATE/rabbitmq/mnesia"
  export RABBITMQ_LOG_BASE="$STATE/rabbitmq/log"
  export RABBITMQ_PID_FILE="$STATE/rabbitmq/rabbitmq.pid"
  export RABBITMQ_CONFIG_FILE="$STATE/rabbitmq/rabbitmq"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$STATE/rabbitmq/enabled_plugins"
  # The management plugin would listen on 15672 of every interface: keep it off.
  export RABBITMQ_ENABLED_PLUGINS=""
  export HOME="$STATE/rabbitmq"   # the Erlang cookie lives in $HOME
  # Debian's /usr/sbin wrappers switch to the rabbitmq user and lose this environment: call the real scripts.
  export PATH="/usr/lib/rabbitmq/bin:$PATH"
  # Erlang's distribution listens on loopback only.
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

svc_rabbitmq_up() {
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    log "installing rabbitmq-server (apt)"
    apt_install_no_start rabbitmq-server
    # epmd comes with rabbitmq-server (erlang-base); its socket unit would listen on every interface.
    disable_packaged_units rabbitmq-server.service epmd.service epmd.socket
  else
    warn_packaged_units rabbitmq-server.service epmd.service epmd.socket
  fi
  ( rabbitmq_env
    mkdir -p "$RABBITMQ_MNESIA_BASE" "$RABBITMQ_LOG_BASE"
    printf '[].\n' > "$RABBITMQ_ENABLED_PLUGINS_FILE"
    printf 'listeners.tcp.1 = 127.0.0.1:5673\nloopback_users = none\n' > "$RABBITMQ_CONFIG_FILE.conf"
    if running "$STATE/rabbitmq.pid" && rabbitmqctl -q await_startup --timeout 5 >/dev/null 2>&1; then exit 0; fi
    # Our own epmd in the foreground of a background job, so that its PID is known and it is stopped by it.
    if ! running "$STATE/rabbitmq-epmd.pid"; then
      nohup epmd -address 127.0.0.1 -port 4370 >"$RABBITMQ_LOG_BASE/epmd.log" 2>&1 &
      echo $! > "$STATE/rabbitmq-epmd.pid"
      wait_for "epmd (127.0.0.1:4370)" 15 bash -c 'exec 3<>/dev/tcp/127.0.0.1/4370'
    fi
    rabbitmq-server -detached >>"$RABBITMQ_LOG_BASE/startup.log" 2>&1 || die "rabbitmq-server -detached failed (see $RABBITMQ_LOG_BASE)"
    # await_startup itself fails while the node is not registered with epmd yet: retry it, bounded.
    wait_for "RabbitMQ node vigil-test@localhost (127.0.0.1:5673)" 90 rabbitmqctl -q await_startup --timeout 5
    [ -s "$RABBITMQ_PID_FILE" ] || die "RabbitMQ started but wrote no pid file at $RABBITMQ_PID_FILE"
    cp "$RABBITMQ_PID_FILE" "$STATE/rabbitmq.pid"
  )
}

svc_rabbitmq_down() {
  ( rabbitmq_env
    if running "$STATE/rabbitmq.pid"; then rabbitmqctl -q stop >/dev/null 2>&1 || true; fi
    stop_pidfile "$STATE/rabbitmq.pid"
    stop_pidfile "$STATE/rabbitmq-epmd.pid"
  )
}

svc_rabbitmq_env() {
  echo "export VIGIL_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5673"
  # What the tests need to drive RabbitMQ's own CLI tools against this node.
  echo "export VIGIL_TEST_RABBITMQ_NODENAME=vigil-test@localhost"
  echo "export VIGIL_TEST_RABBITMQ_HOME=$STATE/rabbitmq"
}
