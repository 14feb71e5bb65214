# Sourced by demo.sh and bench.sh: start/stop a throwaway PostgreSQL cluster
# from the local server binaries (as the postgres user when run as root).
# Sets PGHOST (socket dir), PGPORT, PGUSER, CLUSTER_DIR.

pg_bin() {
  if [ -n "${PGKEEP_PG_BIN:-}" ]; then echo "$PGKEEP_PG_BIN"; return; fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cluster_start() {
  local bin; bin=$(pg_bin)
  [ -x "$bin/initdb" ] || { echo "no PostgreSQL server binaries found (set PGKEEP_PG_BIN)"; exit 1; }
  CLUSTER_DIR=$(mktemp -d /tmp/pgkeep-cluster.XXXXXX)
  chmod 755 "$CLUSTER_DIR"
  [ "$(id -u)" = 0 ] && chown postgres "$CLUSTER_DIR"
  PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  as_pg "$bin/initdb" -D "$CLUSTER_DIR/data" -U postgres -A trust --no-sync >/dev/null
  as_pg "$bin/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/log" -w -o \
    "-p $PGPORT -k $CLUSTER_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_wal_size=4GB ${CLUSTER_OPTS:-}" start >/dev/null
  export PGHOST=$CLUSTER_DIR PGPORT PGUSER=postgres CLUSTER_DIR
  trap cluster_stop EXIT
}

cluster_stop() {
  local bin; bin=$(pg_bin)
  [ -n "${CLUSTER_DIR:-}" ] || return 0
  as_pg "$bin/pg_ctl" -D "$CLUSTER_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$CLUSTER_DIR"
}
