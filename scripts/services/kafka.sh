# Kafka broker (KRaft, single node) from the official jars on Maven Central, plus kcat (Debian)
# to produce test data with a client no one here wrote. Broker 127.0.0.1:19092, controller 19093.
KAFKA_VERSION="${KAFKA_VERSION:-3.9.1}"
KAFKA_PORT=19092
KAFKA_CONTROLLER_PORT=19093

kafka_fetch_jars() {
  local dir="$STATE/kafka"
  [ -f "$dir/libs/.complete-$KAFKA_VERSION" ] && return 0
  command -v mvn >/dev/null || { log "installing maven"; apt_install maven; }
  mkdir -p "$dir/libs"
  # A throwaway pom whose only job is to resolve the broker and its runtime dependencies;
  # Maven caches them in ~/.m2, so a second machine setup or a wiped .services is fast.
  cat > "$dir/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>vigil.test</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
POM
  log "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central (cached in ~/.m2)"
  rm -f "$dir"/libs/*.jar
  (cd "$dir" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dir/libs" >"$dir/mvn.log" 2>&1) \
    || die "maven could not fetch the Kafka jars (see $dir/mvn.log)"
  touch "$dir/libs/.complete-$KAFKA_VERSION"
}

apt_install() {
  if [ ! -f "$STATE/.apt-updated" ]; then apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed"; touch "$STATE/.apt-updated"; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 || die "apt-get install $* failed"
}

kafka_ready() {
  kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 3 >/dev/null 2>&1
}

svc_kafka_up() {
  command -v kcat >/dev/null || { log "installing kcat"; apt_install kcat; }
  command -v java >/dev/null || die "java (17+) is required for the Kafka broker: apt-get install openjdk-17-jre-headless"
  local dir="$STATE/kafka"
  if running "$STATE/kafka.pid"; then
    # Started before (maybe still starting): wait for it rather than start a second broker.
    wait_for "Kafka broker on 127.0.0.1:$KAFKA_PORT (metadata request)" 90 kafka_ready
    return 0
  fi
  kafka_fetch_jars
  mkdir -p "$dir/data"
  cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
message.max.bytes=10485760
PROPS
  cat > "$dir/log4j.properties" <<L4J
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$dir/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
L4J
  local jopts=(-Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true "-Dlog4j.configuration=file:$dir/log4j.properties" -cp "$dir/libs/*")
  if [ ! -f "$dir/data/meta.properties" ]; then
    java "${jopts[@]}" kafka.tools.StorageTool format -t "$(java "${jopts[@]}" kafka.tools.StorageTool random-uuid)" -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
      || die "formatting the Kafka KRaft storage failed (see $dir/format.log)"
  fi
  # Its own session: a signal to the process group of whoever started it (a test, timeout) never reaches it.
  setsid nohup java "${jopts[@]}" kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 &
  echo $! >"$STATE/kafka.pid"
  wait_for "Kafka broker on 127.0.0.1:$KAFKA_PORT (metadata request)" 90 kafka_ready
  log "kafka ready on 127.0.0.1:$KAFKA_PORT"
}

svc_kafka_down() {
  stop_pidfile "$STATE/kafka.pid"
}

svc_kafka_env() {
  echo "export VIGIL_TEST_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"
  echo "export VIGIL_TEST_KAFKA_PID_FILE=$STATE/kafka.pid"
}
