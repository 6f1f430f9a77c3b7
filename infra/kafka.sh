#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, broker+controller in one JVM) without Docker.
#
#   infra/kafka.sh fetch    resolve the broker jars from Maven Central into $KAFKA_LIBS_DIR (once)
#   infra/kafka.sh start    fetch, format storage once, start the broker, wait until an admin request succeeds
#   infra/kafka.sh stop     SIGTERM, wait, SIGKILL after $KAFKA_STOP_TIMEOUT seconds
#   infra/kafka.sh status   exit 0 when our broker runs and answers an admin request
#   infra/kafka.sh tool CLASS [ARGS...]   run a Kafka command-line class (e.g. org.apache.kafka.tools.TopicCommand)
#
# Environment (all optional): KAFKA_PORT (19092), KAFKA_CONTROLLER_PORT (19093), KAFKA_DIR (.local/kafka),
# KAFKA_LIBS_DIR, KAFKA_DATA_DIR, KAFKA_LOG_DIR, KAFKA_HEAP (1g), KAFKA_START_TIMEOUT (90), KAFKA_STOP_TIMEOUT (30),
# JAVA_HOME.
#
# Opt-in SASL_SSL listener (the PLAINTEXT one stays, for the local tools): set KAFKA_SASL_SSL_PORT. At start a CA
# and the broker's key pair are generated with openssl into $KAFKA_DIR/tls (ca.pem is what clients trust:
# STOCKPIT_KAFKA_SSL_CAFILE), and the SCRAM-SHA-256/512 (and PLAIN) user KAFKA_SASL_USERNAME (stockpit) is given
# KAFKA_SASL_PASSWORD (required with KAFKA_SASL_SSL_PORT).
set -euo pipefail

# shellcheck source=common.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
KAFKA_DIR="${KAFKA_DIR:-$STOCKPIT_LOCAL_DIR/kafka}"
KAFKA_LIBS_DIR="${KAFKA_LIBS_DIR:-$KAFKA_DIR/libs}"
KAFKA_DATA_DIR="${KAFKA_DATA_DIR:-$KAFKA_DIR/data}"
KAFKA_LOG_DIR="${KAFKA_LOG_DIR:-$KAFKA_DIR/logs}"
KAFKA_HEAP="${KAFKA_HEAP:-1g}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
KAFKA_SASL_SSL_PORT="${KAFKA_SASL_SSL_PORT:-}"
KAFKA_SASL_USERNAME="${KAFKA_SASL_USERNAME:-stockpit}"
KAFKA_SASL_PASSWORD="${KAFKA_SASL_PASSWORD:-}"

KAFKA_INFRA_DIR="$STOCKPIT_ROOT/infra/kafka"
CONFIG_DIR="$KAFKA_DIR/config"
SERVER_PROPERTIES="$CONFIG_DIR/server.properties"
ADMIN_PROPERTIES="$CONFIG_DIR/admin.properties"
PID_FILE="$KAFKA_DIR/kafka.pid"
TLS_DIR="$KAFKA_DIR/tls"
# The jar set is tied to the pom that produced it: a changed pom means a new fetch.
LIBS_STAMP="$KAFKA_LIBS_DIR/.pom.sha256"

if [[ -n "${JAVA_HOME:-}" ]]; then
  JAVA="$JAVA_HOME/bin/java"
else
  JAVA="java"
fi

pom_digest() {
  sha256sum "$KAFKA_INFRA_DIR/pom.xml" | cut -d' ' -f1
}

libs_present() {
  [[ -f "$LIBS_STAMP" && "$(cat "$LIBS_STAMP")" == "$(pom_digest)" ]]
}

