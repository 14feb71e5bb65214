#!/usr/bin/env bash
# Operations on a long history: `pgkeep status` and `pgkeep prune` against a
# job repository of N complete backups (default 1000, one every 6 hours) and
# N run records, on a local directory and on a loopback S3 server (moto).
# Backups are fabricated (manifest, one pack, a verify record on every tenth;
# status and prune read only listings and a few small records), so the
# figures are the cost of the history, not of the data.
# Prints wall seconds (median of 3) and, for S3, requests by method.
# Usage: scripts/bench-ops.sh [N=1000]
#        PGKEEP_BIN=target/release/pgkeep scripts/bench-ops.sh   (prebuilt)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
n=${1:-1000}
if [ -z "${PGKEEP_BIN:-}" ]; then cargo build --release --quiet; fi
pgkeep=${PGKEEP_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/pgkeep}
work=$(mktemp -d); trap 'kill ${moto_pid:-} 2>/dev/null || true; rm -rf "$work"' EXIT
moto_bin=$(command -v moto_server) || { echo "moto_server not found (scripts/test.sh installs it)"; exit 1; }
py=python3
for p in /opt/pgkeep-moto/bin/python python3; do
  if "$p" -c 'import boto3' 2>/dev/null; then py=$p; break; fi
done

# The fabricated history: ids and run-record names as pgkeep writes them.
fabricate() { # fabricate DEST (a directory, or s3://bucket/prefix with ENDPOINT)
  "$py" - "$1" "$n" "${endpoint:-}" <<'PY'
import datetime, json, os, sys
dest, n, endpoint = sys.argv[1], int(sys.argv[2]), sys.argv[3]
start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
objects = {}
for i in range(n):
    t = start + datetime.timedelta(hours=6 * i)
    bid = t.strftime("%Y%m%dT%H%M%SZ") + "-%04x" % i
    objects[f"backups/{bid}/manifest"] = b"manifest"
    objects[f"backups/{bid}/data/pack-00000"] = b"x" * 1000
    if i % 10 == 0:
        objects[f"backups/{bid}/verified.json"] = json.dumps(
            {"verified_at": t.isoformat(), "ok": True, "mode": "full", "failures": 0}).encode()
    end = t + datetime.timedelta(minutes=3)
    rec = {"action": "backup", "outcome": "success", "job": "app", "kind": "postgres",
           "started_at": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "finished_at": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
           "duration_ms": 180000, "backup_id": bid, "bytes": 1000, "rows": 10,
           "host": "bench", "pgkeep_version": "bench"}
    objects[f"runs/{end.strftime('%Y%m%dT%H%M%SZ')}-backup-success-{i:08x}.json"] = json.dumps(rec).encode()
if dest.startswith("s3://"):
    import boto3
    bucket, _, prefix = dest[5:].partition("/")
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")
    for k, v in objects.items():
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{k}", Body=v)
else:
    for k, v in objects.items():
        p = os.path.join(dest, k)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(v)
print(f"fabricated {len(objects)} objects ({n} backups) in {dest}")
PY
}

policy() { # policy FILE REPO_URL [OPTIONS]
  cat > "$1" <<TOML
timezone = "UTC"
[repository]
url = "$2"
${3:-}
[[database]]
name = "app"
url = "host=/nonexistent"
rpo = "6h"
retention = { keep_last = 7, keep_daily = 14, keep_weekly = 8, keep_monthly = 12 }
TOML
}

median3() { # median3 CMD...: the median wall seconds of three runs
  local t=()
  for _ in 1 2 3; do
    local s; s=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || true
    t+=("$(echo "$(date +%s.%N) - $s" | bc)")
  done
  printf '%s\n' "${t[@]}" | sort -n | sed -n 2p
}

requests() { # after the marker's line shows, the log is current
  local m="sync-$RANDOM"; curl -s -o /dev/null "$endpoint/ops/$m" || true
  for _ in $(seq 100); do grep -q "$m" "$work/moto.log" && break; sleep 0.1; done
  grep -vE 'sync-[0-9]+' "$work/moto.log" | grep -cE '"(GET|PUT|POST|DELETE|HEAD) ' || true
}
by_method() { # by_method FROM TO: requests by method, the FROM+1..TO-th of the log
  grep -vE 'sync-[0-9]+' "$work/moto.log" | grep -E '"(GET|PUT|POST|DELETE|HEAD) ' | sed -n "$(( $1 + 1 )),$2p" | grep -oE '"(GET|PUT|POST|DELETE|HEAD) ' | tr -d '"' | sort | uniq -c | awk '{printf "%s %s  ", $2, $1}'
}

echo "== local repository, $n backups"
fabricate "$work/local/app"
policy "$work/local.toml" "$work/local"
st=$(median3 "$pgkeep" status --policy "$work/local.toml" --job app --json)
pd=$(median3 "$pgkeep" prune --policy "$work/local.toml" --job app --dry-run --json)
s=$(date +%s.%N); "$pgkeep" prune --policy "$work/local.toml" --job app --json > "$work/prune-local.json"; pr=$(echo "$(date +%s.%N) - $s" | bc)
removed=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['retention']['removed'])" "$work/prune-local.json")
echo "status: ${st}s   prune --dry-run: ${pd}s   prune: ${pr}s (removed $removed)"

echo "== S3 repository (moto on loopback), $n backups"
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$moto_bin" -H 127.0.0.1 -p "$port" > "$work/moto.log" 2>&1 & moto_pid=$!
endpoint="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$endpoint" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf -X PUT "$endpoint/ops" >/dev/null
fabricate "s3://ops/prod/app"
# moto writes its access log a moment after answering: wait until a marker
# request shows in it, so the counts below start after the fabrication.
marker="sync-$RANDOM"
curl -s -o /dev/null "$endpoint/ops/$marker" || true
for _ in $(seq 100); do grep -q "$marker" "$work/moto.log" && break; sleep 0.1; done
policy "$work/s3.toml" "s3://ops/prod" "options = { endpoint = \"$endpoint\", region = \"us-east-1\", access_key_id = \"testing\", secret_access_key = \"testing\", allow_http = true, virtual_hosted_style = false }"
r0=$(requests)
"$pgkeep" status --policy "$work/s3.toml" --job app --json > /dev/null || true
r1=$(requests)
st=$(median3 "$pgkeep" status --policy "$work/s3.toml" --job app --json)
r2=$(requests)
"$pgkeep" prune --policy "$work/s3.toml" --job app --dry-run --json > /dev/null
r3=$(requests)
s=$(date +%s.%N); "$pgkeep" prune --policy "$work/s3.toml" --job app --json > "$work/prune-s3.json"; pr=$(echo "$(date +%s.%N) - $s" | bc)
r4=$(requests)
removed=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['retention']['removed'])" "$work/prune-s3.json")
echo "status: ${st}s, $((r1 - r0)) requests ($(by_method "$r0" "$r1"))"
echo "prune --dry-run: $((r3 - r2)) requests ($(by_method "$r2" "$r3"))"
echo "prune: ${pr}s, $((r4 - r3)) requests for $removed removed ($(by_method "$r3" "$r4"))"
if [ -n "${BENCH_OPS_LOG:-}" ]; then cp "$work/moto.log" "$BENCH_OPS_LOG"; fi
