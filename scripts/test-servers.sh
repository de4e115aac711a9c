#!/usr/bin/env bash
# Installs (when missing) and starts the real servers the integration tests talk to,
# all on 127.0.0.1 and on ports of their own so they never clash with a compose stack:
#   edm broker (Kafka protocol)  127.0.0.1:${EDM_TEST_KAFKA_PORT:-29092}
#   Apache Kafka (KRaft)         127.0.0.1:${EDM_TEST_APACHE_KAFKA_PORT:-29192}
#                                (its controller on the next port)
#   moto (DynamoDB API)          127.0.0.1:${EDM_TEST_DYNAMODB_PORT:-24566}
#   MariaDB (MySQL)              127.0.0.1:${EDM_TEST_MYSQL_PORT:-23306}
# `edm broker` is the one from the build under test ($EDM_BIN, by default the debug build
# in $CARGO_TARGET_DIR): scripts/test.sh builds it first. Apache Kafka is the release the
# compose stack runs ($KAFKA_VERSION), its jars taken from Maven Central with Maven into
# $EDM_TEST_CACHE (outside the clone, reused by later runs); it starts from an empty data
# directory every time, as `edm broker` (in memory) does.
#
# Usage: scripts/test-servers.sh start|stop|env
#   start        installs what is missing, starts the servers, waits until they answer
#   stop         stops what `start` started
#   env          prints the EDM_TEST_* variables the tests read; EDM_TEST_BROKER=edm (the
#                default) or apache-kafka chooses the broker EDM_TEST_BOOTSTRAP_SERVERS names
#   start-mysql  starts (initialising if needed) only MariaDB; with EDM_TEST_STATE_DIR and
#                EDM_TEST_MYSQL_PORT set, a private instance (used by the outage tests)
#   start-apache-kafka / stop-apache-kafka
#                only Apache Kafka; with EDM_TEST_STATE_DIR and EDM_TEST_APACHE_KAFKA_PORT
#                set, a private instance (used by the restart tests). EDM_TEST_KEEP_DATA=1
#                starts on the data already there (a restart) instead of a new one.
set -euo pipefail

STATE_DIR=${EDM_TEST_STATE_DIR:-/var/tmp/edm-test-servers}
VENV=${EDM_TEST_VENV:-/var/tmp/edm-venv}
KAFKA_PORT=${EDM_TEST_KAFKA_PORT:-29092}
DYNAMODB_PORT=${EDM_TEST_DYNAMODB_PORT:-24566}
MYSQL_PORT=${EDM_TEST_MYSQL_PORT:-23306}
MYSQL_PASSWORD=inventorypw
APACHE_KAFKA_PORT=${EDM_TEST_APACHE_KAFKA_PORT:-29192}
# The release compose/docker-compose.yml runs (apache/kafka image), from Maven Central.
KAFKA_VERSION=4.3.1
CACHE=${EDM_TEST_CACHE:-/var/tmp/edm-test-cache}
KAFKA_LIBS=$CACHE/apache-kafka-$KAFKA_VERSION/libs
EDM_BIN=${EDM_BIN:-${CARGO_TARGET_DIR:-/var/tmp/edm-target}/debug/edm}

log() { printf '[test-servers] %s\n' "$*" >&2; }

print_env() {
  local broker=${EDM_TEST_BROKER:-edm} bootstrap
  case "$broker" in
    edm) bootstrap=127.0.0.1:${KAFKA_PORT} ;;
    apache-kafka) bootstrap=127.0.0.1:${APACHE_KAFKA_PORT} ;;
    *) log "EDM_TEST_BROKER is edm or apache-kafka, not '$broker'"; return 2 ;;
  esac
  cat <<ENV
