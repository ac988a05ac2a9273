#!/usr/bin/env bash
# Local AWS emulator (moto server) for espbridge's integration tests and local tooling.
#
#   scripts/aws-emu.sh start   # install moto into a venv on first use, start it on a free port
#   scripts/aws-emu.sh env     # print the exports that point the AWS SDK at it
#   scripts/aws-emu.sh status  # exit 0 and print the URL if it answers, exit 1 otherwise
#   scripts/aws-emu.sh stop    # stop it (no error when it is not running)
#
# Typical use:
#   scripts/aws-emu.sh start && eval "$(scripts/aws-emu.sh env)" && cargo test -p espbridge-aws
#
# State lives in ${ESPBRIDGE_EMU_DIR:-$PWD/target/aws-emu}: venv/, moto.pid, moto.port, moto.log.
# Every command is idempotent: a second `start` reuses the running server. Tests give their
# tables/buckets/queues unique names, so the server is never reset between runs.
set -euo pipefail

MOTO_VERSION="5.2.5"
EMU_DIR="${ESPBRIDGE_EMU_DIR:-$PWD/target/aws-emu}"
VENV="$EMU_DIR/venv"
PID_FILE="$EMU_DIR/moto.pid"
PORT_FILE="$EMU_DIR/moto.port"
LOG_FILE="$EMU_DIR/moto.log"
# Marks a complete install, so an interrupted pip run is redone rather than trusted.
INSTALLED_MARK="$VENV/.espbridge-moto-$MOTO_VERSION"
START_TIMEOUT_S=30

die() {
  echo "aws-emu: $*" >&2
  exit 1
}

recorded_pid() { [ -f "$PID_FILE" ] && cat "$PID_FILE" || true; }
recorded_port() { [ -f "$PORT_FILE" ] && cat "$PORT_FILE" || true; }

# True when the recorded pid is alive and is a moto server (not a recycled pid).
pid_alive() {
  local pid
  pid="$(recorded_pid)"
  [ -n "$pid" ] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  ps -p "$pid" -o args= 2>/dev/null | grep -q moto_server
}

# True when moto answers HTTP on the recorded port.
answers() {
  local port="${1:-$(recorded_port)}"
  [ -n "$port" ] || return 1
  "$VENV/bin/python" - "$port" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=1).read()
PY
}

install() {
  [ -f "$INSTALLED_MARK" ] && [ -x "$VENV/bin/moto_server" ] && return 0
  command -v python3 >/dev/null || die "python3 is required to install moto"
  echo "aws-emu: installing moto $MOTO_VERSION into $VENV (first use only)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "moto[s3,dynamodb,sqs,scheduler,secretsmanager,events]==$MOTO_VERSION" flask flask-cors >&2
  touch "$INSTALLED_MARK"
}

free_port() {
  "$VENV/bin/python" -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

start() {
  mkdir -p "$EMU_DIR"
  # Serialize concurrent starts (two test commands at once) so they share one install and server.
  if command -v flock >/dev/null; then
    exec 9>"$EMU_DIR/start.lock"
    flock 9
  fi
  install
  if pid_alive && answers; then
    echo "aws-emu: already running at http://127.0.0.1:$(recorded_port)" >&2
    return 0
  fi
  # A stale server (alive but not answering) is replaced.
  stop_server
  local port pid
  port="$(free_port)"
  # The server must not inherit the start lock (fd 9), or it would hold it for its lifetime
  # and block every later start.
  nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$LOG_FILE" 2>&1 </dev/null 9>&- &
  pid=$!
  echo "$pid" >"$PID_FILE"
  echo "$port" >"$PORT_FILE"
  local deadline=$((SECONDS + START_TIMEOUT_S))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if answers "$port"; then
      echo "aws-emu: moto $MOTO_VERSION running at http://127.0.0.1:$port (pid $pid)" >&2
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  echo "aws-emu: moto did not start on port $port; its log ($LOG_FILE):" >&2
  cat "$LOG_FILE" >&2 || true
  stop_server
  exit 1
}

stop_server() {
  local pid
  pid="$(recorded_pid)"
  if [ -n "$pid" ] && pid_alive; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE" "$PORT_FILE"
}

case "${1:-}" in
  start) start ;;
  stop)
    stop_server
    echo "aws-emu: stopped" >&2
    ;;
  status)
    if pid_alive && answers; then
      echo "running at http://127.0.0.1:$(recorded_port) (pid $(recorded_pid))"
    else
      echo "not running"
      exit 1
    fi
    ;;
  env)
    port="$(recorded_port)"
    [ -n "$port" ] && pid_alive || die "not running; run '$0 start' first"
    echo "export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 ESPBRIDGE_REQUIRE_EMULATOR=1"
    ;;
  *)
    echo "usage: $0 start|stop|env|status" >&2
    exit 2
    ;;
esac
