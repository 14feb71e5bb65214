#!/usr/bin/env bash
# End-to-end benchmark: generates a dataset of about SIZE_MB megabytes in a
# throwaway cluster, then times, in one run and on the same data:
#   raw parallel COPY ... TO STDOUT > /dev/null (JOBS at once, the floor),
#   pg_dump -Fd -jJOBS and pg_restore -jJOBS (the usual runbook),
#   pgkeep backup and pgkeep restore with --jobs JOBS (wall time, MB/s, peak RSS),
#   and the same backup and restore encrypted (AES-256-GCM and ChaCha20-Poly1305)
#   to show what encryption costs.
# Also prints CPU seconds per step: the client's (user+sys of the command and
# its children) and the server's (backends, from the postmaster's reaped
# children), because client and server share this machine's cores.
# Usage: scripts/bench.sh [SIZE_MB=1024] [JOBS=2] [extra pgkeep backup flags...]
#        PGKEEP_BIN=target/release/pgkeep scripts/bench.sh ...   (prebuilt)
#        BENCH_PIN=1 scripts/bench.sh ...   server on the first half of the
#          cores, every client (psql, pg_dump, pg_restore, pgkeep) on the
#          other half, as when the backup runs on its own machine (after the
#          data is generated; taskset from util-linux).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/cluster.sh
size_mb=${1:-1024}
jobs=${2:-2}
shift $(( $# > 2 ? 2 : $# )) || true
extra=("$@")

pgkeep=$(bench_pgkeep)
# No autovacuum: after a restore it would vacuum and analyze the new
# database during the next step and bill that tool for it.
CLUSTER_OPTS="-c shared_buffers=256MB -c maintenance_work_mem=128MB -c wal_level=minimal -c max_wal_senders=0 -c autovacuum=off" cluster_start
work=$CLUSTER_DIR/work; mkdir -p "$work"; chmod 777 "$work"
conn="host=$PGHOST port=$PGPORT user=postgres"

bench_dataset "$size_mb"
db_bytes=$(psql -X -At -d bench -c "SELECT sum(pg_relation_size(c.oid)) FROM pg_class c WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace")
copy_bytes=0
tables=$(psql -X -At -d bench -c "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY pg_relation_size(oid) DESC")
echo "== heap size: $((db_bytes / 1048576)) MiB"
pin_clients

cpu_rows=()   # "label client server" for the CPU table

echo "== raw parallel COPY"
printf '%s\n' $tables > "$work/tables"
read -r raw_secs _ raw_cpu raw_srv < <(measure raw_copy bash -c "xargs -P $jobs -I{} psql -X -q -d bench -c 'COPY public.{} TO STDOUT' < '$work/tables' > /dev/null")
cpu_rows+=("raw_parallel_COPY $raw_secs $raw_cpu $raw_srv")
copy_bytes=$(for tb in $tables; do psql -X -q -d bench -c "COPY public.$tb TO STDOUT"; done | wc -c)

echo "== pg_dump -Fd -j$jobs"
read -r dump_secs dump_rss dump_cpu dump_srv < <(measure pg_dump pg_dump -Fd -j "$jobs" -f "$work/dump" -d bench)
cpu_rows+=("pg_dump_-Fd $dump_secs $dump_cpu $dump_srv")
dump_bytes=$(du -sb "$work/dump" | cut -f1)
createdb pgr
echo "== pg_restore -j$jobs"
read -r pgr_secs pgr_rss pgr_cpu pgr_srv < <(measure pg_restore pg_restore -j "$jobs" -d pgr "$work/dump")
cpu_rows+=("pg_restore $pgr_secs $pgr_cpu $pgr_srv")

echo "== pgkeep backup --jobs $jobs ${extra[*]}"
read -r kb_secs kb_rss kb_cpu kb_srv < <(measure pgkeep_backup "$pgkeep" backup --db "$conn dbname=bench" --repo "$work/repo" --jobs "$jobs" "${extra[@]}")
cpu_rows+=("pgkeep_backup $kb_secs $kb_cpu $kb_srv")
repo_bytes=$(du -sb "$work/repo" | cut -f1)
echo "== pgkeep restore --jobs $jobs"
read -r kr_secs kr_rss kr_cpu kr_srv < <(measure pgkeep_restore "$pgkeep" restore --repo "$work/repo" latest --db "$conn dbname=pgk" --create --jobs "$jobs")
cpu_rows+=("pgkeep_restore $kr_secs $kr_cpu $kr_srv")
# Encrypted: the same backup into repositories with a master key (a key
# file: no Argon2 in the timing), then a restore of the AES one.
head -c 32 /dev/urandom > "$work/master.key"
for c in aes-256-gcm chacha20-poly1305; do
  "$pgkeep" key add --repo "$work/repo-$c" --new-key-file "$work/master.key" --cipher "$c" >/dev/null
  echo "== pgkeep backup --jobs $jobs (encrypted, $c)"
  read -r secs rss _ _ < <(measure "pgkeep_backup_$c" "$pgkeep" backup --db "$conn dbname=bench" --repo "$work/repo-$c" --jobs "$jobs" "${extra[@]}")
  eval "enc_${c//-/_}=\"$secs $rss\""
done
echo "== pgkeep restore --jobs $jobs (encrypted, aes-256-gcm)"
read -r ker_secs ker_rss _ _ < <(measure pgkeep_restore_enc "$pgkeep" restore --repo "$work/repo-aes-256-gcm" latest --key-file "$work/master.key" --db "$conn dbname=pgk_enc" --create --jobs "$jobs")
read -r kea_secs kea_rss <<< "$enc_aes_256_gcm"
read -r kec_secs kec_rss <<< "$enc_chacha20_poly1305"

n_src=$(psql -X -At -d bench -c "SELECT count(*) FROM events_1")
n_dst=$(psql -X -At -d pgk -c "SELECT count(*) FROM events_1")
[ "$n_src" = "$n_dst" ] || { echo "restored row count differs: $n_src vs $n_dst"; exit 1; }

echo; cat "$work/pgkeep_backup.out" "$work/pgkeep_restore.out"
python3 - "$copy_bytes" "$raw_secs" "$dump_secs" "$dump_rss" "$dump_bytes" "$pgr_secs" "$kb_secs" "$kb_rss" "$repo_bytes" "$kr_secs" "$kr_rss" "$jobs" "$db_bytes" "$kea_secs" "$kea_rss" "$kec_secs" "$kec_rss" "$ker_secs" "$ker_rss" <<'PY'
import sys
(copy_bytes, raw, dump, dump_rss, dump_bytes, pgr, kb, kb_rss, repo_bytes, kr, kr_rss, jobs, heap,
 kea, kea_rss, kec, kec_rss, ker, ker_rss) = sys.argv[1:]
cb = int(copy_bytes); mb = cb / 1e6
f = float
print()
print(f"dataset: {int(heap)/2**20:.0f} MiB heap, {mb:.0f} MB of COPY text, jobs={jobs}")
print(f"{'step':<28}{'seconds':>9}{'MB/s':>9}{'peak RSS':>11}{'stored':>10}{'ratio':>8}")
def row(name, secs, rss=None, stored=None, ref=None):
    ratio = f"{f(secs)/f(ref):.2f}x" if ref else ""
    rss_s = f"{int(rss)/1024:.0f} MiB" if rss else ""
    st = f"{int(stored)/2**20:.0f} MiB" if stored else ""
    print(f"{name:<28}{f(secs):>9.2f}{mb/f(secs):>9.0f}{rss_s:>11}{st:>10}{ratio:>8}")
row("raw parallel COPY", raw)
row("pg_dump -Fd", dump, dump_rss, dump_bytes, raw)
row("pgkeep backup", kb, kb_rss, repo_bytes, raw)
row("pg_restore", pgr)
row("pgkeep restore", kr, kr_rss, None, pgr)
row("pgkeep backup aes-256-gcm", kea, kea_rss, None, kb)
row("pgkeep backup chacha20", kec, kec_rss, None, kb)
row("pgkeep restore aes-256-gcm", ker, ker_rss, None, kr)
print()
print(f"encryption cost: backup aes {100*(f(kea)/f(kb)-1):+.1f}%, chacha {100*(f(kec)/f(kb)-1):+.1f}%; restore aes {100*(f(ker)/f(kr)-1):+.1f}%  (ratio column: vs the unencrypted run)")
print(f"backup vs raw COPY: {f(kb)/f(raw):.2f}x   backup vs pg_dump: {f(kb)/f(dump):.2f}x   restore vs pg_restore: {f(kr)/f(pgr):.2f}x")
PY
echo
cores=$(nproc)  # CPU/cores: the wall time if the work spread evenly over every core
printf '%-22s%9s%13s%13s%13s\n' step seconds "client CPU" "server CPU" "CPU/$cores cores"
for r in "${cpu_rows[@]}"; do
  read -r label secs cpu srv <<< "$r"
  python3 -c "print(f'{\"$label\".replace(\"_\", \" \"):<22}{$secs:>9.2f}{$cpu:>12.2f}s{$srv:>12.2f}s{($cpu + $srv) / $cores:>12.2f}s')"
done