export EDM_TEST_BROKER=$broker
export EDM_TEST_BOOTSTRAP_SERVERS=$bootstrap
export EDM_TEST_EDM_BROKER=127.0.0.1:${KAFKA_PORT}
export EDM_TEST_APACHE_KAFKA=127.0.0.1:${APACHE_KAFKA_PORT}
export EDM_TEST_KAFKA_LIBS=$KAFKA_LIBS
export EDM_TEST_DYNAMODB_ENDPOINT=http://127.0.0.1:${DYNAMODB_PORT}
export EDM_TEST_MYSQL_URL=mysql://root:${MYSQL_PASSWORD}@127.0.0.1:${MYSQL_PORT}
export EDM_TEST_SERVERS_SCRIPT=$(realpath "$0")
export EDM_TEST_MOTO_BIN=$VENV/bin/moto_server
export EDM_TEST_CHROMIUM=$(command -v chromium || echo /usr/bin/chromium)
export EDM_TEST_CHROMEDRIVER=$(command -v chromedriver || echo /usr/bin/chromedriver)
ENV
}

wait_port() { # name port seconds
  local name=$1 port=$2 deadline=$((SECONDS + $3))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if ((SECONDS > deadline)); then log "$name did not open port $port"; return 1; fi
    sleep 0.1
  done
}

install_missing() {
  if ! command -v mariadbd >/dev/null && [ ! -x /usr/sbin/mariadbd ] || ! command -v openssl >/dev/null; then
    log "installing MariaDB and openssl (apt)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server openssl >/dev/null
  fi
  # The web view's tests drive headless Chromium over WebDriver (chromedriver).
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    log "installing Chromium and chromedriver (apt)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
  if [ ! -x "$VENV/bin/moto_server" ]; then
    log "installing moto into $VENV (pip)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check 'moto[server]==5.2.5'
  fi
}

start_daemon() { # name pidfile logfile cmd...
  local name=$1 pidfile=$2 logfile=$3; shift 3
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    log "$name already running (pid $(cat "$pidfile"))"; return 0
  fi
  setsid "$@" >"$logfile" 2>&1 </dev/null &
  echo $! >"$pidfile"
}