cmd_fetch() {
  if libs_present; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found; run infra/bootstrap.sh (or apt-get install maven)"
  log "resolving Kafka jars with Maven into $KAFKA_LIBS_DIR"
  local staging="$KAFKA_LIBS_DIR.tmp.$$"
  rm -rf "$staging"
  mkdir -p "$staging" "$KAFKA_DIR"
  local fetch_log="$KAFKA_DIR/fetch.log"
  # Copy into a staging folder and swap it in, so an interrupted fetch never leaves a half-filled libs dir.
  if ! mvn -q -B -f "$KAFKA_INFRA_DIR/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$staging" >"$fetch_log" 2>&1; then
    tail -n 40 "$fetch_log" >&2
    rm -rf "$staging"
    die "maven could not resolve the Kafka jars (full output in $fetch_log)"
  fi
  pom_digest >"$staging/.pom.sha256"
  rm -rf "$KAFKA_LIBS_DIR"
  mkdir -p "$(dirname "$KAFKA_LIBS_DIR")"
  mv "$staging" "$KAFKA_LIBS_DIR"
  log "fetched $(find "$KAFKA_LIBS_DIR" -name '*.jar' | wc -l) jars"
}

# Run a Kafka main class with the tools' logging config; short-lived JVM flags keep start-up fast.
run_tool() {
  libs_present || die "Kafka jars missing; run: infra/kafka.sh fetch"
  "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_INFRA_DIR/tools-log4j2.xml" \
    -cp "$KAFKA_LIBS_DIR/*" "$@"
}

# A fresh CA and broker key pair (PKCS12 keystore) for the SASL_SSL listener; clients trust $TLS_DIR/ca.pem.
generate_tls() {
  command -v openssl >/dev/null || apt_install openssl
  rm -rf "$TLS_DIR"
  mkdir -p "$TLS_DIR"
  (
    cd "$TLS_DIR"
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=stockpit local Kafka CA" \
      -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout broker.key -out broker.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >broker.ext
    openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
      -extfile broker.ext -out broker.pem 2>/dev/null
    openssl pkcs12 -export -in broker.pem -inkey broker.key -certfile ca.pem -name broker \
      -passout "pass:$TLS_STORE_PASSWORD" -out broker.p12
    chmod 644 ca.pem
  ) || die "could not generate the TLS material in $TLS_DIR"
}

sasl_ssl_properties() {
  local module="org.apache.kafka.common.security"
  cat <<EOF
# SASL_SSL listener (KAFKA_SASL_SSL_PORT): TLS with a locally generated CA, then SCRAM or PLAIN.
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN
ssl.keystore.type=PKCS12
ssl.keystore.location=${TLS_DIR}/broker.p12
ssl.keystore.password=${TLS_STORE_PASSWORD}
ssl.key.password=${TLS_STORE_PASSWORD}
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=${module}.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=${module}.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=${module}.plain.PlainLoginModule required user_${KAFKA_SASL_USERNAME}="${KAFKA_SASL_PASSWORD}";
EOF
}

write_configs() {
  mkdir -p "$CONFIG_DIR" "$KAFKA_DATA_DIR" "$KAFKA_LOG_DIR"
  local listeners="PLAINTEXT://127.0.0.1:${KAFKA_PORT}" advertised="PLAINTEXT://127.0.0.1:${KAFKA_PORT}"
  local protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
  if [[ -n "$KAFKA_SASL_SSL_PORT" ]]; then
    listeners+=",SASL_SSL://127.0.0.1:${KAFKA_SASL_SSL_PORT}"
    advertised+=",SASL_SSL://127.0.0.1:${KAFKA_SASL_SSL_PORT}"
    protocols+=",SASL_SSL:SASL_SSL"
  fi
  cat >"$SERVER_PROPERTIES" <<EOF
# Generated by infra/kafka.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=1
# Static voter set: the controller endpoint lives in config, so changing KAFKA_CONTROLLER_PORT needs no re-format.
controller.quorum.voters=1@127.0.0.1:${KAFKA_CONTROLLER_PORT}
controller.listener.names=CONTROLLER
listeners=${listeners},CONTROLLER://127.0.0.1:${KAFKA_CONTROLLER_PORT}
advertised.listeners=${advertised}
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=${protocols}
log.dirs=${KAFKA_DATA_DIR}
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
# A single node cannot hold more than one replica of the internal topics.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests create many short-lived consumer groups; waiting for more members to join only slows them down.
group.initial.rebalance.delay.ms=0
EOF
  if [[ -n "$KAFKA_SASL_SSL_PORT" ]]; then
    sasl_ssl_properties >>"$SERVER_PROPERTIES"
    chmod 600 "$SERVER_PROPERTIES"
  fi
  cat >"$ADMIN_PROPERTIES" <<EOF
# Bounds for the health-check admin request, so a dead broker fails fast instead of hanging.
request.timeout.ms=5000
default.api.timeout.ms=8000
EOF
}

