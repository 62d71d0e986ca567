#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: Debian's server binaries, run as the non-root `postgres`
# user, on a free loopback port, in a temporary directory.
#   .ci/postgres.sh start DIR   → prints the SQLAlchemy URL (postgresql+asyncpg://…); the cluster's PID is in DIR/pid
#   .ci/postgres.sh stop DIR    → stops that cluster (by its PID) and removes DIR
set -euo pipefail
BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)}
RUN_AS=${PG_USER:-postgres}
as_user() { if [ "$(id -u)" = 0 ]; then runuser -u "$RUN_AS" -- "$@"; else "$@"; fi; }

case "${1:-}" in
  install)
    if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq postgresql >/dev/null
    fi
    id postgres >/dev/null 2>&1 || { echo "the postgresql package made no postgres user" >&2; exit 1; } ;;
  start)
    dir=$2
    [ -n "$BIN" ] && [ -x "$BIN/initdb" ] || { echo "no PostgreSQL server binaries (run: $0 install)" >&2; exit 1; }
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown "$RUN_AS" "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_user "$BIN/initdb" -D "$dir/data" -U agent --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1
    as_user "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-h 127.0.0.1 -p $port -k $dir -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >/dev/null
    head -1 "$dir/data/postmaster.pid" >"$dir/pid"
    as_user "$BIN/createdb" -h 127.0.0.1 -p "$port" -U agent agent
    echo "postgresql+asyncpg://agent@127.0.0.1:$port/agent" ;;
  stop)
    dir=$2
    if [ -f "$dir/pid" ]; then
      pid=$(cat "$dir/pid")
      kill -INT "$pid" 2>/dev/null || true   # fast shutdown of that one postmaster
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$dir" ;;
  *) echo "usage: $0 install | start DIR | stop DIR" >&2; exit 2 ;;
esac