start_mysql() {
  local datadir=$STATE_DIR/mariadb
  mkdir -p "$STATE_DIR"
  if [ ! -d "$datadir/mysql" ]; then
    log "initialising MariaDB data directory $datadir"
    install -d -o mysql -g mysql "$datadir"
    mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db >"$STATE_DIR/mariadb-install.log" 2>&1
  fi
  install -d -o mysql -g mysql "$STATE_DIR/run"
  # A throwaway certificate, so that MariaDB offers TLS as MySQL 8 does (the TLS test
  # logs in as a user that requires it).
  local tls=$STATE_DIR/tls
  if [ ! -f "$tls/cert.pem" ]; then
    install -d -o mysql -g mysql "$tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=edm-test-mariadb" \
      -keyout "$tls/key.pem" -out "$tls/cert.pem" >/dev/null 2>&1
    chown mysql:mysql "$tls"/*.pem
  fi
  start_daemon MariaDB "$STATE_DIR/mariadb.pid" "$STATE_DIR/mariadb.log" \
    /usr/sbin/mariadbd --user=mysql --datadir="$datadir" --bind-address=127.0.0.1 --port="$MYSQL_PORT" \
    --socket="$STATE_DIR/run/mysqld.sock" --pid-file="$STATE_DIR/run/mariadbd.pid" \
    --ssl-cert="$tls/cert.pem" --ssl-key="$tls/key.pem" \
    --skip-name-resolve --max-connections=1000 --innodb-flush-log-at-trx-commit=2 --skip-log-bin
  wait_port MariaDB "$MYSQL_PORT" 60
  local sock=$STATE_DIR/run/mysqld.sock
  until mariadb-admin --socket="$sock" -uroot ping >/dev/null 2>&1; do sleep 0.2; done
  # root over TCP with the course's password (the socket login stays as it is).
  mariadb --socket="$sock" -uroot <<SQL
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '${MYSQL_PASSWORD}';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('${MYSQL_PASSWORD}');
CREATE USER IF NOT EXISTS 'edm_tls'@'127.0.0.1' IDENTIFIED BY '${MYSQL_PASSWORD}' REQUIRE SSL;
GRANT ALL PRIVILEGES ON *.* TO 'edm_tls'@'127.0.0.1';
FLUSH PRIVILEGES;
SQL
}

install_apache_kafka() {
  if [ -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]; then return 0; fi
  log "installing Apache Kafka $KAFKA_VERSION from Maven Central into $KAFKA_LIBS (mvn)"
  local build=$CACHE/apache-kafka-$KAFKA_VERSION
  mkdir -p "$build"
  # The broker and its runtime dependencies, plus a log4j2 binding: Kafka's pom has none
  # (KAFKA-18466), and without one the broker logs nothing. Kafka 4.x is on slf4j 1.7,
  # hence log4j-slf4j-impl (not -slf4j2-impl).
  cat >"$build/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>edm.test</groupId><artifactId>apache-kafka</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.25.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.25.3</version></dependency>
  </dependencies>
</project>
POM
  rm -rf "$KAFKA_LIBS.partial"
  (cd "$build" && mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS.partial")
  mv "$KAFKA_LIBS.partial" "$KAFKA_LIBS"
}

# One node, broker and controller (KRaft combined mode), with the compose stack's settings
# (replication factors of 1, no initial rebalance delay) on ports of its own. Internal
# topics get one partition instead of 50: created on the first group join and the first
# transactional producer, 50 partitions cost seconds that a test would wait for.
start_apache_kafka() {
  local dir=$STATE_DIR/apache-kafka controller=$((APACHE_KAFKA_PORT + 1))
  local pidfile=$STATE_DIR/apache-kafka.pid
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    log "Apache Kafka already running (pid $(cat "$pidfile"))"; return 0
  fi
  mkdir -p "$dir"
  if [ "${EDM_TEST_KEEP_DATA:-0}" != 1 ]; then rm -rf "$dir/data"; fi
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$APACHE_KAFKA_PORT,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$APACHE_KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1
PROPS
  cat >"$dir/log4j2.properties" <<'LOG'
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
LOG
  local java=(java -Xms512m -Xmx1g -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError
    -cp "$KAFKA_LIBS/*" "-Dlog4j2.configurationFile=$dir/log4j2.properties" "-Dkafka.logs.dir=$dir")
  if [ ! -f "$dir/data/meta.properties" ]; then
    # The compose stack's cluster id. A static voters line: format without --standalone.
    "${java[@]}" kafka.tools.StorageTool format -t MkU3OEVBNTcwNTJENDM2Qk \
      -c "$dir/server.properties" >"$dir/format.log" 2>&1
  fi
  start_daemon "Apache Kafka" "$pidfile" "$dir/stdout.log" \
    "${java[@]}" kafka.Kafka "$dir/server.properties"
  # The broker port opens once the broker is ready (the controller's earlier).
  wait_port "Apache Kafka" "$APACHE_KAFKA_PORT" 120
}

stop_pid() { # pidfile
  local pidfile=$1
  if [ -f "$pidfile" ]; then
    local pid; pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  fi
}

start() {
  install_missing
  install_apache_kafka
  mkdir -p "$STATE_DIR"
  if [ ! -x "$EDM_BIN" ]; then
    log "no edm binary at $EDM_BIN: build it first (cargo build), or set EDM_BIN"
    return 1
  fi
  start_daemon "edm broker" "$STATE_DIR/broker.pid" "$STATE_DIR/broker.log" \
    "$EDM_BIN" broker --listen "127.0.0.1:$KAFKA_PORT"
  start_daemon moto "$STATE_DIR/moto.pid" "$STATE_DIR/moto.log" \
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$DYNAMODB_PORT"
  start_mysql
  start_apache_kafka
  wait_port "edm broker" "$KAFKA_PORT" 30
  wait_port moto "$DYNAMODB_PORT" 60
  log "servers up: edm broker 127.0.0.1:$KAFKA_PORT, Apache Kafka $KAFKA_VERSION 127.0.0.1:$APACHE_KAFKA_PORT, DynamoDB http://127.0.0.1:$DYNAMODB_PORT, MySQL 127.0.0.1:$MYSQL_PORT"
}

stop() {
  for name in broker apache-kafka moto mariadb; do
    stop_pid "$STATE_DIR/$name.pid"
  done
  log "servers stopped"
}

case "${1:-}" in
  start) start ;;
  start-mysql) start_mysql ;;
  start-apache-kafka) install_apache_kafka && start_apache_kafka ;;
  stop-apache-kafka) stop_pid "$STATE_DIR/apache-kafka.pid" ;;
  stop) stop ;;
  env) print_env ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
