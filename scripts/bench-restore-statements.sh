#!/usr/bin/env bash
# Where a restore's server time goes: `pgkeep restore --jobs JOBS` and
# `pg_restore -jJOBS` of the same data (bench.sh's dataset, BENCH_DATASET=
# events|text|many|mixed) in one throwaway cluster that logs every
# statement's duration, alternating, RUNS times each. Prints each restore's
# wall time and, per kind of statement (COPY, CREATE INDEX, ALTER, ...),
# how many ran and the server time they took together. When both tools'
# statements add up to the same time, a restore is bound by the server's
# own work, not by how the client schedules or feeds it.
# Usage: scripts/bench-restore-statements.sh [SIZE_MB=1024] [RUNS=2] [JOBS=2]
#        PGKEEP_BIN=target/release/pgkeep scripts/bench-restore-statements.sh ...   (prebuilt)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/cluster.sh
size_mb=${1:-1024}; runs=${2:-2}; jobs=${3:-2}
pgkeep=$(bench_pgkeep)
CLUSTER_OPTS="-c shared_buffers=256MB -c maintenance_work_mem=128MB -c wal_level=minimal -c max_wal_senders=0 -c autovacuum=off -c log_min_duration_statement=0" cluster_start
work=$CLUSTER_DIR/work; mkdir -p "$work"; chmod 777 "$work"
conn="host=$PGHOST port=$PGPORT user=postgres"
bench_dataset "$size_mb"
pg_dump -Fd -j "$jobs" -f "$work/dump" -d bench
"$pgkeep" backup --db "$conn dbname=bench" --repo "$work/repo" --jobs "$jobs" >/dev/null
for run in $(seq 1 "$runs"); do
  for tool in pgkeep pg_restore; do
    db="restore_${tool}_$run"
    createdb "$db"
    mark=$(wc -l < "$CLUSTER_DIR/log")
    t0=$(date +%s.%N)
    if [ "$tool" = pgkeep ]; then
      "$pgkeep" restore --repo "$work/repo" latest --db "$conn dbname=$db" --jobs "$jobs" >/dev/null
    else
      pg_restore -j "$jobs" -d "$db" "$work/dump"
    fi
    t1=$(date +%s.%N)
    echo "== $tool, run $run: wall $(python3 -c "print(f'{$t1 - $t0:.2f}')") s"
    tail -n +"$((mark + 1))" "$CLUSTER_DIR/log" | python3 -c '
import collections, re, sys
time, count = collections.defaultdict(float), collections.Counter()
for line in sys.stdin:
    m = re.search(r"duration: ([0-9.]+) ms\s+(?:statement|execute [^:]*): (.*)", line)
    if not m or not m.group(2).strip():
        continue
    words = m.group(2).split()
    kind = words[0].upper()
    if kind == "CREATE" and "INDEX" in (w.upper() for w in words[1:4]):
        kind = "CREATE INDEX"
    time[kind] += float(m.group(1)) / 1000
    count[kind] += 1
for kind, secs in sorted(time.items(), key=lambda kv: -kv[1]):
    if secs >= 0.01:
        print(f"  {kind:<22} {count[kind]:5d} statements {secs:8.2f} s")
total = "all"
print(f"  {total:<22} {sum(count.values()):5d} statements {sum(time.values()):8.2f} s")
'
    dropdb "$db"
  done
done
