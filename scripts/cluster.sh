# Sourced by demo.sh and the bench scripts: start/stop a throwaway PostgreSQL cluster
# from the local server binaries (as the postgres user when run as root).
# Sets PGHOST (socket dir), PGPORT, PGUSER, CLUSTER_DIR. Also: server_cpu and
# measure, the timing the bench scripts share.

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

# bench_pgkeep: the pgkeep binary a script measures (its absolute path):
# PGKEEP_BIN, or this tree's release build, built first.
bench_pgkeep() {
  local root; root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  if [ -z "${PGKEEP_BIN:-}" ]; then (cd "$root" && cargo build --release --quiet) >&2; fi
  realpath "${PGKEEP_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/pgkeep}"
}

cluster_stop() {
  local bin; bin=$(pg_bin)
  [ -n "${CLUSTER_DIR:-}" ] || return 0
  as_pg "$bin/pg_ctl" -D "$CLUSTER_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$CLUSTER_DIR"
}

# CPU seconds of the cluster's exited processes so far (backends end with
# their connection; the postmaster accumulates their time).
server_cpu() {
  local pid; pid=$(head -1 "$CLUSTER_DIR/data/postmaster.pid")
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15 + $16 + $17) / hz}' "/proc/$pid/stat"
}

# pin_clients: sets `client_pin` (the prefix `measure` runs commands
# under): empty, or with BENCH_PIN=1 the server's processes on the first
# half of the cores and a taskset prefix for the other half, as when the
# client runs on a machine of its own.
pin_clients() {
  client_pin=()
  if [ "${BENCH_PIN:-0}" = 1 ]; then
    ncpu=$(nproc); half=$(( ncpu / 2 > 0 ? ncpu / 2 : 1 ))
    [ "$ncpu" -ge 2 ] || { echo "BENCH_PIN needs at least 2 cores"; exit 1; }
    taskset -a -p -c "0-$((half - 1))" "$(head -1 "$CLUSTER_DIR/data/postmaster.pid")" >/dev/null
    client_pin=(taskset -c "$half-$((ncpu - 1))")
    echo "== pinned: server on cores 0-$((half - 1)), clients on $half-$((ncpu - 1))"
  fi
}

# measure LABEL COMMAND...: runs COMMAND (under `client_pin`, an optional
# taskset prefix) with its output in $work/LABEL.out and .err; prints
# seconds, peak RSS (KiB), client CPU s (user+sys, children included) and
# server CPU s. A CHECKPOINT first, so the previous step's dirty pages are
# written before this step, not during it.
measure() {
  local label=$1; shift
  psql -X -q -d postgres -c CHECKPOINT
  local s0; s0=$(server_cpu)
  /usr/bin/time -f "%e %M %U %S" -o "$work/time" ${client_pin[@]+"${client_pin[@]}"} "$@" >"$work/$label.out" 2>"$work/$label.err" || { cat "$work/$label.err"; exit 1; }
  local secs rss usr sys; read -r secs rss usr sys < "$work/time"
  echo "$secs $rss $(python3 -c "print(f'{$usr + $sys:.2f} {$(server_cpu) - $s0:.2f}')")"
}

# bench_dataset SIZE_MB: database `bench` of about SIZE_MB megabytes, of
# the kind BENCH_DATASET names; vacuumed and analyzed:
#   events (default): 4 equal tables (so table-level parallelism is fair to
#     every tool) of ~170-byte rows with an index each, plus a small one;
#   text: 4 equal tables of ~1 KB rows (text and jsonb) with a primary key
#     and a GIN index on the jsonb;
#   many: 50 tables of mixed sizes (the k-th holds a share of about 1/k),
#     each with a primary key and an index, every third with a foreign key
#     to a small `accounts` table;
#   pgbench: `pgbench -i` at the scale that makes about SIZE_MB (~15 MB a
#     scale step; narrow rows, a blank-padded filler that compresses away).
# bench_key BIN REPO: with BENCH_ENCRYPT=1, puts a master key (a key file
# in $work, made once: no Argon2 in the timing) in REPO, so its backups are
# encrypted as they are by default in a keyed repository; sets `key_args`
# (the restore's --key-file, empty without BENCH_ENCRYPT).
bench_key() {
  key_args=()
  [ -n "${BENCH_ENCRYPT:-}" ] || return 0
  [ -f "$work/master.key" ] || head -c 32 /dev/urandom > "$work/master.key"
  key_args=(--key-file "$work/master.key")
  "$1" key add --repo "$2" --new-key-file "$work/master.key" >/dev/null
}

bench_dataset() {
  local size_mb=$1 kind=${BENCH_DATASET:-events}
  createdb bench
  case $kind in
    events) dataset_events "$size_mb" ;;
    text) dataset_text "$size_mb" ;;
    many) dataset_many "$size_mb" ;;
    mixed) dataset_mixed "$size_mb" ;;
    pgbench) dataset_pgbench "$size_mb" ;;
    *) echo "BENCH_DATASET=$kind: events, text, many, mixed or pgbench" >&2; return 1 ;;
  esac
  psql -X -q -d bench -c "VACUUM ANALYZE"
}

# events_table NAME ROWS ACCOUNTS [SQL]: a table of ~170-byte event rows
# whose account_id runs over 1..ACCOUNTS, with an index, then SQL.
events_table() {
  psql -X -q -v ON_ERROR_STOP=1 -d bench -c "CREATE TABLE $1 (id bigint PRIMARY KEY, account_id int NOT NULL, kind text NOT NULL, amount numeric(12,2), created_at timestamptz NOT NULL, note text);
    INSERT INTO $1 SELECT g, 1 + ((g::bigint * 7919) % $3)::int, (ARRAY['signup','login','purchase','refund','logout'])[1 + g % 5],
      (g % 100000) / 100.0, timestamptz '2026-01-01' + g * interval '1 second', md5(g::text) || ' ' || md5((g::bigint * 31)::text)
    FROM generate_series(1, $2) g;
    CREATE INDEX ON $1 (account_id, created_at); ${4:-}"
}

