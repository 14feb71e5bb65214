#!/usr/bin/env bash
# The footprint of `pgkeep serve`: 10 database jobs (one of ~SIZE_MB
# megabytes, nine small) in a throwaway cluster. Their daily schedule has
# passed with no run recorded, so serve runs each once at start (one at a
# time, `[serve] concurrency` 1). Prints the peak RSS of those backups
# beside a one-shot `pgkeep backup` of the big database, then the idle RSS
# and CPU of serve over MINUTES minutes.
# Usage: scripts/bench-serve.sh [SIZE_MB=300] [MINUTES=10]
#        PGKEEP_BIN=target/release/pgkeep scripts/bench-serve.sh ...   (prebuilt)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/cluster.sh
size_mb=${1:-300}
minutes=${2:-10}
pgkeep=$(bench_pgkeep)
CLUSTER_OPTS="-c shared_buffers=256MB -c wal_level=minimal -c max_wal_senders=0 -c autovacuum=off" cluster_start
work=$CLUSTER_DIR/work; mkdir -p "$work"; chmod 777 "$work"
conn="host=$PGHOST port=$PGPORT user=postgres"
bench_dataset "$size_mb"
createdb small
psql -X -q -d small -c "CREATE TABLE t AS SELECT g, md5(g::text) AS m FROM generate_series(1, 10000) g"

echo "== one-shot pgkeep backup of the big database (for comparison)"
read -r secs rss _ _ < <(measure oneshot "$pgkeep" backup --db "$conn dbname=bench" --repo "$work/oneshot")
echo "one-shot backup: ${secs}s, peak RSS $((rss / 1024)) MiB"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
{
  printf '[repository]\nurl = "%s/repo"\n[serve]\nlisten = "127.0.0.1:%s"\n' "$work" "$port"
  for i in $(seq 0 9); do
    db=small; [ "$i" = 0 ] && db=bench
    printf '[[database]]\nname = "job%s"\nurl = "%s dbname=%s"\nschedule = "0 3 * * *"\nrpo = "1d"\n' "$i" "$conn" "$db"
  done
} > "$work/pgkeep.toml"
"$pgkeep" serve --policy "$work/pgkeep.toml" 2> "$work/serve.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; cluster_stop' EXIT
echo "== serve: 10 jobs, each run once at start"
t0=$(date +%s.%N)
until [ "$(ls "$work"/repo/*/runs/ 2>/dev/null | grep -c -- '-backup-success-' || true)" -ge 10 ]; do
  kill -0 $pid || { cat "$work/serve.log"; exit 1; }
  sleep 0.2
done
t1=$(date +%s.%N)
hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
echo "10 backups in $(python3 -c "print(f'{$t1 - $t0:.1f}')")s; serve's peak RSS over them: $((hwm / 1024)) MiB"

clk=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' /proc/$pid/stat; }
c0=$(cpu); samples=()
echo "== idle for $minutes minutes (RSS every 10 s)"
for _ in $(seq 1 $((minutes * 6))); do
  sleep 10
  samples+=("$(awk '/VmRSS/ {print $2}' /proc/$pid/status)")
done
c1=$(cpu)
python3 - "$clk" "$c0" "$c1" "$minutes" "${samples[@]}" <<'PY'
import sys
clk, c0, c1, minutes = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rss = [int(x) / 1024 for x in sys.argv[5:]]
cpu = (c1 - c0) / clk
print(f"idle RSS: min {min(rss):.1f} MiB, mean {sum(rss)/len(rss):.1f} MiB, max {max(rss):.1f} MiB ({len(rss)} samples)")
print(f"idle CPU: {cpu:.2f} s over {minutes} min ({100 * cpu / (minutes * 60):.3f}% of one core)")
PY
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^process_(resident_memory_bytes|cpu_seconds_total) ' || true
