#!/usr/bin/env bash
# A/B benchmark of two pgkeep binaries on the same data: backup and restore
# with each, alternating (A, B, A, B, ...), RUNS times, in one throwaway
# cluster (dataset of bench.sh, BENCH_DATASET=events|text|many|mixed). With
# BENCH_PG_RESTORE=1, each run also restores a `pg_dump -Fd` of the same
# data with `pg_restore -jJOBS`, side by side. Prints wall time, client CPU
# (user+sys), server CPU (backends) and peak RSS per run, and the medians.
# With BENCH_ENCRYPT=1 every repository gets a master key (a key file: no
# Argon2 in the timing) first, so backups are encrypted (AES-256-GCM), as
# they are by default in a repository with a key.
# Usage: scripts/bench-ab.sh A_BIN B_BIN [SIZE_MB=1024] [RUNS=3] [JOBS=2]
# e.g. build the old commit in a worktree and compare it with this tree's
# release build:
#   git worktree add /tmp/old OLD && (cd /tmp/old && cargo build --release)
#   scripts/bench-ab.sh /tmp/old/target/release/pgkeep target/release/pgkeep
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/cluster.sh
bin_a=$(realpath "$1"); bin_b=$(realpath "$2")
size_mb=${3:-1024}; runs=${4:-3}; jobs=${5:-2}
CLUSTER_OPTS="-c shared_buffers=256MB -c maintenance_work_mem=128MB -c wal_level=minimal -c max_wal_senders=0 -c autovacuum=off" cluster_start
work=$CLUSTER_DIR/work; mkdir -p "$work"; chmod 777 "$work"
conn="host=$PGHOST port=$PGPORT user=postgres"
bench_dataset "$size_mb"
client_pin=()
results=$work/results; : > "$results"
if [ -n "${BENCH_PG_RESTORE:-}" ]; then
  measure pg_dump pg_dump -Fd -j "$jobs" -f "$work/dump" -d bench >/dev/null
fi
for run in $(seq 1 "$runs"); do
  if [ -n "${BENCH_PG_RESTORE:-}" ]; then
    createdb "pgr_$run"
    read -r secs rss cpu srv < <(measure "pg_restore_$run" pg_restore -j "$jobs" -d "pgr_$run" "$work/dump")
    echo "restore p $run $secs $cpu $srv $rss" | tee -a "$results"
    dropdb "pgr_$run"
  fi
  for side in a b; do
    bin=$bin_a; [ "$side" = b ] && bin=$bin_b
    repo=$work/repo-$side-$run
    bench_key "$bin" "$repo"
    read -r secs rss cpu srv < <(measure "backup_$side" "$bin" backup --db "$conn dbname=bench" --repo "$repo" --jobs "$jobs")
    echo "backup $side $run $secs $cpu $srv $rss" | tee -a "$results"
    read -r secs rss cpu srv < <(measure "restore_$side" "$bin" restore --repo "$repo" latest "${key_args[@]}" --db "$conn dbname=r_${side}_$run" --create --jobs "$jobs")
    echo "restore $side $run $secs $cpu $srv $rss" | tee -a "$results"
    dropdb "r_${side}_$run"; rm -rf "$repo"
  done
done
python3 - "$results" "$bin_a" "$bin_b" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if len(l.split()) == 7]
print(f"\nA = {sys.argv[2]}\nB = {sys.argv[3]}")
cols = (("wall s", 3, 1), ("client CPU s", 4, 1), ("server CPU s", 5, 1), ("peak RSS MiB", 6, 1 / 1024))
for step in ("backup", "restore"):
    for name, i, scale in cols:
        for side in ("a", "b", "p"):
            v = [float(r[i]) * scale for r in rows if r[0] == step and r[1] == side]
            if not v:
                continue
            print(f"{step:<8} {side.upper()} {name:<13} " + " ".join(f"{x:7.2f}" for x in v) + f"   median {statistics.median(v):7.2f}")
    med = lambda side, i, scale=1: statistics.median(float(r[i]) * scale for r in rows if r[0] == step and r[1] == side)
    print(f"  {step} medians A -> B: wall {med('a',3):.2f} -> {med('b',3):.2f} s ({100*(med('b',3)/med('a',3)-1):+.1f}%), "
          f"client CPU {med('a',4):.2f} -> {med('b',4):.2f} s ({100*(med('b',4)/med('a',4)-1):+.1f}%), "
          f"peak RSS {med('a',6,1/1024):.1f} -> {med('b',6,1/1024):.1f} MiB")
    if step == "restore" and any(r[1] == "p" for r in rows):
        p = med('p', 3)
        print(f"  restore wall vs pg_restore (P = pg_restore -j): A {med('a',3)/p:.2f}x, B {med('b',3)/p:.2f}x of {p:.2f} s")
PY