dataset_events() {
  local size_mb=$1 ntab=4 i pids=()
  local rows_per=$(( size_mb * 1024 * 1024 / ntab / 170 ))
  echo "== generating ~${size_mb} MB (events): $ntab tables x $rows_per rows"
  for i in $(seq 1 $ntab); do
    events_table "events_$i" "$rows_per" 100000 & pids+=($!)
  done
  wait "${pids[@]}"
  psql -X -q -d bench -c "CREATE TABLE accounts AS SELECT g AS id, 'acct-' || g AS name FROM generate_series(1, 100000) g; ALTER TABLE accounts ADD PRIMARY KEY (id);"
}

dataset_text() {
  local size_mb=$1 ntab=4 i pids=()
  local rows_per=$(( size_mb * 1024 * 1024 / ntab / 1100 ))
  echo "== generating ~${size_mb} MB (text): $ntab tables x $rows_per rows of ~1 KB"
  for i in $(seq 1 $ntab); do
    psql -X -q -v ON_ERROR_STOP=1 -d bench -c "CREATE TABLE docs_$i (id bigint PRIMARY KEY, title text NOT NULL, body text NOT NULL, attrs jsonb NOT NULL);
      INSERT INTO docs_$i SELECT g, 'Document ' || g || ' about ' || (ARRAY['billing','search','storage','network','backups'])[1 + g % 5],
        substr(repeat('the ' || md5(g::text) || ' report on ' || md5((g::bigint * 31)::text) || ' and its findings; ', 8), 1, 560 + (g % 97)),
        jsonb_build_object('user', g % 10000, 'score', g % 1000, 'tags', jsonb_build_array('t' || g % 50, 't' || g % 7, 't' || g % 3),
          'note', md5((g::bigint * 7)::text) || md5((g::bigint * 11)::text), 'active', g % 2 = 0)
      FROM generate_series(1, $rows_per) g;
      CREATE INDEX ON docs_$i USING gin (attrs);" & pids+=($!)
  done
  wait "${pids[@]}"
}

# The issue-#16 acceptance shape: per row ~300 B of jsonb, ~500 B of text
# and 8 KiB of random (incompressible) bytea, so the archive is about as
# large as the data and a 200 MB run fills the pipeline as a 2 GB one does.
dataset_mixed() {
  local size_mb=$1 ntab=4 i pids=()
  local rows_per=$(( size_mb * 1024 * 1024 / ntab / 9000 ))
  echo "== generating ~${size_mb} MB (mixed): $ntab tables x $rows_per rows of ~9 KB (8 KiB random bytea)"
  psql -X -q -v ON_ERROR_STOP=1 -d bench -c "CREATE EXTENSION IF NOT EXISTS pgcrypto"
  for i in $(seq 1 $ntab); do
    psql -X -q -v ON_ERROR_STOP=1 -d bench -c "CREATE TABLE mixed_$i (id bigint PRIMARY KEY, attrs jsonb NOT NULL, body text NOT NULL, blob bytea NOT NULL);
      INSERT INTO mixed_$i SELECT g,
        jsonb_build_object('user', g % 10000, 'tags', jsonb_build_array('t' || g % 50, 't' || g % 7), 'note', md5(g::text) || md5((g::bigint * 7)::text)),
        substr(repeat('entry ' || md5((g::bigint * 31)::text) || ' logged; ', 12), 1, 450 + (g % 97)),
        (SELECT string_agg(gen_random_bytes(1024), ''::bytea) FROM generate_series(1, 8) k WHERE k <> -g)
      FROM generate_series(1, $rows_per) g;
      CREATE INDEX ON mixed_$i USING gin (attrs);" & pids+=($!)
  done
  wait "${pids[@]}"
}

dataset_pgbench() {
  local scale=$(( $1 / 15 > 0 ? $1 / 15 : 1 ))
  echo "== generating ~$1 MB (pgbench): pgbench -i -s $scale"
  "$(pg_bin)/pgbench" -i -q -s "$scale" bench >/dev/null 2>&1
}

dataset_many() {
  local size_mb=$1 ntab=50 i rows fk pids=()
  local harmonic; harmonic=$(python3 -c "print(sum(1 / k for k in range(1, $ntab + 1)))")
  echo "== generating ~${size_mb} MB (many): $ntab tables of mixed sizes"
  psql -X -q -d bench -c "CREATE TABLE accounts AS SELECT g AS id, 'acct-' || g AS name FROM generate_series(1, 10000) g; ALTER TABLE accounts ADD PRIMARY KEY (id);"
  for i in $(seq 1 $ntab); do
    rows=$(python3 -c "print(max(100, int($size_mb * 1048576 / 170 / $harmonic / $i)))")
    fk=""; [ $((i % 3)) = 0 ] && fk="ALTER TABLE t_$i ADD FOREIGN KEY (account_id) REFERENCES accounts;"
    events_table "t_$i" "$rows" 10000 "$fk" & pids+=($!)
    # Two at a time: the machine has two cores.
    if [ ${#pids[@]} = 2 ]; then wait "${pids[@]}"; pids=(); fi
  done
  [ ${#pids[@]} = 0 ] || wait "${pids[@]}"
}
