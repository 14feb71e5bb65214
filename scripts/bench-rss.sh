#!/usr/bin/env bash
# Peak RSS of backup and restore at the default memory budget and at
# --memory 16MiB --jobs 1, on a dataset of bench.sh's (BENCH_DATASET=
# events|text|many|mixed, BENCH_ENCRYPT=1 for a keyed repository) in a throwaway cluster: one backup, RUNS restores at
# the defaults, then one backup and one restore at 16 MiB. Prints each
# command's wall time and peak RSS (/usr/bin/time).
# Usage: scripts/bench-rss.sh [SIZE_MB=300] [RUNS=3]
#        PGKEEP_BIN=target/release/pgkeep scripts/bench-rss.sh ...   (prebuilt)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/cluster.sh
size_mb=${1:-300}; runs=${2:-3}
pgkeep=$(bench_pgkeep)
CLUSTER_OPTS="-c shared_buffers=256MB -c maintenance_work_mem=128MB -c wal_level=minimal -c max_wal_senders=0 -c autovacuum=off" cluster_start
trap cluster_stop EXIT
work=$CLUSTER_DIR/work; mkdir -p "$work"; chmod 777 "$work"
conn="host=$PGHOST port=$PGPORT user=postgres"
bench_dataset "$size_mb"
timed() { local label=$1; shift; /usr/bin/time -f "$label: %e s, peak RSS %M KiB" "$@" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }; tail -n 1 "$work/err"; }
bench_key "$pgkeep" "$work/repo"
timed "backup (defaults)" "$pgkeep" backup --db "$conn dbname=bench" --repo "$work/repo"
for i in $(seq 1 "$runs"); do
  createdb "r$i"
  timed "restore (defaults) $i" "$pgkeep" restore --repo "$work/repo" latest "${key_args[@]}" --db "$conn dbname=r$i"
done
bench_key "$pgkeep" "$work/repo16"
timed "backup --memory 16MiB --jobs 1" "$pgkeep" backup --memory 16MiB --jobs 1 --db "$conn dbname=bench" --repo "$work/repo16"
createdb r16
timed "restore --memory 16MiB --jobs 1" "$pgkeep" restore --memory 16MiB --jobs 1 --repo "$work/repo16" latest "${key_args[@]}" --db "$conn dbname=r16"