storage_formatted() {
  [[ -f "$KAFKA_DATA_DIR/meta.properties" ]]
}

format_storage() {
  local cluster_id
  cluster_id="$(run_tool kafka.tools.StorageTool random-uuid)"
  log "formatting KRaft storage in $KAFKA_DATA_DIR (cluster id $cluster_id)"
  run_tool kafka.tools.StorageTool format --cluster-id "$cluster_id" --config "$SERVER_PROPERTIES" >/dev/null
}

# Alive and not a zombie: a container's PID 1 may never reap a killed broker, and kill -0 succeeds on zombies.
process_running() {
  local state
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != "Z" ]]
}

# The pid from the pid file when that process is our broker (guards against a recycled pid).
broker_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ && -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "kafka.Kafka $SERVER_PROPERTIES" || return 1
  printf '%s\n' "$pid"
}

# A real admin round trip (Metadata/ListTopics), not just an open port.
admin_request_succeeds() {
  port_open "$KAFKA_PORT" || return 1
  run_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
    --command-config "$ADMIN_PROPERTIES" --list >/dev/null 2>&1
}

cmd_status() {
  if broker_pid >/dev/null && admin_request_succeeds; then
    log "up on 127.0.0.1:$KAFKA_PORT (pid $(broker_pid))"
    return 0
  fi
  log "not running on 127.0.0.1:$KAFKA_PORT"
  return 1
}

wait_until_healthy() {
  local pid="$1" deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! process_running "$pid"; then
      tail -n 40 "$KAFKA_LOG_DIR/kafka.out" "$KAFKA_LOG_DIR/server.log" >&2 2>/dev/null || true
      rm -f "$PID_FILE"
      die "broker exited during start-up (logs above, full ones in $KAFKA_LOG_DIR)"
    fi
    if admin_request_succeeds; then
      return 0
    fi
    sleep 1
  done
  tail -n 40 "$KAFKA_LOG_DIR/server.log" >&2 2>/dev/null || true
  die "broker did not answer an admin request within ${KAFKA_START_TIMEOUT}s (pid $pid still running; stop it with: infra/kafka.sh stop)"
}

