# Kafka broker (KRaft, single node) from the official jars on Maven Central, plus kcat (Debian)
# to produce test data with a client no one here wrote. Broker 127.0.0.1:19092, controller 19093,
# and on the same broker SASL_PLAINTEXT 127.0.0.1:19094 (PLAIN and SCRAM-SHA-256 users created at
# startup) and SSL 127.0.0.1:19095 (a self-signed certificate for 127.0.0.1, made once with keytool).
KAFKA_VERSION="${KAFKA_VERSION:-3.9.1}"
KAFKA_PORT=19092
KAFKA_CONTROLLER_PORT=19093
KAFKA_SASL_PORT=19094
KAFKA_TLS_PORT=19095
# Test-only credentials of the SASL listener (nothing but 127.0.0.1 can reach it).
KAFKA_PLAIN_USER=vigil-plain
KAFKA_PLAIN_PASSWORD=vigil-plain-secret
KAFKA_SCRAM_USER=vigil-scram
KAFKA_SCRAM_PASSWORD=vigil-scram-secret
KAFKA_TLS_STOREPASS=vigil-test-store

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

# The broker's TLS key and certificate (CN and SAN 127.0.0.1, self-signed, 10 years), and the
# certificate as PEM for clients to trust; made once, kept in .services/kafka/tls.
kafka_tls_files() {
  local tls="$STATE/kafka/tls"
  [ -f "$tls/.complete" ] && return 0
  command -v keytool >/dev/null || die "keytool (Java 17+) is required for the Kafka TLS listener"
  rm -rf "$tls" && mkdir -p "$tls"
  timeout 60 keytool -genkeypair -alias broker -keyalg RSA -keysize 2048 -validity 3650 -dname "CN=127.0.0.1" \
    -ext "SAN=ip:127.0.0.1" -keystore "$tls/broker.p12" -storetype PKCS12 -storepass "$KAFKA_TLS_STOREPASS" \
    -keypass "$KAFKA_TLS_STOREPASS" >"$tls/keytool.log" 2>&1 || die "keytool could not make the broker certificate (see $tls/keytool.log)"
  timeout 60 keytool -exportcert -rfc -alias broker -keystore "$tls/broker.p12" -storetype PKCS12 -storepass "$KAFKA_TLS_STOREPASS" \
    -file "$tls/ca.pem" >>"$tls/keytool.log" 2>&1 || die "keytool could not export the broker certificate (see $tls/keytool.log)"
  touch "$tls/.complete"
}

# SCRAM credentials live in the cluster metadata: upserted at every start (idempotent), bounded.
kafka_scram_user() {
  local dir="$STATE/kafka"
  timeout 120 java -Xmx256m "-Dlog4j.configuration=file:$dir/log4j.properties" -cp "$dir/libs/*" kafka.admin.ConfigCommand \
    --bootstrap-server "127.0.0.1:$KAFKA_PORT" --alter --entity-type users --entity-name "$KAFKA_SCRAM_USER" \
    --add-config "SCRAM-SHA-256=[iterations=4096,password=$KAFKA_SCRAM_PASSWORD]" >"$dir/scram.log" 2>&1
}

kafka_listening() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

svc_kafka_up() {
  command -v kcat >/dev/null || { log "installing kcat"; apt_install kcat; }
  command -v java >/dev/null || die "java (17+) is required for the Kafka broker: apt-get install openjdk-17-jre-headless"
  local dir="$STATE/kafka"
  if running "$STATE/kafka.pid"; then
    if grep -q "SSL://127.0.0.1:$KAFKA_TLS_PORT" "$dir/server.properties" 2>/dev/null; then
      # Started before (maybe still starting): wait for it rather than start a second broker.
      wait_for "Kafka broker on 127.0.0.1:$KAFKA_PORT (metadata request)" 90 kafka_ready
      wait_for "Kafka SCRAM user $KAFKA_SCRAM_USER" 400 grep -q "Completed updating config" "$dir/scram.log"
      return 0
    fi
    # Started by an older version of this script, without the SASL and SSL listeners: restart it once.
    log "restarting the Kafka broker to add its SASL and SSL listeners"
    stop_pidfile "$STATE/kafka.pid"
  fi
  kafka_fetch_jars
  kafka_tls_files
  mkdir -p "$dir/data"
  rm -f "$dir/scram.log"
  cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT,SSL://127.0.0.1:$KAFKA_TLS_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT,SSL://127.0.0.1:$KAFKA_TLS_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL
inter.broker.listener.name=PLAINTEXT
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_PLAIN_USER="$KAFKA_PLAIN_PASSWORD";
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PKCS12
ssl.keystore.location=$dir/tls/broker.p12
ssl.keystore.password=$KAFKA_TLS_STOREPASS
ssl.key.password=$KAFKA_TLS_STOREPASS
ssl.client.auth=none
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
  wait_for "Kafka SASL listener on 127.0.0.1:$KAFKA_SASL_PORT" 30 kafka_listening "$KAFKA_SASL_PORT"
  wait_for "Kafka SSL listener on 127.0.0.1:$KAFKA_TLS_PORT" 30 kafka_listening "$KAFKA_TLS_PORT"
  local i
  for ((i = 0; i < 3; i++)); do kafka_scram_user && break; sleep 2; done
  grep -q "Completed updating config" "$dir/scram.log" 2>/dev/null || die "creating the SCRAM user failed (see $dir/scram.log)"
  log "kafka ready on 127.0.0.1:$KAFKA_PORT (SASL_PLAINTEXT $KAFKA_SASL_PORT, SSL $KAFKA_TLS_PORT)"
}

svc_kafka_down() {
  stop_pidfile "$STATE/kafka.pid"
}

svc_kafka_env() {
  echo "export VIGIL_TEST_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"
  echo "export VIGIL_TEST_KAFKA_PID_FILE=$STATE/kafka.pid"
  echo "export VIGIL_TEST_KAFKA_SASL_BROKERS=127.0.0.1:$KAFKA_SASL_PORT"
  echo "export VIGIL_TEST_KAFKA_SASL_PLAIN_USERNAME=$KAFKA_PLAIN_USER"
  echo "export VIGIL_TEST_KAFKA_SASL_PLAIN_PASSWORD=$KAFKA_PLAIN_PASSWORD"
  echo "export VIGIL_TEST_KAFKA_SASL_SCRAM_USERNAME=$KAFKA_SCRAM_USER"
  echo "export VIGIL_TEST_KAFKA_SASL_SCRAM_PASSWORD=$KAFKA_SCRAM_PASSWORD"
  echo "export VIGIL_TEST_KAFKA_TLS_BROKERS=127.0.0.1:$KAFKA_TLS_PORT"
  echo "export VIGIL_TEST_KAFKA_TLS_CA_FILE=$STATE/kafka/tls/ca.pem"
}
