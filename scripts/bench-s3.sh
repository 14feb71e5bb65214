#!/usr/bin/env bash
# Object-storage benchmark: the same dataset backed up and restored through
# a local-directory repository and through a loopback S3 API server
# (moto_server), in one run. Prints wall time, MB/s, peak RSS per step, and
# the S3 requests per GB stored (from moto's access log).
# Usage: scripts/bench-s3.sh [SIZE_MB=512] [JOBS=2] [extra pgkeep backup flags...]
#        PGKEEP_BIN=target/release/pgkeep scripts/bench-s3.sh ...   (prebuilt)
# Needs moto_server (pip install 'moto[server]').
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/cluster.sh
size_mb=${1:-512}
jobs=${2:-2}
shift $(( $# > 2 ? 2 : $# )) || true
extra=("$@")
command -v moto_server >/dev/null || { echo "moto_server not found: pip install 'moto[server]'"; exit 1; }

# PGKEEP_BIN: a prebuilt binary (skips the build).
if [ -z "${PGKEEP_BIN:-}" ]; then cargo build --release --quiet; fi
pgkeep=${PGKEEP_BIN:-$root/target/release/pgkeep}
CLUSTER_OPTS="-c shared_buffers=256MB -c maintenance_work_mem=128MB -c wal_level=minimal -c max_wal_senders=0" cluster_start
work=$CLUSTER_DIR/work; mkdir -p "$work"; chmod 777 "$work"
conn="host=$PGHOST port=$PGPORT user=postgres"

moto_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
moto_pid=$!
stop_all() { kill "$moto_pid" 2>/dev/null || true; cluster_stop; }
trap stop_all EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$moto_port/" >/dev/null && break; sleep 0.2; done
curl -sf -X PUT "http://127.0.0.1:$moto_port/bench" >/dev/null
s3=(--repo s3://bench/r --repo-option "endpoint=http://127.0.0.1:$moto_port" --repo-option allow_http=true
    --repo-option region=us-east-1 --repo-option access_key_id=bench --repo-option secret_access_key=bench)

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
wait "${gen[@]}"   # not moto_server
psql -X -q -d bench -c "VACUUM ANALYZE"
copy_bytes=$(psql -X -At -d bench -c "SELECT sum(pg_relation_size(c.oid)) FROM pg_class c WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace")

measure() { # label, command...: prints seconds, peak RSS (KiB) and CPU seconds (user+sys)
  local label=$1; shift
  /usr/bin/time -f "%e %M %U %S" -o "$work/time" "$@" >"$work/$label.out" 2>"$work/$label.err" || { cat "$work/$label.err"; exit 1; }
  read -r secs rss usr sys < "$work/time"; echo "$secs $rss $(python3 -c "print(f'{$usr + $sys:.2f}')")"
}
requests() { grep -cE '"(GET|PUT|POST|DELETE|HEAD) ' "$work/moto.log" || true; }
# moto's CPU seconds so far (utime + stime, from /proc)
moto_cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$moto_pid/stat"; }

echo "== local: backup, restore"
read -r lb_s lb_rss lb_cpu < <(measure local_backup "$pgkeep" backup --db "$conn dbname=bench" --repo "$work/repo" --jobs "$jobs" "${extra[@]}")
stored=$(du -sb "$work/repo" | cut -f1)
read -r lr_s lr_rss lr_cpu < <(measure local_restore "$pgkeep" restore --repo "$work/repo" latest --db "$conn dbname=r_local" --create --jobs "$jobs")

echo "== s3 (moto): backup, restore"
r0=$(requests); c0=$(moto_cpu)
read -r sb_s sb_rss sb_cpu < <(measure s3_backup "$pgkeep" backup --db "$conn dbname=bench" "${s3[@]}" --jobs "$jobs" "${extra[@]}")
r1=$(requests); c1=$(moto_cpu)
read -r sr_s sr_rss sr_cpu < <(measure s3_restore "$pgkeep" restore "${s3[@]}" latest --db "$conn dbname=r_s3" --create --jobs "$jobs")
r2=$(requests); c2=$(moto_cpu)
n_src=$(psql -X -At -d bench -c "SELECT count(*) FROM events_1")
for d in r_local r_s3; do
  n=$(psql -X -At -d "$d" -c "SELECT count(*) FROM events_1")
  [ "$n" = "$n_src" ] || { echo "$d: restored row count differs: $n vs $n_src"; exit 1; }
done
moto_b=$(python3 -c "print(f'{$c1 - $c0:.2f}')"); moto_r=$(python3 -c "print(f'{$c2 - $c1:.2f}')")

cat "$work/s3_backup.out"
python3 - "$copy_bytes" "$stored" "$lb_s" "$lb_rss" "$lr_s" "$lr_rss" "$sb_s" "$sb_rss" "$sr_s" "$sr_rss" "$((r1 - r0))" "$((r2 - r1))" "$jobs" "$moto_b" "$moto_r" "$lb_cpu" "$lr_cpu" "$sb_cpu" "$sr_cpu" <<'PY'
import sys
a = sys.argv[1:]
heap, stored = int(a[0]), int(a[1])
lb, lb_rss, lr, lr_rss, sb, sb_rss, sr, sr_rss = map(float, a[2:10])
req_b, req_r, jobs, moto_b, moto_r = int(a[10]), int(a[11]), a[12], float(a[13]), float(a[14])
lb_cpu, lr_cpu, sb_cpu, sr_cpu = map(float, a[15:19])
mb = heap / 1e6
gb = stored / 1e9
print()
print(f"dataset: {heap/2**20:.0f} MiB heap, {stored/2**20:.0f} MiB stored, jobs={jobs}")
print(f"{'step':<16}{'seconds':>8}{'MB/s':>6}{'peak RSS':>10}{'vs local':>9}{'requests':>9}{'req/GB':>7}{'pgkeep CPU s':>13}{'moto CPU s':>11}")
def row(name, s, rss, own, ref=None, req=None, cpu=None):
    vs = f"{s/ref:.2f}x" if ref else ""
    r = f"{req}" if req is not None else ""
    per = f"{req/gb:.0f}" if req is not None else ""
    c = f"{cpu:.2f}" if cpu is not None else ""
    print(f"{name:<16}{s:>8.2f}{mb/s:>6.0f}{rss/1024:>6.0f} MiB{vs:>9}{r:>9}{per:>7}{own:>13.2f}{c:>11}")
row("local backup", lb, lb_rss, lb_cpu)
row("s3 backup", sb, sb_rss, sb_cpu, lb, req_b, moto_b)
row("local restore", lr, lr_rss, lr_cpu)
row("s3 restore", sr, sr_rss, sr_cpu, lr, req_r, moto_r)
PY
