#!/usr/bin/env bash
# Installs (when missing) and starts the real servers the integration tests talk to,
# all on 127.0.0.1 and on ports of their own so they never clash with a compose stack:
#   edm broker (Kafka protocol)  127.0.0.1:${EDM_TEST_KAFKA_PORT:-29092}
#   moto (DynamoDB API)          127.0.0.1:${EDM_TEST_DYNAMODB_PORT:-24566}
#   MariaDB (MySQL)              127.0.0.1:${EDM_TEST_MYSQL_PORT:-23306}
# The broker is `edm broker` from the build under test ($EDM_BIN, by default the debug
# build in $CARGO_TARGET_DIR): scripts/test.sh builds it first.
#
# Usage: scripts/test-servers.sh start|stop|env
#   start        installs what is missing, starts the servers, waits until they answer
#   stop         stops what `start` started
#   env          prints the EDM_TEST_* variables the tests read
#   start-mysql  starts (initialising if needed) only MariaDB; with EDM_TEST_STATE_DIR and
#                EDM_TEST_MYSQL_PORT set, a private instance (used by the outage tests)
set -euo pipefail

STATE_DIR=${EDM_TEST_STATE_DIR:-/var/tmp/edm-test-servers}
VENV=${EDM_TEST_VENV:-/var/tmp/edm-venv}
KAFKA_PORT=${EDM_TEST_KAFKA_PORT:-29092}
DYNAMODB_PORT=${EDM_TEST_DYNAMODB_PORT:-24566}
MYSQL_PORT=${EDM_TEST_MYSQL_PORT:-23306}
MYSQL_PASSWORD=inventorypw
EDM_BIN=${EDM_BIN:-${CARGO_TARGET_DIR:-/var/tmp/edm-target}/debug/edm}

log() { printf '[test-servers] %s\n' "$*" >&2; }

print_env() {
  cat <<ENV
export EDM_TEST_BOOTSTRAP_SERVERS=127.0.0.1:${KAFKA_PORT}
export EDM_TEST_DYNAMODB_ENDPOINT=http://127.0.0.1:${DYNAMODB_PORT}
export EDM_TEST_MYSQL_URL=mysql://root:${MYSQL_PASSWORD}@127.0.0.1:${MYSQL_PORT}
export EDM_TEST_SERVERS_SCRIPT=$(realpath "$0")
export EDM_TEST_MOTO_BIN=$VENV/bin/moto_server
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

start() {
  install_missing
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
  wait_port "edm broker" "$KAFKA_PORT" 30
  wait_port moto "$DYNAMODB_PORT" 60
  log "servers up: Kafka 127.0.0.1:$KAFKA_PORT, DynamoDB http://127.0.0.1:$DYNAMODB_PORT, MySQL 127.0.0.1:$MYSQL_PORT"
}

stop() {
  for name in broker moto mariadb; do
    local pidfile=$STATE_DIR/$name.pid
    if [ -f "$pidfile" ]; then
      local pid; pid=$(cat "$pidfile")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$pidfile"
    fi
  done
  log "servers stopped"
}

case "${1:-}" in
  start) start ;;
  start-mysql) start_mysql ;;
  stop) stop ;;
  env) print_env ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
