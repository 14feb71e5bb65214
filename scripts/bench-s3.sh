#!/usr/bin/env bash
# Object-storage benchmark: the same dataset backed up and restored through
# a local-directory repository and through a loopback S3 API server, in one
# run. Prints wall time, MB/s, peak RSS and CPU seconds per step (pgkeep's
# and the server's), and the S3 requests per GB stored (from the server's
# access log).
# Usage: scripts/bench-s3.sh [SIZE_MB=512] [JOBS=2] [extra pgkeep backup flags...]
#        PGKEEP_BIN=target/release/pgkeep scripts/bench-s3.sh ...   (prebuilt)
#        S3_SERVER=moto|s3s-fs scripts/bench-s3.sh ...              (default moto)
# Servers (neither is installed by this script; both are optional tools):
#   moto    moto_server, single-process Python: pip install 'moto[server]'
#   s3s-fs  s3s-fs, native (Rust, tokio), objects as files on disk:
#           cargo install s3s-fs --locked --features binary --root /work/tools
#           then put its bin/ on PATH or set S3S_FS_BIN=/work/tools/bin/s3s-fs
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/cluster.sh
size_mb=${1:-512}
jobs=${2:-2}
shift $(( $# > 2 ? 2 : $# )) || true
extra=("$@")
server=${S3_SERVER:-moto}
case $server in
  moto)
    server_bin=$(command -v moto_server) || { echo "moto_server not found: pip install 'moto[server]'"; exit 1; } ;;
  s3s-fs)
    server_bin=${S3S_FS_BIN:-$(command -v s3s-fs || true)}
    [ -n "$server_bin" ] && [ -x "$server_bin" ] || {
      echo "s3s-fs not found: cargo install s3s-fs --locked --features binary --root DIR, then set S3S_FS_BIN=DIR/bin/s3s-fs"; exit 1; } ;;
  *) echo "S3_SERVER must be moto or s3s-fs, not $server"; exit 2 ;;
esac

# PGKEEP_BIN: a prebuilt binary (skips the build).
pgkeep=$(bench_pgkeep)
# No autovacuum: after a restore it would work on the new database during
# the next step and bill that step for it.
CLUSTER_OPTS="-c shared_buffers=256MB -c maintenance_work_mem=128MB -c wal_level=minimal -c max_wal_senders=0 -c autovacuum=off" cluster_start
work=$CLUSTER_DIR/work; mkdir -p "$work"; chmod 777 "$work"
conn="host=$PGHOST port=$PGPORT user=postgres"

s3_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
s3_key=bench   # throwaway credentials of the throwaway loopback server
case $server in
  moto)
    # werkzeug's access log: one line per request
    "$server_bin" -H 127.0.0.1 -p "$s3_port" >"$work/server.log" 2>&1 &
    server_pid=$! ;;
  s3s-fs)
    # Objects live in $work/s3 (the same disk as the local repository); a
    # bucket is a directory. Requests are checked against the key (SigV4),
    # as a real store does. At debug, s3s::ops logs one "resolved route"
    # line per request (with the operation's name).
    mkdir -p "$work/s3/bench"
    RUST_LOG=s3s::ops=debug NO_COLOR=1 "$server_bin" --host 127.0.0.1 --port "$s3_port" \
      --access-key "$s3_key" --secret-key "$s3_key" "$work/s3" >"$work/server.log" 2>&1 &
    server_pid=$! ;;
esac
stop_all() { kill "$server_pid" 2>/dev/null || true; cluster_stop; }
trap stop_all EXIT
for _ in $(seq 1 100); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$s3_port/" || true)
  [ "$code" != 000 ] && break; sleep 0.2
done
if [ "$server" = moto ]; then curl -sf -X PUT "http://127.0.0.1:$s3_port/bench" >/dev/null; fi
s3=(--repo s3://bench/r --repo-option "endpoint=http://127.0.0.1:$s3_port" --repo-option allow_http=true
    --repo-option region=us-east-1 --repo-option access_key_id=$s3_key --repo-option secret_access_key=$s3_key)

ntab=4
rows_per=$(( size_mb * 1024 * 1024 / ntab / 170 ))
echo "== generating ~${size_mb} MB: $ntab tables x $rows_per rows"
createdb bench
gen=()
for i in $(seq 1 $ntab); do
  psql -X -q -v ON_ERROR_STOP=1 -d bench -c "CREATE TABLE events_$i (id bigint PRIMARY KEY, account_id int NOT NULL, kind text NOT NULL, amount numeric(12,2), created_at timestamptz NOT NULL, note text);
    INSERT INTO events_$i SELECT g, ((g::bigint * 7919) % 100000)::int, (ARRAY['signup','login','purchase','refund','logout'])[1 + g % 5],
      (g % 100000) / 100.0, timestamptz '2026-01-01' + g * interval '1 second', md5(g::text) || ' ' || md5((g::bigint * 31)::text)
    FROM generate_series(1, $rows_per) g;" &
  gen+=($!)
done
wait "${gen[@]}"   # not the S3 server
psql -X -q -d bench -c "VACUUM ANALYZE"
copy_bytes=$(psql -X -At -d bench -c "SELECT sum(pg_relation_size(c.oid)) FROM pg_class c WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace")

