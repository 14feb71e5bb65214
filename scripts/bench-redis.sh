#!/usr/bin/env bash
# Redis backup throughput and peak RSS: a throwaway redis-server with
# ~SIZE_MB megabytes of incompressible values (random bytes, 1 KiB each),
# then, in the same run, `redis-cli --rdb` to a local file (the runbook's
# command) beside `pgkeep redis backup` into a local repository, with both
# transfer forms (disk, diskless) and the scan method. Wall time and peak
# RSS from /usr/bin/time; each measurement after one warm-up run.
# Usage: scripts/bench-redis.sh [SIZE_MB=1024]
#        PGKEEP_BIN=target/release/pgkeep scripts/bench-redis.sh ...   (prebuilt)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
size_mb=${1:-1024}
if [ -z "${PGKEEP_BIN:-}" ]; then cargo build --release --quiet; fi
pgkeep=${PGKEEP_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/pgkeep}
work=$(mktemp -d /tmp/pgkeep-bench-redis.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --dir "$work" --save '' --appendonly no \
  --repl-diskless-sync-delay 0 --logfile "$work/redis.log" --daemonize yes --pidfile "$work/redis.pid"
trap 'redis-cli -p $port shutdown nosave >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
until redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; do sleep 0.1; done

echo "== loading ~${size_mb} MB (1 KiB random values)"
python3 - "$size_mb" <<'PY' | redis-cli -p "$port" --pipe >/dev/null
import os, sys
n = int(sys.argv[1]) * 1024
out = sys.stdout.buffer
for i in range(n):
    k = b"key:%d" % i
    v = os.urandom(768).hex()[:1024].encode()
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
PY
redis-cli -p "$port" info memory | grep used_memory_human
redis-cli -p "$port" dbsize

# measure NAME CMD...: prints "NAME: <seconds>s, peak RSS <MiB> MiB"
measure() {
  local name=$1; shift
  "$@" >/dev/null 2>&1 || true   # warm-up
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
  read -r secs kib < "$work/time"
  echo "$name: ${secs}s, peak RSS $((kib / 1024)) MiB"
}

for form in no yes; do
  redis-cli -p "$port" config set repl-diskless-sync "$form" >/dev/null
  label=$([ "$form" = yes ] && echo diskless || echo disk)
  echo "== transfer: $label"
  measure "redis-cli --rdb ($label)" sh -c "rm -f '$work/cli.rdb'; redis-cli -p $port --rdb '$work/cli.rdb'"
  ls -l "$work/cli.rdb" | awk '{printf "  RDB file: %.0f MB\n", $5/1e6}'
  measure "pgkeep redis backup ($label, zstd:1)" "$pgkeep" redis backup --redis "redis://127.0.0.1:$port" --repo "$work/repo-$label" --method replication
  measure "pgkeep redis backup ($label, --compress none)" "$pgkeep" redis backup --redis "redis://127.0.0.1:$port" --repo "$work/repo-$label-none" --method replication --compress none
done
measure "pgkeep redis backup (--method scan)" "$pgkeep" redis backup --redis "redis://127.0.0.1:$port" --repo "$work/repo-scan" --method scan
id=$("$pgkeep" list --repo "$work/repo-diskless" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')
measure "pgkeep redis restore --out (verified, fsynced)" sh -c "rm -f '$work/out.rdb'; '$pgkeep' redis restore $id --repo '$work/repo-diskless' --out '$work/out.rdb'"
echo "  stored (diskless, zstd:1): $("$pgkeep" list --repo "$work/repo-diskless" --json | python3 -c "import json,sys; print(json.load(sys.stdin)[-1][\"stored_bytes\"] // 1000000)") MB"
