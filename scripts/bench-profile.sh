#!/usr/bin/env bash
# Where a backup's client CPU goes: `perf record -e cpu-clock -g` of one
# `pgkeep backup --jobs JOBS` per binary, on the same data in one
# throwaway cluster (dataset of bench.sh, BENCH_DATASET=events|text|many|mixed;
# BENCH_ENCRYPT=1 backs up into a repository with a master key, as
# bench-ab.sh does). Prints each binary's client CPU and its top symbols by
# self time, and the share of a few groups (zstd, SHA-256, AEAD, protocol
# and framing, memory copies, kernel).
# Usage: scripts/bench-profile.sh BIN [BIN...]   (SIZE_MB, JOBS from the environment)
# e.g. BENCH_DATASET=text SIZE_MB=1024 scripts/bench-profile.sh /tmp/old-target/release/pgkeep target/release/pgkeep
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
command -v perf >/dev/null || { echo "bench-profile.sh: perf is not installed (apt-get install linux-perf)"; exit 1; }
. scripts/cluster.sh
size_mb=${SIZE_MB:-1024}; jobs=${JOBS:-2}
CLUSTER_OPTS="-c shared_buffers=256MB -c wal_level=minimal -c max_wal_senders=0 -c autovacuum=off" cluster_start
work=$CLUSTER_DIR/work; mkdir -p "$work"; chmod 777 "$work"
conn="host=$PGHOST port=$PGPORT user=postgres"
bench_dataset "$size_mb"
client_pin=()
head -c 32 /dev/urandom > "$work/master.key"
n=0
for bin in "$@"; do
  n=$((n + 1)); bin=$(realpath "$bin"); repo=$work/repo-$n
  if [ -n "${BENCH_ENCRYPT:-}" ]; then
    "$bin" key add --repo "$repo" --new-key-file "$work/master.key" >/dev/null
  fi
  read -r secs rss cpu srv < <(measure "profile_$n" perf record -q -e cpu-clock -g -o "$work/perf-$n.data" -- \
    "$bin" backup --db "$conn dbname=bench" --repo "$repo" --jobs "$jobs")
  plain=$(du -sb "$repo" | cut -f1)
  echo
  echo "== $bin"
  echo "wall $secs s, client CPU $cpu s (perf included), server CPU $srv s, repository $((plain / 1048576)) MiB"
  perf report -i "$work/perf-$n.data" --no-children --sort symbol --percent-limit 1.5 --stdio 2>/dev/null \
    | grep -E '^ +[0-9]' | head -25
  perf report -i "$work/perf-$n.data" --no-children --sort symbol --stdio 2>/dev/null | python3 -c '
import re, sys
groups = {
    "zstd": r"ZSTD|HUF_|FSE_|XXH",
    "SHA-256": r"sha2|sha256|Sha256",
    "AEAD": r"aes|gcm|Aes|ghash|polyval|chacha|poly1305",
    "memcpy/memmove": r"memcpy|memmove|memset",
    "kernel": r"\[k\]",
    "protocol/framing": r"tokio_postgres|postgres_protocol|pg::wire|copy_items|Framer|frame_stream|bytes::",
}
total = {g: 0.0 for g in groups}
for line in sys.stdin:
    m = re.match(r"\s+([0-9.]+)%\s+(\[.\]\s+.*)", line)
    if not m:
        continue
    pct, sym = float(m.group(1)), m.group(2)
    for g, rx in groups.items():
        if re.search(rx, sym):
            total[g] += pct
            break
print("groups: " + ", ".join(f"{g} {v:.1f}%" for g, v in total.items()))
'
done