cmd_start() {
  local started_at=$SECONDS pid
  if pid="$(broker_pid)"; then
    # Already started by us (maybe still booting): only wait for it, if it serves the port asked for.
    local running_port
    running_port="$(sed -nE 's|^listeners=PLAINTEXT://127\.0\.0\.1:([0-9]+),.*|\1|p' "$SERVER_PROPERTIES")"
    if [[ "$running_port" != "$KAFKA_PORT" ]]; then
      die "the broker of $KAFKA_DIR already runs on port $running_port (pid $pid); stop it first to use port $KAFKA_PORT"
    fi
    wait_until_healthy "$pid"
    log "already running on 127.0.0.1:$KAFKA_PORT (pid $pid)"
    return 0
  fi
  rm -f "$PID_FILE"
  if [[ -n "$KAFKA_SASL_SSL_PORT" ]]; then
    [[ -n "$KAFKA_SASL_PASSWORD" ]] || die "KAFKA_SASL_SSL_PORT needs KAFKA_SASL_PASSWORD (the SASL user's password)"
    [[ "$KAFKA_SASL_USERNAME" =~ ^[A-Za-z0-9_.-]+$ ]] || die "KAFKA_SASL_USERNAME: letters, digits, _ . - only"
    [[ "$KAFKA_SASL_PASSWORD" =~ ^[A-Za-z0-9_.-]+$ ]] || die "KAFKA_SASL_PASSWORD: letters, digits, _ . - only"
  fi
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" ${KAFKA_SASL_SSL_PORT:+"$KAFKA_SASL_SSL_PORT"}; do
    if port_open "$port"; then
      die "port 127.0.0.1:$port is taken by another process; free it or set KAFKA_PORT / KAFKA_CONTROLLER_PORT"
    fi
  done
  command -v "$JAVA" >/dev/null || die "java not found; run infra/bootstrap.sh (or apt-get install default-jdk-headless)"
  cmd_fetch
  if [[ -n "$KAFKA_SASL_SSL_PORT" ]]; then
    TLS_STORE_PASSWORD="$(openssl rand -hex 16)"
    generate_tls
  fi
  write_configs
  storage_formatted || format_storage

  log "starting broker on 127.0.0.1:$KAFKA_PORT (controller :$KAFKA_CONTROLLER_PORT, heap $KAFKA_HEAP)"
  nohup "$JAVA" -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -Djava.awt.headless=true \
    -Dkafka.logs.dir="$KAFKA_LOG_DIR" \
    -Dlog4j2.configurationFile="$KAFKA_INFRA_DIR/log4j2.xml" \
    -cp "$KAFKA_LIBS_DIR/*" kafka.Kafka "$SERVER_PROPERTIES" \
    >"$KAFKA_LOG_DIR/kafka.out" 2>&1 </dev/null &
  pid=$!
  printf '%s\n' "$pid" >"$PID_FILE"
  wait_until_healthy "$pid"
  if [[ -n "$KAFKA_SASL_SSL_PORT" ]]; then
    add_scram_user
    log "SASL_SSL listener on 127.0.0.1:$KAFKA_SASL_SSL_PORT (user $KAFKA_SASL_USERNAME, CA $TLS_DIR/ca.pem)"
  fi
  log "up on 127.0.0.1:$KAFKA_PORT (pid $pid) after $((SECONDS - started_at))s"
}


# SCRAM credentials live in the cluster metadata: set (or reset) them through the PLAINTEXT listener.
add_scram_user() {
  local mechanism
  for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
    run_tool kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
      --command-config "$ADMIN_PROPERTIES" --alter --entity-type users --entity-name "$KAFKA_SASL_USERNAME" \
      --add-config "${mechanism}=[iterations=4096,password=${KAFKA_SASL_PASSWORD}]" >/dev/null \
      || die "could not create the SCRAM user $KAFKA_SASL_USERNAME"
  done
}

cmd_stop() {
  local pid
  if ! pid="$(broker_pid)"; then
    rm -f "$PID_FILE"
    log "not running"
    return 0
  fi
  log "stopping broker (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
  while process_running "$pid" && ((SECONDS < deadline)); do
    sleep 0.5
  done
  if process_running "$pid"; then
    log "broker ignored SIGTERM for ${KAFKA_STOP_TIMEOUT}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while process_running "$pid" && ((SECONDS < deadline)); do
      sleep 0.2
    done
    process_running "$pid" && die "broker (pid $pid) survived SIGKILL"
  fi
  rm -f "$PID_FILE"
  log "stopped"
}

main() {
  local command="${1:-}"
  case "$command" in
    fetch) cmd_fetch ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    tool)
      shift
      [[ $# -ge 1 ]] || die "usage: $0 tool MAIN_CLASS [ARGS...]"
      run_tool "$@"
      ;;
    *)
      echo "usage: $0 {fetch|start|stop|status|tool MAIN_CLASS [ARGS...]}" >&2
      exit 2
      ;;
  esac
}

main "$@"
