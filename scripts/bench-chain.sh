#!/usr/bin/env bash
# Chain verification benchmark: generates STREAMS x EVENTS hash-chained
# events (tests/fixtures/chain_events.sql) in a throwaway cluster, then
# times, on the same data:
#   raw COPY of the live verifier's ordered query to /dev/null (the floor),
#   pgkeep chain verify --db (live),
#   pgkeep backup with and without --policy (cost of chain order + heads),
#   pgkeep chain verify --repo (archive: frame reads, zstd, SHA-256 checks,
#   then the same verifier),
# and checks that live and archive print the same JSON report.
# Usage: scripts/bench-chain.sh [STREAMS=50000] [EVENTS=100]
# Needs a release build (cargo build --release) at target/release/pgkeep.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/cluster.sh
streams=${1:-50000}
events=${2:-100}
total=$((streams * events))
pgkeep=${CARGO_TARGET_DIR:-$root/target}/release/pgkeep
[ -x "$pgkeep" ] || { echo "build first: cargo build --release"; exit 1; }
policy=$root/tests/fixtures/chain_events.toml

CLUSTER_OPTS="-c shared_buffers=256MB -c work_mem=64MB -c wal_level=minimal -c max_wal_senders=0" cluster_start
work=$CLUSTER_DIR/work; mkdir -p "$work"; chmod 777 "$work"
conn="host=$PGHOST port=$PGPORT user=postgres dbname=bench"

echo "== generating $streams streams x $events events = $total events"
createdb bench
psql -X -q -v ON_ERROR_STOP=1 -d bench -f tests/fixtures/chain_events.sql
gen_start=$(date +%s.%N)
psql -X -q -v ON_ERROR_STOP=1 -d bench -c "SELECT evt.generate($streams, $events)" -c "VACUUM ANALYZE evt.evt_events" >/dev/null
echo "generated in $(python3 -c "print(f'{$(date +%s.%N) - $gen_start:.1f}')") s; heap $(psql -X -At -d bench -c "SELECT pg_size_pretty(pg_relation_size('evt.evt_events'))")"

measure() { # label, command...: prints seconds and peak RSS (KiB)
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/$label.out" 2>"$work/$label.err" || true
  read -r secs rss < "$work/time"; echo "$secs $rss"
}

query="SELECT stream_type, stream_id, stream_seq, prev_hash, hash, event_type, payload FROM evt.evt_events ORDER BY stream_type, stream_id, stream_seq, hash"
echo "== raw COPY ($query) > /dev/null"
read -r raw_secs raw_rss < <(measure raw psql -X -q -d bench -c "COPY ($query) TO STDOUT")
copy_bytes=$(psql -X -q -d bench -c "COPY ($query) TO STDOUT" | wc -c)

echo "== pgkeep chain verify --db"
read -r live_secs live_rss < <(measure live "$pgkeep" chain verify --db "$conn" --policy "$policy" --json)
grep -q '"ok": true' "$work/live.out" || { cat "$work/live.out" "$work/live.err"; exit 1; }

echo "== pgkeep backup (no policy)"
read -r b0_secs b0_rss < <(measure backup0 "$pgkeep" backup --db "$conn" --repo "$work/repo0" --jobs 1)
echo "== pgkeep backup --policy"
read -r b1_secs b1_rss < <(measure backup1 "$pgkeep" backup --db "$conn" --repo "$work/repo" --jobs 1 --policy "$policy")
grep -q complete "$work/backup1.out" || { cat "$work/backup1.err"; exit 1; }

echo "== pgkeep chain verify --repo"
read -r arch_secs arch_rss < <(measure archive "$pgkeep" chain verify --repo "$work/repo" latest --policy "$policy" --json)
grep -q '"ok": true' "$work/archive.out" || { cat "$work/archive.out" "$work/archive.err"; exit 1; }
cmp <(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])))' "$work/live.out") \
    <(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])))' "$work/archive.out") \
  || { echo "live and archive reports differ"; exit 1; }

python3 - "$total" "$copy_bytes" "$raw_secs" "$raw_rss" "$live_secs" "$live_rss" "$b0_secs" "$b1_secs" "$b1_rss" "$arch_secs" "$arch_rss" <<'PY'
import sys
total, cb, raw, raw_rss, live, live_rss, b0, b1, b1_rss, arch, arch_rss = sys.argv[1:]
total = int(total); mb = int(cb) / 1e6; f = float
print()
print(f"{total:,} events, {mb:.0f} MB of COPY text (ordered query, needed columns)")
print(f"{'step':<34}{'seconds':>9}{'events/s':>12}{'MB/s':>8}{'peak RSS':>11}")
def row(name, secs, rss=None):
    r = f"{int(rss)/1024:.0f} MiB" if rss else ""
    print(f"{name:<34}{f(secs):>9.2f}{total/f(secs):>12,.0f}{mb/f(secs):>8.0f}{r:>11}")
row("raw COPY (psql > /dev/null)", raw, raw_rss)
row("chain verify --db (live)", live, live_rss)
row("backup, no policy", b0)
row("backup --policy (ordered + heads)", b1, b1_rss)
row("chain verify --repo (archive)", arch, arch_rss)
print()
print(f"live vs raw COPY: {f(live)/f(raw):.2f}x   archive vs live: {f(arch)/f(live):.2f}x   backup with chain order vs without: {f(b1)/f(b0):.2f}x")
PY
