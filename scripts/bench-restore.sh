#!/usr/bin/env bash
# Restore throughput as an operator measures it: `pgkeep bench --db` on a
# dataset of about SIZE_MB megabytes (bench.sh's) in a throwaway cluster, at
# each job count (backup into a temporary repository beside a raw parallel
# COPY, then a restore into a scratch database per job count), and, on the
# same data in the same run, pg_dump -Fd -j2 followed by pg_restore -jN
# into a fresh database per job count.
# Usage: scripts/bench-restore.sh [SIZE_MB=1024] [JOBS=1,2,4]
#        PGKEEP_BIN=target/release/pgkeep scripts/bench-restore.sh ...   (prebuilt)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/cluster.sh
size_mb=${1:-1024}
jobs=${2:-1,2,4}
pgkeep=$(bench_pgkeep)
CLUSTER_OPTS="-c shared_buffers=256MB -c maintenance_work_mem=128MB -c wal_level=minimal -c max_wal_senders=0 -c autovacuum=off" cluster_start
work=$CLUSTER_DIR/work; mkdir -p "$work"; chmod 777 "$work"
conn="host=$PGHOST port=$PGPORT user=postgres"
bench_dataset "$size_mb"

echo "== pgkeep bench --db ... --jobs $jobs"
psql -X -q -d postgres -c CHECKPOINT
"$pgkeep" bench --db "$conn dbname=bench" --target "$conn dbname=postgres" --jobs "$jobs" > "$work/bench.txt"
"$pgkeep" bench --db "$conn dbname=bench" --target "$conn dbname=postgres" --jobs "$jobs" --json > "$work/bench.json"
cat "$work/bench.txt"

echo "== pg_dump -Fd -j2, then pg_restore -jN"
read -r dump_secs _ _ _ < <(measure pg_dump pg_dump -Fd -j 2 -f "$work/dump" -d bench)
echo "pg_dump -Fd -j2: ${dump_secs}s"
for j in ${jobs//,/ }; do
  createdb "pgr_$j"
  read -r secs rss _ _ < <(measure "pg_restore_$j" pg_restore -j "$j" -d "pgr_$j" "$work/dump")
  echo "pg_restore -j$j: ${secs}s (peak RSS $((rss / 1024)) MiB)"
  dropdb "pgr_$j"
done
