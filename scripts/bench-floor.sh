#!/usr/bin/env bash
# Backup wall time against its floor: a raw parallel `COPY ... TO STDOUT >
# /dev/null` of the same tables (psql, JOBS at once) and `pgkeep backup
# --jobs JOBS`, alternating, RUNS times each, in one throwaway cluster
# (dataset of bench.sh: BENCH_DATASET=events|text|many|mixed|pgbench). Prints
# each run's wall time, client and server CPU, the medians and the ratio.
# BENCH_ENCRYPT=1: into repositories with a master key (AES-256-GCM, a key
# file). BENCH_PIN=1: the server on the first half of the cores, the
# clients (psql, pgkeep) on the other half (taskset). BENCH_TCP=1: both
# connect over TCP to 127.0.0.1 instead of the Unix socket (a Unix
# socket's send buffer, ~200 KiB, stalls the server whenever the client
# pauses reading; TCP's grows).
# Usage: scripts/bench-floor.sh [SIZE_MB=1024] [RUNS=5] [JOBS=2]
#        PGKEEP_BIN=target/release/pgkeep scripts/bench-floor.sh ...   (prebuilt)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/cluster.sh
size_mb=${1:-1024}; runs=${2:-5}; jobs=${3:-2}
pgkeep=$(bench_pgkeep)
CLUSTER_OPTS="-c shared_buffers=256MB -c wal_level=minimal -c max_wal_senders=0 -c autovacuum=off" cluster_start
work=$CLUSTER_DIR/work; mkdir -p "$work"; chmod 777 "$work"
bench_dataset "$size_mb"
if [ -n "${BENCH_TCP:-}" ]; then export PGHOST=127.0.0.1; fi
conn="host=$PGHOST port=$PGPORT user=postgres"
psql -X -At -d bench -c "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY pg_relation_size(oid) DESC" > "$work/tables"
pin_clients
head -c 32 /dev/urandom > "$work/master.key"
results=$work/results; : > "$results"
for run in $(seq 1 "$runs"); do
  read -r secs _ cpu srv < <(measure raw_copy bash -c "xargs -P $jobs -I{} psql -X -q -d bench -c 'COPY public.{} TO STDOUT' < '$work/tables' > /dev/null")
  echo "raw $run $secs $cpu $srv" | tee -a "$results"
  repo=$work/repo-$run
  if [ -n "${BENCH_ENCRYPT:-}" ]; then
    "$pgkeep" key add --repo "$repo" --new-key-file "$work/master.key" >/dev/null
  fi
  read -r secs _ cpu srv < <(measure backup "$pgkeep" backup --db "$conn dbname=bench" --repo "$repo" --jobs "$jobs")
  echo "pgkeep $run $secs $cpu $srv" | tee -a "$results"
  rm -rf "$repo"
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for step in ("raw", "pgkeep"):
    for name, i in (("wall s", 2), ("client CPU s", 3), ("server CPU s", 4)):
        v = [float(r[i]) for r in rows if r[0] == step]
        med[(step, i)] = statistics.median(v)
        print(f"{step:<7} {name:<13} " + " ".join(f"{x:6.2f}" for x in v) + f"   median {med[(step, i)]:6.2f}")
print(f"backup / raw parallel COPY (median wall): {med[('pgkeep', 2)] / med[('raw', 2)]:.2f}x")
PY