# Requests the server has logged so far ("" when its log cannot tell).
requests() {
  case $server in
    moto) grep -cE '"(GET|PUT|POST|DELETE|HEAD) ' "$work/server.log" || true ;;
    s3s-fs) grep -c 'resolved route, op: ' "$work/server.log" || true ;;
  esac
}
# The server's CPU seconds so far (utime + stime, from /proc)
server_cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$server_pid/stat"; }
# Requests by operation (s3s-fs) or method (moto) in the log's lines FROM+1..TO.
by_op() {
  sed -n "$(( $1 + 1 )),$2p" "$work/server.log" |
    case $server in
      moto) grep -oE '"(GET|PUT|POST|DELETE|HEAD) ' | tr -d '"' ;;
      s3s-fs) grep -oE 'resolved route, op: [A-Za-z0-9]+' | sed 's/.*op: //' ;;
    esac | sort | uniq -c | awk '{printf "%s %s, ", $2, $1}' | sed 's/, $//'
}
lines() { wc -l < "$work/server.log"; }
diff_or_empty() { if [ -n "$1" ] && [ -n "$2" ]; then echo $(( $2 - $1 )); else echo ""; fi; }

echo "== local: backup, restore"
read -r lb_s lb_rss lb_cpu _ < <(measure local_backup "$pgkeep" backup --db "$conn dbname=bench" --repo "$work/repo" --jobs "$jobs" "${extra[@]}")
stored=$(du -sb "$work/repo" | cut -f1)
read -r lr_s lr_rss lr_cpu _ < <(measure local_restore "$pgkeep" restore --repo "$work/repo" latest --db "$conn dbname=r_local" --create --jobs "$jobs")

echo "== s3 ($server): backup, restore"
r0=$(requests); c0=$(server_cpu); l0=$(lines)
read -r sb_s sb_rss sb_cpu _ < <(measure s3_backup "$pgkeep" backup --db "$conn dbname=bench" "${s3[@]}" --jobs "$jobs" "${extra[@]}")
r1=$(requests); c1=$(server_cpu); l1=$(lines)
read -r sr_s sr_rss sr_cpu _ < <(measure s3_restore "$pgkeep" restore "${s3[@]}" latest --db "$conn dbname=r_s3" --create --jobs "$jobs")
r2=$(requests); c2=$(server_cpu); l2=$(lines)
n_src=$(psql -X -At -d bench -c "SELECT count(*) FROM events_1")
for d in r_local r_s3; do
  n=$(psql -X -At -d "$d" -c "SELECT count(*) FROM events_1")
  [ "$n" = "$n_src" ] || { echo "$d: restored row count differs: $n vs $n_src"; exit 1; }
done
srv_b=$(python3 -c "print(f'{$c1 - $c0:.2f}')"); srv_r=$(python3 -c "print(f'{$c2 - $c1:.2f}')")

cat "$work/s3_backup.out"
python3 - "$copy_bytes" "$stored" "$lb_s" "$lb_rss" "$lr_s" "$lr_rss" "$sb_s" "$sb_rss" "$sr_s" "$sr_rss" "$(diff_or_empty "$r0" "$r1")" "$(diff_or_empty "$r1" "$r2")" "$jobs" "$srv_b" "$srv_r" "$lb_cpu" "$lr_cpu" "$sb_cpu" "$sr_cpu" "$server" <<'PY'
import sys
a = sys.argv[1:]
heap, stored = int(a[0]), int(a[1])
lb, lb_rss, lr, lr_rss, sb, sb_rss, sr, sr_rss = map(float, a[2:10])
req_b, req_r = (int(x) if x else None for x in a[10:12])
jobs, srv_b, srv_r = a[12], float(a[13]), float(a[14])
lb_cpu, lr_cpu, sb_cpu, sr_cpu = map(float, a[15:19])
server = a[19]
mb = heap / 1e6
gb = stored / 1e9
print()
print(f"dataset: {heap/2**20:.0f} MiB heap, {stored/2**20:.0f} MiB stored, jobs={jobs}, S3 server: {server}")
print(f"{'step':<16}{'seconds':>8}{'MB/s':>6}{'peak RSS':>10}{'vs local':>9}{'requests':>9}{'req/GB':>7}{'pgkeep CPU s':>13}{'server CPU s':>13}")
def row(name, s, rss, own, ref=None, req=None, cpu=None):
    vs = f"{s/ref:.2f}x" if ref else ""
    remote = ref is not None
    r = f"{req}" if req is not None else ("n/a" if remote else "")
    per = f"{req/gb:.0f}" if req is not None else ("n/a" if remote else "")
    c = f"{cpu:.2f}" if cpu is not None else ""
    print(f"{name:<16}{s:>8.2f}{mb/s:>6.0f}{rss/1024:>6.0f} MiB{vs:>9}{r:>9}{per:>7}{own:>13.2f}{c:>13}")
row("local backup", lb, lb_rss, lb_cpu)
row("s3 backup", sb, sb_rss, sb_cpu, lb, req_b, srv_b)
row("local restore", lr, lr_rss, lr_cpu)
row("s3 restore", sr, sr_rss, sr_cpu, lr, req_r, srv_r)
PY
echo "requests, backup:  $(by_op "$l0" "$l1")"
echo "requests, restore: $(by_op "$l1" "$l2")"
