#!/usr/bin/env bash
# A/B benchmark of two pgkeep binaries on the same data: backup and restore
# with each, alternating (A, B, A, B, ...), RUNS times, in one throwaway
# cluster (dataset of bench.sh). Prints wall time, client CPU (user+sys),
# server CPU (backends) and peak RSS per run, and the medians.
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
for run in $(seq 1 "$runs"); do
  for side in a b; do
    bin=$bin_a; [ "$side" = b ] && bin=$bin_b
    repo=$work/repo-$side-$run
    read -r secs rss cpu srv < <(measure "backup_$side" "$bin" backup --db "$conn dbname=bench" --repo "$repo" --jobs "$jobs")
    echo "backup $side $run $secs $cpu $srv $rss" | tee -a "$results"
    read -r secs rss cpu srv < <(measure "restore_$side" "$bin" restore --repo "$repo" latest --db "$conn dbname=r_${side}_$run" --create --jobs "$jobs")
    echo "restore $side $run $secs $cpu $srv $rss" | tee -a "$results"
    dropdb "r_${side}_$run"; rm -rf "$repo"
  done
done
python3 - "$results" "$bin_a" "$bin_b" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
names = {"a": sys.argv[2], "b": sys.argv[3]}
print(f"\nA = {names['a']}\nB = {names['b']}")
print(f"{'step':<9}{'':3}{'wall s (runs)':<24}{'client CPU s':<22}{'server CPU s':<22}{'peak RSS MiB':<20}")
for step in ("backup", "restore"):
    for side in ("a", "b"):
        rs = [r for r in rows if r[0] == step and r[1] == side]
        cols = [[float(r[i]) for r in rs] for i in (3, 4, 5)] + [[int(r[6]) / 1024 for r in rs]]
        cell = lambda v: " ".join(f"{x:.2f}" if x < 1000 else f"{x:.0f}" for x in v)
        print(f"{step:<9}{side.upper():<3}" + "".join(f"{cell(c):<24}"[:24].ljust(22 if i else 24) for i, c in enumerate(cols)))
    med = {s: statistics.median(float(r[3]) for r in rows if r[0] == step and r[1] == s) for s in "ab"}
    cpu = {s: statistics.median(float(r[4]) for r in rows if r[0] == step and r[1] == s) for s in "ab"}
    rss = {s: statistics.median(int(r[6]) / 1024 for r in rows if r[0] == step and r[1] == s) for s in "ab"}
    print(f"  {step} medians: wall {med['a']:.2f} -> {med['b']:.2f} s ({100*(med['b']/med['a']-1):+.1f}%), "
          f"client CPU {cpu['a']:.2f} -> {cpu['b']:.2f} s ({100*(cpu['b']/cpu['a']-1):+.1f}%), "
          f"peak RSS {rss['a']:.1f} -> {rss['b']:.1f} MiB")
PY
