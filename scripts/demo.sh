#!/usr/bin/env bash
# End-to-end demo on a fresh machine: start a throwaway cluster, load the
# Pagila sample database, back it up with pgkeep into ./pgkeep-repo, restore
# it into a new database, and check the restored copy against the source.
# psql and pg_dump are used here only to load the sample and as the oracle.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/cluster.sh
fixtures=$root/tests/fixtures

# A fresh machine: scripts/test.sh installs the PostgreSQL server and
# client, python3 and the postgres user (with the rest of the test tools).
demo_ready() {
  { [ -n "${PGKEEP_PG_BIN:-}" ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } &&
    command -v psql >/dev/null 2>&1 && command -v pg_dump >/dev/null 2>&1 &&
    command -v python3 >/dev/null 2>&1 &&
    { [ "$(id -u)" != 0 ] || id postgres >/dev/null 2>&1; }
}
if ! demo_ready; then
  echo "== installing what the demo lacks (scripts/test.sh, install only)"
  PGKEEP_TEST_INSTALL_ONLY=1 scripts/test.sh
fi

cargo build --release --quiet
pgkeep=${CARGO_TARGET_DIR:-$root/target}/release/pgkeep
cluster_start
echo "== cluster on port $PGPORT; loading Pagila"
createdb pagila
psql -q -X -v ON_ERROR_STOP=1 -d pagila -f "$fixtures/pagila/pagila-schema.sql" >/dev/null
psql -q -X -v ON_ERROR_STOP=1 -d pagila -f "$fixtures/pagila/pagila-data.sql" >/dev/null

repo=$root/pgkeep-repo
echo "== pgkeep backup -> $repo"
"$pgkeep" backup --db "host=$PGHOST port=$PGPORT user=postgres dbname=pagila" --repo "$repo" --jobs 2
"$pgkeep" list --repo "$repo"
echo "== pgkeep restore latest -> database pagila_restored"
"$pgkeep" restore --repo "$repo" latest --db "host=$PGHOST port=$PGPORT user=postgres dbname=pagila_restored" --create --jobs 2

echo "== check"
pg_dump --schema-only pagila | grep -v '^\\\(un\)\?restrict\|^-- Dumped' > "$CLUSTER_DIR/src.sql"
pg_dump --schema-only pagila_restored | grep -v '^\\\(un\)\?restrict\|^-- Dumped' > "$CLUSTER_DIR/dst.sql"
diff -u "$CLUSTER_DIR/src.sql" "$CLUSTER_DIR/dst.sql" || { echo "== demo FAILED: schemas differ"; exit 1; }
echo "schema: identical"
digests() { # per-table row count and order-independent digest
  for t in $(psql -X -At -d "$1" -c "SELECT c.oid::regclass FROM pg_class c WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace ORDER BY c.oid::regclass::text"); do
    echo "$t $(psql -X -At -d "$1" -c "SELECT count(*) || ' ' || coalesce(md5(string_agg(md5(t::text), ',' ORDER BY md5(t::text))), '-') FROM ONLY $t t")"
  done
}
digests pagila > "$CLUSTER_DIR/src.data"
digests pagila_restored > "$CLUSTER_DIR/dst.data"
diff -u "$CLUSTER_DIR/src.data" "$CLUSTER_DIR/dst.data" || { echo "== demo FAILED: data differs"; exit 1; }
echo "data: $(wc -l < "$CLUSTER_DIR/src.data") tables, identical row counts and digests"
echo "== demo OK"
